"""Reprocess history: the streaming job's steps as a batch job over the raw archive or raw message files.

    python -m beam_pipeline.reprocess --help

    # the archive of two topics for December 2026
    python -m beam_pipeline.reprocess --topics patients,conditions --from 2026-12-01 --to 2027-01-01 \\
        --gcs_archive_bucket k2f-archive --gcs_error_bucket k2f-errors --fhir_base_url http://127.0.0.1:8080/fhir
    # raw files, counting only
    python -m beam_pipeline.reprocess --input_pattern 'gs://history/*.ndjson' --dry_run ...

The same ParseAndValidate, MapToFhir, WriteToFhirStore and DeadLetter as the streaming job
(dataflow_kafka_to_fhirstore.process_steps), fed by ReadArchive or ReadRawFiles (transforms/read_history.py),
in batch on any runner (DataflowRunner without --streaming; Prism locally). Nothing is archived again and no
Kafka offset is committed. The command waits for the job to end and prints its summary as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a file (the Beam operator's py_file): make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import apache_beam as beam  # noqa: E402
from apache_beam.runners.runner import PipelineResult, PipelineState  # noqa: E402

from beam_pipeline.contracts.bucket_layout import bucket_name, reprocess_summary_name  # noqa: E402
from beam_pipeline.contracts.error_record import ErrorRecord  # noqa: E402
from beam_pipeline.contracts.job_settings import DEFAULT_REPROCESS_JOB_NAME  # noqa: E402
from beam_pipeline.contracts.outcome import DEAD_LETTER_METRICS  # noqa: E402
from beam_pipeline.contracts.reprocess_progress import PROGRESS_SECONDS, ProgressMeter  # noqa: E402
from beam_pipeline.contracts.reprocess_source import ReprocessSource, reprocess_source  # noqa: E402
from beam_pipeline.contracts.reprocess_summary import (  # noqa: E402
    DRY_RUN_NAMESPACE,
    FILTERED,
    NAMESPACE,
    SUMMARY_WAIT_SECONDS,
    WOULD_WRITE_MESSAGES,
    counter_totals,
    final_summary,
    from_counts,
    metric_key,
    wait_for_counts,
)
from beam_pipeline.dataflow_kafka_to_fhirstore import (  # noqa: E402
    JobSettings,
    launch_options,
    parse_and_map,
    process_steps,
    step_settings,
)
from beam_pipeline.job_flags import (  # noqa: E402
    add_fhir_store_flags,
    add_reprocess_flags,
    add_storage_flags,
    add_topics_flag,
    normalize_argv,
)
from beam_pipeline.transforms.outputs import FAILED, TALLY  # noqa: E402
from beam_pipeline.transforms.parse_and_map import MappedMessage  # noqa: E402
from beam_pipeline.transforms.read_history import (  # noqa: E402
    MESSAGES,
    RAW_FILES_TOPIC,
    read_archive,
    read_raw_files,
)
from beam_pipeline.transforms.tally import CountAs, SummariseReprocess, Tally  # noqa: E402

log = logging.getLogger("kafka_to_fhir.reprocess")


def source_from_flags(args: argparse.Namespace, topics: str | None) -> ReprocessSource:
    """The source the flags name (contracts/reprocess_source.py has the rules)."""
    return reprocess_source(topics, args.reprocess_from, args.reprocess_to, args.input_pattern)


def archive_root(bucket: str) -> str:
    """gs://name for a bucket name (the flag's form), a local folder or gs:// path as it is."""
    if bucket.startswith("gs://") or bucket.startswith("/") or bucket.startswith("."):
        return bucket.rstrip("/")
    return f"gs://{bucket.strip('/')}"


def read_source(
    pipeline: beam.Pipeline, source: ReprocessSource, settings: JobSettings, at_s: float
) -> dict[str, beam.PCollection]:
    """`messages` RawMessage and the source's own `failed` ErrorRecord."""
    if source.input_pattern:
        topic = source.topics[0] if source.topics else RAW_FILES_TOPIC
        return read_raw_files(pipeline, source.input_pattern, topic, settings.job_name, at_s, settings.storage_client)
    if not settings.archive_bucket:
        raise ValueError("--gcs_archive_bucket names the archive to reprocess")
    assert source.start_ms is not None and source.end_ms is not None  # noqa: S101  (source_from_flags)
    return read_archive(
        pipeline,
        archive_root(settings.archive_bucket),
        list(source.topics),
        source.start_ms,
        source.end_ms,
        settings.job_name,
        at_s,
        settings.storage_client,
    )


def _count_would_write(mapped: MappedMessage) -> Iterable[tuple[str, int]]:
    tally = Tally(DRY_RUN_NAMESPACE)
    tally.inc(WOULD_WRITE_MESSAGES)
    for resource in mapped.resources:
        rtype = resource.resource.get("resourceType") if isinstance(resource.resource, dict) else None
        tally.inc(f"would_write.{rtype or 'unknown'}")
    return tally.take()


def _count_would_fail(record: ErrorRecord) -> Iterable[tuple[str, int]]:
    # Stage and code are fixed vocabularies, never data, so they are safe as metric names.
    tally = Tally(DRY_RUN_NAMESPACE)
    tally.inc(f"would_fail.{record.stage}.{record.code}")
    return tally.take()


def _dead_lettered_as(record: ErrorRecord) -> tuple[str, int]:
    # DeadLetter's own counter's name (it counts the same record as it writes it).
    return metric_key(DEAD_LETTER_METRICS, f"{record.stage}.{record.code}"), 1


def build_reprocess(
    pipeline: beam.Pipeline,
    source: ReprocessSource,
    settings: JobSettings,
    *,
    dry_run: bool = False,
    launch_ms: int | None = None,
) -> dict[str, Any]:
    """The reprocess graph: the bounded read, then the streaming job's steps (no archive, no offset commit);
    a dry run stops after MapToFhir and only counts. Either ends with SummariseReprocess, which writes the
    summary object (reprocess_summary_name(job name, launch_ms)) to the error bucket when one is set."""
    at_s = time.time() if launch_ms is None else launch_ms / 1000
    read = read_source(pipeline, source, settings, at_s)
    messages = read[MESSAGES]
    if dry_run:
        parsed, mapped = parse_and_map(messages, settings)
        failures = (parsed.invalid, mapped.failed, read[FAILED]) | "AllFailures" >> beam.Flatten()
        outputs: dict[str, Any] = {"mapped": mapped.mapped, "failed": failures, "filtered": parsed.filtered}
        counted = [
            mapped.mapped | "CountWouldWrite" >> beam.FlatMap(_count_would_write),
            failures | "CountWouldFail" >> beam.FlatMap(_count_would_fail),
        ]
        done = failures
    else:
        # The archive's messages come out of GroupCopies, spread and checkpointed: a second shuffle before the
        # write would only hold every write back until all of them are mapped (a batch stage boundary).
        outputs = process_steps(messages, settings, extra_failures=[read[FAILED]], spread=bool(source.input_pattern))
        counted = [
            outputs["write_tally"],
            outputs["failed"] | "CountFailed" >> beam.Map(_dead_lettered_as),
        ]
        done = outputs["dead_lettered"]
    if settings.error_bucket:
        tallies = (
            read[TALLY],
            messages | "TallyMessages" >> CountAs(metric_key(NAMESPACE, "messages")),
            outputs["filtered"] | "CountFiltered" >> CountAs(FILTERED),
            *counted,
        )
        launched = int(at_s * 1000)
        outputs["summary"] = tallies | "SummariseReprocess" >> SummariseReprocess(
            settings.error_bucket, settings.job_name, launched, settings.storage_client, after=done
        )
        outputs["summary_name"] = reprocess_summary_name(settings.job_name, launched)
    return outputs


def job_counters(result: PipelineResult, *, running: bool = False) -> dict[str, int]:
    """ "namespace/name" -> value of every counter of the job (contracts/reprocess_summary.counter_totals):
    committed where the runner has it; `running`, with what its unfinished bundles counted so far."""
    return counter_totals(result.metrics().query()["counters"], running=running)


def _job_id(result: PipelineResult) -> str | None:
    job_id = getattr(result, "job_id", None)
    return job_id() if callable(job_id) else getattr(result, "_job_id", None)


# How often the job's state is asked for once the runner's wait has given up.
STATE_POLL_SECONDS = 5.0


def _deadline_exceeded(exc: Exception) -> bool:
    code = getattr(exc, "code", None)
    return callable(code) and getattr(code(), "name", "") == "DEADLINE_EXCEEDED"


def wait_for_end(
    result: PipelineResult, poll: float = STATE_POLL_SECONDS, sleep: Callable[[float], None] = time.sleep
) -> str:
    """The job's final state. A portable runner's wait (Prism's) gives up with DEADLINE_EXCEEDED after
    --job_server_timeout (300 s by default) on a longer batch job, which runs on: its state is then asked
    for every `poll` seconds until it ends."""
    try:
        return result.wait_until_finish()
    except Exception as exc:
        if not _deadline_exceeded(exc):
            raise
        log.info("the runner's wait gave up (its job service timeout); asking the job's state instead")
    while True:
        state = result.state
        if PipelineState.is_terminal(state):
            return state
        sleep(poll)


def wait_for_summary_object(
    settings: JobSettings,
    name: str,
    timeout: float = SUMMARY_WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, int] | None:
    """The counts of the job's summary object `name` in the error bucket once it exists (wait_for_counts)."""
    bucket: list[Any] = []

    def read() -> bytes:
        if not bucket:
            bucket.append(settings.storage_client().bucket(bucket_name(settings.error_bucket)))
        return bucket[0].blob(name).download_as_bytes()

    return wait_for_counts(read, name, timeout=timeout, sleep=sleep)


class Progress:
    """While the job runs, a line of progress every `seconds` from its counters (contracts/
    reprocess_progress.py), on a daemon thread; the runner answering no metrics yet is no error."""

    def __init__(self, result: PipelineResult, seconds: float = PROGRESS_SECONDS) -> None:
        self._result = result
        self._seconds = seconds
        self._meter = ProgressMeter(seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reprocess-progress", daemon=True)

    def __enter__(self) -> Progress:
        self._meter.start(time.monotonic())
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._seconds):
            try:
                counters = job_counters(self._result, running=True)
            except Exception as exc:  # noqa: BLE001  (progress is a courtesy; the job's end is what counts)
                log.info("reprocess progress: no counters yet (%s)", type(exc).__name__)
                continue
            log.info("%s", self._meter.line(counters, time.monotonic()))


def help_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m beam_pipeline.reprocess",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Beam's own flags also apply: --runner, --project, --region, --temp_location, --max_num_workers, "
        "--no_use_public_ips, --subnet, --job_name (default kafka-to-fhir-reprocess), and for the local stack "
        "--job_endpoint, --environment_type, --environment_config. Never --streaming: a reprocess is a batch job.",
    )
    add_reprocess_flags(parser)
    add_topics_flag(parser, required=False)
    add_fhir_store_flags(parser)
    add_storage_flags(parser, required=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = normalize_argv(sys.argv[1:] if argv is None else argv)
    parser = help_parser()
    if any(a in ("-h", "--help") for a in argv):
        parser.print_help()
        return 0
    flags, _ = parser.parse_known_args(argv)  # a malformed flag stops here, with the usage
    # The reprocess's own flags never reach Beam (see add_reprocess_flags).
    own = argparse.ArgumentParser(add_help=False)
    add_reprocess_flags(own)
    _, beam_argv = own.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        source = source_from_flags(flags, flags.topics)
        if "--streaming" in beam_argv:
            raise ValueError("a reprocess is a batch job: leave out --streaming")
        if not flags.dry_run and not flags.gcs_error_bucket:
            raise ValueError("--gcs_error_bucket receives the error records (only --dry_run writes none)")
        options = launch_options(beam_argv, streaming=False, default_job_name=DEFAULT_REPROCESS_JOB_NAME)
        settings = step_settings(options)
        pipeline = beam.Pipeline(options=options)
        outputs = build_reprocess(pipeline, source, settings, dry_run=flags.dry_run)
    except ValueError as exc:
        # Messages name the flag or secret field to fix; they never carry a secret's value.
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = pipeline.run()
    if flags.detach:
        # The ids name no patient and no secret; the waiting and the summary are the caller's.
        detached = {"job_name": settings.job_name, "job_id": _job_id(result), "state": str(result.state)}
        print(json.dumps({**detached, "summary_object": outputs.get("summary_name")}))
        return 0
    log.info("reprocess %s submitted; waiting for it to end", settings.job_name)
    done = False
    counts = None
    with Progress(result):
        state = wait_for_end(result)
        done = str(state).endswith("DONE")
        if done and outputs.get("summary_name"):
            counts = wait_for_summary_object(settings, outputs["summary_name"])
    if counts is not None:
        summary = from_counts(counts, dry_run=flags.dry_run)
    else:
        summary = final_summary(lambda: job_counters(result), dry_run=flags.dry_run, ended_done=done)
    report = {"job_name": settings.job_name, "state": str(state), **summary}
    # One line for launchers (the Airflow operator) to read: counts and codes, never content.
    print(json.dumps(report, sort_keys=True), flush=True)
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
