"""
### k2f_reprocess: push history through the pipeline again

Trigger manually, with the params below: the archive of `topics` over [`from`, `to`) (ISO 8601, UTC), or raw
message files matching `input_pattern` (NDJSON, one raw message a line, gs:// or a local path); `mappings`
overrides the mapping set; `dry_run` only counts what would be written and what would fail. The launch's
prerequisites that concern a reprocess run first (mappings, buckets, FHIR store). `run_reprocess` is the Beam
provider's `BeamRunPythonPipelineOperator` with its arguments rendered from the settings and the params (the
Rendered Template view shows them): the batch job `python -m beam_pipeline.reprocess --detach` (Dataflow, or
the local runner when the setting `runner` is `local`), under a name that carries what it reads; it refuses a
run that overlaps a running reprocess (same topic and time, or the same files) before starting, and keeps the
job's name as its `job_name` XCom. `wait_until_done` waits on the triggerer until the job has ended, logging
its progress about once a minute (messages done, rate, error records); `report_reprocess` then logs the job's
summary from its counters (objects read, messages, written, unchanged, superseded, filtered, failed by code),
keeps it as its XCom, and fails when the job did not end DONE. The streaming job keeps running beside it.

Settings: the Airflow Variable `k2f` (docs/airflow.md); a run whose conf holds any undeclared key is refused.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param, TaskGroup
from k2f_airflow.dag_defaults import dag_kwargs
from k2f_airflow.operators.prerequisites import PrerequisiteCheckOperator
from k2f_airflow.operators.reprocess import ReportReprocessOperator, RunReprocessOperator, WaitForReprocessSensor
from k2f_airflow.reprocess import CHECKS, POLL_SECONDS, WAIT_SECONDS

_TEXT = ["null", "string"]

with DAG(
    **dag_kwargs("k2f_reprocess", __doc__, schedule=None, retries=0),
    params={
        "topics": Param(None, type=_TEXT, description="topics whose archive to read (default: the topics setting)"),
        "from": Param(None, type=_TEXT, description="start of the range, ISO 8601 UTC, e.g. 2026-12-01"),
        "to": Param(None, type=_TEXT, description="end of the range, exclusive, e.g. 2026-12-02T00:00:00Z"),
        "input_pattern": Param(None, type=_TEXT, description="instead of the archive: raw message files (NDJSON)"),
        "mappings": Param(None, type=_TEXT, description="overrides the mappings setting for this run"),
        "dry_run": Param(False, type="boolean", description="only count what would be written and would fail"),
    },
):
    with TaskGroup("prerequisites") as prerequisites:
        for check in CHECKS:
            PrerequisiteCheckOperator(task_id=check, check=check)

    run = RunReprocessOperator(task_id="run_reprocess")
    done = WaitForReprocessSensor(
        task_id="wait_until_done",
        job_name=run.reprocess_job_name,
        timeout_seconds=WAIT_SECONDS,
        poke_interval=POLL_SECONDS,
    )
    report = ReportReprocessOperator(
        task_id="report_reprocess",
        job_name=run.reprocess_job_name,
        job_id="{{ ti.xcom_pull(task_ids='run_reprocess', key='dataflow_job_id') or '' }}",
        dry_run="{{ params.dry_run }}",
    )
    prerequisites >> run >> done >> report
