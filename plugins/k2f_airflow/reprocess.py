"""The k2f_reprocess DAG's logic: the run's source from its params, the job's name, the refusal of a second
reprocess over an overlapping range, and the Beam operator's arguments.

A reprocess's job name carries what it reads: the range (UTC, to the second) and a short hash per topic, or a
hash of the files' pattern, then the run's own hash. The running reprocesses are therefore the runner's
unfinished jobs whose names start with the reprocess prefix (Dataflow's jobs.list, Prism's job service):
nothing to record, nothing to clean up after a killed run, and Airflow needs no write access anywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from beam_pipeline.contracts.job_settings import DEFAULT_REPROCESS_JOB_NAME
from beam_pipeline.contracts.reprocess_source import ReprocessSource, reprocess_source
from k2f_airflow.config import K2fConfig
from k2f_airflow.launch_flags import REPROCESS_ENTRY_POINT, default_py_file, job_options, local_runner

PREFIX = f"{DEFAULT_REPROCESS_JOB_NAME}-"
FILES = "files"
_STAMP = "%Y%m%dt%H%M%S"
# The launch's prerequisites that concern a reprocess (it reads no Kafka and may run beside the stream).
CHECKS = ("mappings", "buckets", "fhir_store")
# How long wait_until_done waits for a reprocess: history can take hours.
WAIT_SECONDS = 3 * 24 * 3600
# How often it asks the runner whether the job has ended: short beside a job's own start and end, so a
# report follows the job's end closely, and a progress line (once a minute) is at most this late.
POLL_SECONDS = 15


class ReprocessRefused(Exception):
    """The run may not start; the message says why and what to do, never a message's content."""


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def job_name(source: ReprocessSource, run_id: str) -> str:
    """kafka-to-fhir-reprocess-<from>-<to>-<topic hash>...-<run hash>, or ...-files-<pattern hash>-<run hash>:
    a valid Dataflow job name (lower case, digits, hyphens) from which overlapping_source reads the source."""
    if source.input_pattern:
        return f"{PREFIX}{FILES}-{_short_hash(source.input_pattern)}-{_short_hash(run_id)}"
    assert source.start_ms is not None and source.end_ms is not None  # noqa: S101  (an archive source)
    start, end = (datetime.fromtimestamp(ms / 1000, UTC).strftime(_STAMP) for ms in (source.start_ms, source.end_ms))
    topics = "-".join(sorted({_short_hash(t) for t in source.topics}))
    return f"{PREFIX}{start}-{end}-{topics}-{_short_hash(run_id)}"


def _hashed(source: ReprocessSource) -> ReprocessSource:
    """The source as a job name carries it: topics and pattern by their short hashes."""
    pattern = _short_hash(source.input_pattern) if source.input_pattern else None
    return ReprocessSource(tuple(_short_hash(t) for t in source.topics), source.start_ms, source.end_ms, pattern)


def _name_source(name: str) -> ReprocessSource | None:
    """What a reprocess job's name says it reads (hashed), or None for a name job_name did not make."""
    parts = name.removeprefix(PREFIX).split("-")
    if len(parts) == 3 and parts[0] == FILES:
        return ReprocessSource(input_pattern=parts[1])
    try:
        start, end = (int(datetime.strptime(p, _STAMP).replace(tzinfo=UTC).timestamp() * 1000) for p in parts[:2])
    except ValueError:
        return None
    return ReprocessSource(tuple(parts[2:-1]), start, end)


def overlapping(source: ReprocessSource, running: list[str]) -> list[str]:
    """The names of running reprocesses that read what `source` reads. A name it cannot read counts as
    overlapping: refusing a run is safe, two writers of the same history are not."""
    mine = _hashed(source)
    return [name for name in running if (theirs := _name_source(name)) is None or mine.overlaps(theirs)]


def run_source(cfg: K2fConfig, params: Mapping[str, Any]) -> ReprocessSource:
    """The source this run reads: the params from/to or input_pattern, the topics setting (the param
    overrides it). Raises ReprocessRefused naming the param to fix."""
    try:
        return reprocess_source(
            cfg.topics or None, params.get("from") or None, params.get("to") or None, params.get("input_pattern")
        )
    except ValueError as exc:
        # The reprocess command's messages name its flags; here they are the run's params of the same name.
        raise ReprocessRefused(str(exc).replace("--", "")) from None


def reprocess_plan(cfg: K2fConfig, source: ReprocessSource, name: str, *, dry_run: bool) -> dict[str, Any]:
    """BeamRunPythonPipelineOperator's arguments, launch_plan's keys (RunReprocessOperator renders them): the
    reprocess entry point in batch, on Dataflow detached (wait_until_done waits), or on the local stack."""
    flags: dict[str, Any] = {"gcs_archive_bucket": cfg.archive_bucket} if cfg.archive_bucket else {}
    if source.input_pattern:
        flags["input_pattern"] = source.input_pattern
        if source.topics:
            flags["topics"] = source.topics[0]
    else:
        cfg.require("archive_bucket")
        assert source.start_ms is not None and source.end_ms is not None  # noqa: S101
        flags["topics"] = ",".join(source.topics)
        flags["from"], flags["to"] = (
            datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
            for ms in (source.start_ms, source.end_ms)
        )
    if dry_run:
        flags["dry_run"] = True
    # The command returns once the runner has the job; the DAG waits on the triggerer (wait_until_done).
    flags["detach"] = True
    options = job_options(cfg, flags)
    if cfg.is_local:
        runner, local = local_runner(cfg, streaming=False, job_name=name)
        options, dataflow_config = {**options, **local}, {}
    else:
        runner = "DataflowRunner"
        dataflow_config = {
            "job_name": name,
            "append_job_name": False,
            "project_id": cfg.gcp_project or None,
            "location": cfg.region,
            "gcp_conn_id": cfg.gcp_conn_id,
            # The wait is wait_until_done's, on the triggerer, not a worker slot's.
            "wait_until_finished": False,
        }
    return {
        "py_file": default_py_file(REPROCESS_ENTRY_POINT),
        "runner": runner,
        "pipeline_options": options,
        "dataflow_config": dataflow_config,
        "gcp_conn_id": cfg.gcp_conn_id,
    }
