"""Starting a Beam job: the Beam provider's BeamRunPythonPipelineOperator, its arguments rendered from the
settings.

`PipelineFromSettingsOperator` is that operator with one addition, the k2f `config` templated field: when
Airflow renders the task, the provider's own templated arguments (`py_file`, `runner`, `pipeline_options`,
`dataflow_config`, `gcp_conn_id`) are set from the settings (`pipeline_arguments`), so the UI's Rendered
Template view shows what the job is started with, and the provider's execute() runs as it is. The streaming
launch, `StartPipelineOperator`, takes them from `launch_plan`:
- dataflow: DataflowRunner with a DataflowConfiguration (wait_until_finished=False, append_job_name=False,
  drain_pipeline=True), so the task returns once Dataflow runs the job, the job keeps the configured name
  (the duplicate check and the drain find it by that name), and a killed launch drains rather than cancels;
- local: the pipeline's local runner options (launcher.local_stack_flags) aimed at Prism.
Before starting, it keeps the ids of the jobs of that name that exist already as its `known_job_ids` XCom,
so `wait_until_running` can tell the new one. Nothing rendered or kept holds a credential: secrets travel by
their Secret Manager name.
"""

from __future__ import annotations

import sys
from typing import Any

from airflow.providers.apache.beam.operators.beam import BeamRunPythonPipelineOperator
from airflow.sdk import XComArg

from k2f_airflow.config import K2fConfig
from k2f_airflow.launch_flags import default_py_file, local_runner, pipeline_options
from k2f_airflow.operators.common import TemplatedSettings, summarize

DATAFLOW_RUNNER = "DataflowRunner"
KNOWN_JOB_IDS = "known_job_ids"


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


class PipelineFromSettingsOperator(TemplatedSettings, BeamRunPythonPipelineOperator):
    """The provider's BeamRunPythonPipelineOperator with its arguments rendered from the settings by
    `pipeline_arguments`, which a subclass implements for its job."""

    template_fields = (*TemplatedSettings.template_fields, *BeamRunPythonPipelineOperator.template_fields)
    template_fields_renderers = {
        **TemplatedSettings.template_fields_renderers,
        **BeamRunPythonPipelineOperator.template_fields_renderers,
    }

    def __init__(self, **kwargs: Any) -> None:
        # The arguments are rendered from the settings (render_template_fields); until then, placeholders.
        super().__init__(py_file="", **kwargs)

    def pipeline_arguments(self, cfg: K2fConfig, context: Any) -> dict[str, Any]:
        """The provider's templated arguments for this run, launch_plan's keys (pure: rendering must not act)."""
        raise NotImplementedError

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        for name, value in self.pipeline_arguments(self.settings, context).items():
            setattr(self, name, value)
        # Not a setting: the launcher runs with the worker's own Python, so neither a trigger nor a Variable
        # can choose the program a worker executes.
        self.py_interpreter = sys.executable


class StartPipelineOperator(PipelineFromSettingsOperator):
    """Starts the streaming job (launch_plan), after keeping the ids of the jobs of its name that exist
    already as the `known_job_ids` XCom."""

    def pipeline_arguments(self, cfg: K2fConfig, context: Any) -> dict[str, Any]:
        return launch_plan(cfg)

    def execute(self, context: Any) -> Any:
        from k2f_airflow.hooks.jobs import jobs_hook

        cfg = self.settings
        known = [j.job_id for j in jobs_hook(cfg).jobs_named(cfg.job_name)]
        context["ti"].xcom_push(key=KNOWN_JOB_IDS, value=known)
        summarize(context, f"launching {cfg.job_name} on {self.runner} ({cfg.runner})")
        return super().execute(context)

    @property
    def known_job_ids(self) -> XComArg:
        """The ids of the jobs of the name that existed before this launch (for JobRunningSensor)."""
        return XComArg(self, key=KNOWN_JOB_IDS)
