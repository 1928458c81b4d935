"""Stopping the streaming job without losing messages.

On Dataflow, `PlanDrainOperator` finds the unfinished jobs of the configured name and returns the
arguments of the Google provider's DataflowStopJobOperator for each; the drain DAG maps that operator, as
it is, over the jobs found (dynamic task mapping: one stop task per job; drain_pipeline=True: the job stops
reading, finishes what it holds, commits offsets, then ends as DRAINED). An empty list skips it.
On the local runner Beam's job API has no drain, so the DAG makes one: `RequestLocalDrainOperator` writes
the drain marker the job's read step watches (beam_pipeline/delivery/drain_signal.py), so it stops taking
messages; `OffsetsSettledSensor` waits until what it took has settled (committed equals read on every
partition); `CancelLocalJobsOperator` then cancels the job. Whatever the job still held is not committed
and is read again at the next launch. Each task skips itself on the other runner. `ReportDrainOperator`,
last on both runners, reports how many messages the job settled and whether any was left to the next job.
"""

from __future__ import annotations

import time
from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

from k2f_airflow.operators.common import TemplatedSettings, summarize


class PlanDrainOperator(TemplatedSettings):
    """XCom: one DataflowStopJobOperator kwargs dict per unfinished Dataflow job of the name."""

    def execute(self, context: Any) -> list[dict[str, Any]]:
        from k2f_airflow.hooks.jobs import jobs_hook

        cfg = self.settings
        if cfg.is_local:
            summarize(context, "local runner: cancel_local_jobs stops the job")
            return []
        hook = jobs_hook(cfg)
        active = hook.active_jobs(cfg.job_name)
        # By id, not by name prefix: a job whose name merely starts the same stays untouched.
        plan = [
            {
                "job_id": job.job_id,
                "project_id": hook.project,
                "location": cfg.region,
                "gcp_conn_id": cfg.gcp_conn_id,
                "stop_timeout": cfg.drain_timeout_seconds,
            }
            for job in active
        ]
        ids = ", ".join(j.job_id for j in active) or "none"
        summarize(context, f"{len(active)} Dataflow job(s) named {cfg.job_name} to drain: {ids}")
        return plan


class CancelLocalJobsOperator(TemplatedSettings):
    """Cancels every unfinished job of the configured name on the local runner's job service."""

    def execute(self, context: Any) -> str:
        from k2f_airflow.hooks.jobs import jobs_hook

        cfg = self.settings
        if not cfg.is_local:
            raise AirflowSkipException("Dataflow runner: drain_dataflow_job stops the job")
        hook = jobs_hook(cfg)
        active = hook.active_jobs(cfg.job_name)
        for job in active:
            hook.cancel(job.job_id)
        ids = ", ".join(j.job_id for j in active)
        if not ids:
            return summarize(context, f"no job named {cfg.job_name} is running: nothing to cancel")
        return summarize(context, f"cancelled {ids} ({cfg.job_name}) on the local runner")


class RequestLocalDrainOperator(TemplatedSettings):
    """Local runner: asks the running job to stop taking messages. XCom: when (ms), or None if no job runs."""

    def execute(self, context: Any) -> int | None:
        from beam_pipeline.contracts.bucket_layout import drain_marker_name
        from beam_pipeline.delivery.drain_signal import marker_body
        from k2f_airflow.hooks.gcs import StorageHook
        from k2f_airflow.hooks.jobs import jobs_hook

        cfg = self.settings
        if not cfg.is_local:
            raise AirflowSkipException("Dataflow runner: drain_dataflow_job drains the job")
        if not jobs_hook(cfg).active_jobs(cfg.job_name):
            summarize(context, f"no job named {cfg.job_name} is running: nothing to drain")
            return None
        cfg.require("archive_bucket")
        now_ms = int(time.time() * 1000)
        name = drain_marker_name(cfg.job_name)
        StorageHook(cfg.gcp_conn_id).bucket(cfg.archive_bucket).blob(name).upload_from_string(
            marker_body(now_ms), content_type="application/json"
        )
        summarize(context, f"asked job {cfg.job_name} to stop taking messages (gs://{cfg.archive_bucket}/{name})")
        return now_ms


class ReportDrainOperator(TemplatedSettings):
    """Last task: how many messages the stopped job settled, and whether it left any unsettled (re-read next)."""

    def execute(self, context: Any) -> dict[str, Any]:
        from k2f_airflow.drain import drain_report
        from k2f_airflow.kafka_client import KafkaClient

        cfg = self.settings
        partitions = KafkaClient(cfg.kafka_secret_resource_name).consumer_lag(cfg.kafka_consumer_group, cfg.topic_list)
        report = drain_report(partitions, cfg.job_name)
        summarize(context, report.summary())
        return {
            "job_name": report.job_name,
            "settled": report.settled,
            "partitions": report.partitions,
            "left_behind": sum(n for _, n in report.left),
        }
