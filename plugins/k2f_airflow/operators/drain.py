"""Stopping the streaming job without losing messages.

Dataflow: the Google provider's DataflowStopJobOperator with drain_pipeline=True (the job stops reading,
finishes what it holds, commits offsets, then ends as DRAINED). Locally: Beam's job API has no drain, so
the job is cancelled through Prism's job service; messages not yet committed are read again at the next
launch and the idempotent write absorbs the repeat.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.google.cloud.operators.dataflow import DataflowStopJobOperator
from airflow.sdk.exceptions import AirflowFailException

from k2f_airflow.config import ConfigError
from k2f_airflow.hooks.jobs import LocalJobsHook, jobs_hook
from k2f_airflow.operators.common import summarize, task_config


class DrainPipelineOperator(DataflowStopJobOperator):
    """Drains (Dataflow) or cancels (local) every unfinished job of the configured name."""

    def __init__(self, **kwargs: Any) -> None:
        # job_name_prefix, project and location are set from the Variables in execute().
        super().__init__(drain_pipeline=True, **kwargs)

    def execute(self, context: Any) -> None:
        try:
            cfg = task_config(context)
            hook = jobs_hook(cfg)
        except ConfigError as exc:
            raise AirflowFailException(str(exc)) from None
        active = hook.active_jobs(cfg.job_name)
        if not active:
            summarize(context, f"no job named {cfg.job_name} is running: nothing to drain")
            return
        ids = ", ".join(j.job_id for j in active)
        if isinstance(hook, LocalJobsHook):
            for job in active:
                hook.cancel(job.job_id)
            summarize(context, f"cancelled {ids} ({cfg.job_name}) on the local runner")
            return
        # The provider matches by name prefix; the exact-name check above keeps a look-alike job safe,
        # and with one match the provider drains exactly that job id.
        self.job_name = None
        self.job_id = active[0].job_id if len(active) == 1 else None
        if self.job_id is None:
            self.job_name = cfg.job_name
        self.project_id = hook.project
        self.location = cfg.region
        self.gcp_conn_id = cfg.gcp_conn_id
        self.stop_timeout = cfg.drain_timeout_seconds
        super().execute(context)
        summarize(context, f"drained {ids} ({cfg.job_name}) on Dataflow")
