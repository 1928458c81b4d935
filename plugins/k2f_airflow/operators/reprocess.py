"""A reprocess's tasks: planning it (its source from the run's params, the refusal of an overlapping one, the
Beam provider's BeamRunPythonPipelineOperator arguments; k2f_airflow/reprocess.py has the logic), waiting
for its job with its progress in the log, and reporting its summary."""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from k2f_airflow.operators.common import summarize, task_config
from k2f_airflow.reprocess import PREFIX, ReprocessRefused, job_name, overlapping, reprocess_plan, run_source
from k2f_airflow.sensors.job_state import JobStoppedSensor
from k2f_airflow.triggers.job_state import JobStateTrigger
from k2f_airflow.triggers.reprocess import ReprocessWaitTrigger


class PlanReprocessOperator(BaseOperator):
    """Returns reprocess_plan() (each key its own XCom, as PlanLaunchOperator's), after refusing a run whose
    source overlaps a running reprocess's."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)

    def execute(self, context: Any) -> dict[str, Any]:
        from k2f_airflow.hooks.jobs import jobs_hook

        cfg = task_config(context)
        params = context.get("params") or {}
        try:
            source = run_source(cfg, params)
        except ReprocessRefused as exc:
            raise AirflowFailException(str(exc)) from None
        name = job_name(source, str(context.get("run_id", "")))
        running = [j.job_name for j in jobs_hook(cfg).active_jobs_named_from(PREFIX)]
        clash = overlapping(source, running)
        if clash:
            raise AirflowFailException(
                f"reprocess {', '.join(clash)} is running over an overlapping range: wait until it has ended "
                "(or cancel it), then trigger again"
            )
        dry_run = bool(params.get("dry_run"))
        plan = reprocess_plan(cfg, source, name, dry_run=dry_run)
        summarize(context, f"{'dry run of ' if dry_run else ''}reprocess {name} on {plan['runner']} ({cfg.runner})")
        return {**plan, "job_name": name, "dry_run": dry_run}


class WaitForReprocessSensor(JobStoppedSensor):
    """JobStoppedSensor for a reprocess's job: the same wait, on ReprocessWaitTrigger, which also logs the
    job's progress (messages done, rate, error records) about once a minute while it runs."""

    def _wait(self, context: Any, trigger: JobStateTrigger, timeout: int) -> Any:
        _, settings = trigger.serialize()
        return super()._wait(context, ReprocessWaitTrigger(**settings), timeout)


class ReportReprocessOperator(BaseOperator):
    """The ended job's summary from its counters (contracts/reprocess_summary.py), in the task log and as the
    XCom `return_value`; the job is found by its id (Dataflow: the Beam operator's XCom) or its name."""

    template_fields = ("job_name", "job_id", "dry_run")

    def __init__(self, *, job_name: Any, job_id: Any = "", dry_run: Any = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.job_id = job_id
        self.dry_run = dry_run

    def execute(self, context: Any) -> dict[str, Any]:
        from beam_pipeline.contracts.reprocess_summary import summary
        from k2f_airflow.hooks.jobs import jobs_hook

        cfg = task_config(context)
        jobs = jobs_hook(cfg)
        job_id = str(self.job_id or "")
        if not job_id:
            named = jobs.jobs_named(str(self.job_name))
            if not named:
                raise AirflowFailException(f"no job named {self.job_name} is known to the {cfg.runner} runner")
            job_id = named[-1].job_id
        dry_run = self.dry_run in (True, "True", "true")
        state = jobs.state(job_id)
        report = {
            "job_name": str(self.job_name),
            "job_id": job_id,
            "state": state,
            **summary(jobs.counters(job_id), dry_run=dry_run),
        }
        summarize(context, json.dumps(report, sort_keys=True))
        if state != "DONE":
            raise AirflowFailException(f"reprocess {self.job_name} ended {state}: its log on the runner says why")
        return report
