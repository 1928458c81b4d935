"""A reprocess's tasks: starting its job (the Beam provider's operator, its arguments rendered from the
settings and the run's params; k2f_airflow/reprocess.py has the logic), waiting for the job with its
progress in the log, and reporting its summary."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from airflow.sdk import XComArg
from airflow.sdk.exceptions import AirflowFailException

from beam_pipeline.contracts.bucket_layout import reprocess_summary_prefix
from beam_pipeline.contracts.reprocess_source import ReprocessSource
from beam_pipeline.contracts.reprocess_summary import SUMMARY_WAIT_SECONDS
from k2f_airflow.config import K2fConfig
from k2f_airflow.operators.common import TemplatedSettings, summarize
from k2f_airflow.operators.launch import PipelineFromSettingsOperator
from k2f_airflow.reprocess import PREFIX, ReprocessRefused, job_name, overlapping, reprocess_plan, run_source
from k2f_airflow.sensors.job_state import JobStoppedSensor
from k2f_airflow.triggers.job_state import JobStateTrigger
from k2f_airflow.triggers.reprocess import ReprocessWaitTrigger

JOB_NAME = "job_name"


def _dry_run(context: Any) -> bool:
    return bool((context.get("params") or {}).get("dry_run"))


def _source_and_name(cfg: K2fConfig, context: Any) -> tuple[ReprocessSource, str]:
    """What this run reads (its params) and its job's name; AirflowFailException when the params are wrong."""
    try:
        source = run_source(cfg, context.get("params") or {})
    except ReprocessRefused as exc:
        raise AirflowFailException(str(exc)) from None
    return source, job_name(source, str(context.get("run_id", "")))


class RunReprocessOperator(PipelineFromSettingsOperator):
    """Starts the reprocess job (reprocess_plan, from the run's params), after refusing a run whose source
    overlaps a running reprocess's; keeps the job's name as the `job_name` XCom."""

    def pipeline_arguments(self, cfg: K2fConfig, context: Any) -> dict[str, Any]:
        source, name = _source_and_name(cfg, context)
        return reprocess_plan(cfg, source, name, dry_run=_dry_run(context))

    def execute(self, context: Any) -> Any:
        from k2f_airflow.hooks.jobs import jobs_hook

        cfg = self.settings
        source, name = _source_and_name(cfg, context)
        running = [j.job_name for j in jobs_hook(cfg).active_jobs_named_from(PREFIX)]
        clash = overlapping(source, running)
        if clash:
            raise AirflowFailException(
                f"reprocess {', '.join(clash)} is running over an overlapping range: wait until it has ended "
                "(or cancel it), then trigger again"
            )
        context["ti"].xcom_push(key=JOB_NAME, value=name)
        dry_run = "dry run of " if _dry_run(context) else ""
        summarize(context, f"{dry_run}reprocess {name} on {self.runner} ({cfg.runner})")
        return super().execute(context)

    @property
    def reprocess_job_name(self) -> XComArg:
        """The name of the job this run starts (for the wait and the report)."""
        return XComArg(self, key=JOB_NAME)


class WaitForReprocessSensor(JobStoppedSensor):
    """JobStoppedSensor for a reprocess's job: the same wait, on ReprocessWaitTrigger, which also logs the
    job's progress (messages done, rate, error records) about once a minute while it runs."""

    def _wait(self, context: Any, trigger: JobStateTrigger, timeout: int) -> Any:
        _, settings = trigger.serialize()
        return super()._wait(context, ReprocessWaitTrigger(**settings), timeout)


def newest_summary_object(cfg: K2fConfig, job_name: str) -> Callable[[], bytes]:
    """A reader of the newest summary object job `job_name` wrote to the error bucket (a job name's later
    launch sorts last); it raises FileNotFoundError while there is none."""
    from k2f_airflow.hooks.gcs import StorageHook

    buckets: list[Any] = []

    def read() -> bytes:
        # Built on first use: a connection that cannot be set up is waited out like a missing object, and
        # the report then falls back to the job's counters.
        if not buckets:
            buckets.append(StorageHook(cfg.gcp_conn_id).bucket(cfg.error_bucket))
        bucket = buckets[0]
        names = sorted(blob.name for blob in bucket.list_blobs(prefix=reprocess_summary_prefix(job_name)))
        if not names:
            raise FileNotFoundError(f"no summary object under {reprocess_summary_prefix(job_name)}")
        return bucket.blob(names[-1]).download_as_bytes()

    return read


class ReportReprocessOperator(TemplatedSettings):
    """The ended job's summary (contracts/reprocess_summary.py), in the task log and as the XCom
    `return_value`: from the summary object the job wrote when its work was done, waited for when the runner
    reported the job ended first (Prism does); from its counters when it wrote none. The job is found by its
    id (Dataflow: the Beam operator's XCom) or its name."""

    template_fields = (*TemplatedSettings.template_fields, "job_name", "job_id", "dry_run")

    def __init__(self, *, job_name: Any, job_id: Any = "", dry_run: Any = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.job_id = job_id
        self.dry_run = dry_run

    def execute(self, context: Any) -> dict[str, Any]:
        from beam_pipeline.contracts.reprocess_summary import final_summary, from_counts, wait_for_counts
        from k2f_airflow.hooks.jobs import jobs_hook

        cfg = self.settings
        jobs = jobs_hook(cfg)
        job_id = str(self.job_id or "")
        if not job_id:
            named = jobs.jobs_named(str(self.job_name))
            if not named:
                raise AirflowFailException(f"no job named {self.job_name} is known to the {cfg.runner} runner")
            job_id = named[-1].job_id
        # Rendered from "{{ params.dry_run }}": the text of a boolean.
        dry_run = self.dry_run in (True, "True", "true")
        state = jobs.state(job_id)
        counts = None
        if state == "DONE":
            read = newest_summary_object(cfg, str(self.job_name))
            counts = wait_for_counts(read, f"of {self.job_name}", timeout=SUMMARY_WAIT_SECONDS)
        if counts is not None:
            summary = from_counts(counts, dry_run=dry_run)
        else:
            summary = final_summary(lambda: jobs.counters(job_id), dry_run=dry_run, ended_done=state == "DONE")
        report = {"job_name": str(self.job_name), "job_id": job_id, "state": state, **summary}
        summarize(context, json.dumps(report, sort_keys=True))
        if state != "DONE":
            raise AirflowFailException(f"reprocess {self.job_name} ended {state}: its log on the runner says why")
        return report
