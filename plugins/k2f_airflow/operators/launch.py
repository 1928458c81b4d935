"""Planning the launch: the Beam provider's BeamRunPythonPipelineOperator, configured from the settings.

`PlanLaunchOperator` reads the settings once and returns, as its XCom, the public arguments of
BeamRunPythonPipelineOperator for this deployment; the launch DAG passes them on unchanged
(`launch_arguments` below):
- dataflow: DataflowRunner with a DataflowConfiguration (wait_until_finished=False, append_job_name=False,
  drain_pipeline=True), so the task returns once Dataflow runs the job, the job keeps the configured name
  (the duplicate check and the drain find it by that name), and a killed launch drains rather than cancels;
- local: the pipeline's local runner options (launcher.local_stack_flags) aimed at Prism.
It also lists the jobs of that name that exist already, so `wait_until_running` can tell the new one.
The XCom holds names and flags, never a credential: secrets travel by their Secret Manager name.
"""

from __future__ import annotations

import sys
from typing import Any

from airflow.sdk import BaseOperator

from k2f_airflow.config import K2fConfig
from k2f_airflow.launch_flags import default_py_file, local_runner, pipeline_options
from k2f_airflow.operators.common import summarize, task_config

DATAFLOW_RUNNER = "DataflowRunner"


def launch_plan(cfg: K2fConfig) -> dict[str, Any]:
    """The Beam operator's arguments for this deployment (pure: tests compare them with Dataflow's API)."""
    options = pipeline_options(cfg)
    if cfg.is_local:
        runner, local = local_runner(cfg)
        options, dataflow_config = {**options, **local}, {}
    else:
        runner = DATAFLOW_RUNNER
        dataflow_config = {
            "job_name": cfg.job_name,
            "append_job_name": False,
            "project_id": cfg.gcp_project or None,
            "location": cfg.region,
            "gcp_conn_id": cfg.gcp_conn_id,
            "wait_until_finished": False,
            # If the launch task is killed mid-launch, drain rather than cancel: no message is dropped.
            "drain_pipeline": True,
        }
    return {
        "py_file": cfg.py_file or default_py_file(),
        "runner": runner,
        "pipeline_options": options,
        "dataflow_config": dataflow_config,
        "gcp_conn_id": cfg.gcp_conn_id,
    }


class PlanLaunchOperator(BaseOperator):
    """Returns launch_plan() plus the ids of jobs already carrying the name (`known_job_ids`).

    Each key is also its own XCom (multiple_outputs), so the DAG hands `plan.output["py_file"]` and the
    rest to the provider's operator as they are.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)

    def execute(self, context: Any) -> dict[str, Any]:
        from k2f_airflow.hooks.jobs import jobs_hook

        cfg = task_config(context)
        plan = launch_plan(cfg)
        plan["known_job_ids"] = [j.job_id for j in jobs_hook(cfg).jobs_named(cfg.job_name)]
        summarize(context, f"launching {cfg.job_name} on {plan['runner']} ({cfg.runner})")
        return plan


def launch_arguments(plan: Any) -> dict[str, Any]:
    """BeamRunPythonPipelineOperator's keyword arguments, each taken from the plan task's XCom.

    py_interpreter is not a setting: the launcher runs with the worker's own Python, so neither a trigger
    nor a Variable can choose the program a worker executes.
    """
    return {
        "py_file": plan["py_file"],
        "runner": plan["runner"],
        "pipeline_options": plan["pipeline_options"],
        "dataflow_config": plan["dataflow_config"],
        "gcp_conn_id": plan["gcp_conn_id"],
        "py_interpreter": sys.executable,
    }
