"""Waiting for the streaming job: until it runs (after launch) or until it has stopped (after drain)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException

from k2f_airflow.hooks.jobs import jobs_hook
from k2f_airflow.operators.common import summarize, task_config

RUNNING = "RUNNING"


class JobRunningSensor(BaseSensorOperator):
    """Done when job `job_id` is RUNNING; fails at once if it ends first. XCom: the job id and state."""

    template_fields = ("job_id",)

    def __init__(self, *, job_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id

    def execute(self, context: Any) -> Any:
        self.timeout = task_config(context).launch_timeout_seconds
        return super().execute(context)

    def poke(self, context: Any) -> PokeReturnValue:
        from beam_pipeline.job_service import TERMINAL

        cfg = task_config(context)
        state = jobs_hook(cfg).state(self.job_id)
        self.log.info("job %s is %s", self.job_id, state)
        if state in TERMINAL:
            raise AirflowFailException(
                f"job {self.job_id} ended as {state} before running: see the runner's job log "
                "(Dataflow console, or the Prism UI locally)"
            )
        if state != RUNNING:
            return PokeReturnValue(is_done=False)
        summarize(context, f"job {cfg.job_name} ({self.job_id}) is RUNNING on {cfg.runner}")
        return PokeReturnValue(
            is_done=True, xcom_value={"job_id": self.job_id, "job_name": cfg.job_name, "state": state}
        )


class JobStoppedSensor(BaseSensorOperator):
    """Done when no job of the configured name is unfinished any more."""

    def execute(self, context: Any) -> Any:
        self.timeout = task_config(context).drain_timeout_seconds
        return super().execute(context)

    def poke(self, context: Any) -> PokeReturnValue:
        cfg = task_config(context)
        active = jobs_hook(cfg).active_jobs(cfg.job_name)
        if active:
            self.log.info("still active: %s", ", ".join(f"{j.job_id} ({j.state})" for j in active))
            return PokeReturnValue(is_done=False)
        summarize(context, f"no job named {cfg.job_name} is running any more")
        return PokeReturnValue(is_done=True)
