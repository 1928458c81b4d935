"""Stopping the streaming job without losing messages.

On Dataflow, `PlanDrainOperator` reads the settings once, finds the unfinished jobs of the configured
name, and returns the arguments of the Google provider's DataflowStopJobOperator for each; the drain DAG
maps that operator, as it is, over them (drain_pipeline=True: the job stops reading, finishes what it
holds, commits offsets, then ends as DRAINED). An empty list skips it.
On the local runner, `CancelLocalJobsOperator` cancels them through Prism's job service: Beam's job API
has no drain, so messages not yet committed are read again at the next launch and the idempotent write
absorbs the repeat. Each task skips itself on the other runner.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from k2f_airflow.operators.common import summarize, task_config


class PlanDrainOperator(BaseOperator):
    """XCom: one DataflowStopJobOperator kwargs dict per unfinished Dataflow job of the name."""

    def execute(self, context: Any) -> list[dict[str, Any]]:
        from k2f_airflow.hooks.jobs import jobs_hook

        cfg = task_config(context)
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


class CancelLocalJobsOperator(BaseOperator):
    """Cancels every unfinished job of the configured name on the local runner's job service."""

    def execute(self, context: Any) -> str:
        from k2f_airflow.hooks.jobs import jobs_hook

        cfg = task_config(context)
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
