"""Starting the streaming job with the Beam provider's BeamRunPythonPipelineOperator.

The runner, flags and Dataflow configuration are resolved from the Variables when the task runs:
- dataflow: DataflowRunner with DataflowConfiguration(wait_until_finished=False, append_job_name=False),
  so the task returns once Dataflow runs the job and the job keeps the configured name (the duplicate
  check and the drain find it by that name);
- local: the pipeline's local runner options (beam_pipeline.runner_options) aimed at Prism.

The launcher prints one JSON line {"job_name", "job_id", "state"}; its job id is the task's XCom.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from airflow.providers.apache.beam.hooks.beam import BeamHook
from airflow.providers.apache.beam.operators.beam import BeamRunPythonPipelineOperator
from airflow.sdk.exceptions import AirflowFailException

from k2f_airflow.config import ConfigError, K2fConfig
from k2f_airflow.operators.common import summarize, task_config
from k2f_airflow.pipeline_flags import default_py_file, local_runner, pipeline_options

DATAFLOW_RUNNER = "DataflowRunner"


def parse_launch_line(line: str) -> dict[str, Any] | None:
    """The launcher's {"job_name", "job_id", "state"} line, None for any other output line."""
    text = line.strip()
    if not (text.startswith("{") and '"job_id"' in text):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) and value.get("job_id") else None


class _LaunchLineHook(BeamHook):
    """BeamHook that also hands every launcher output line to `on_line` (the provider passes none locally)."""

    def __init__(self, runner: str, on_line: Callable[[str], None]) -> None:
        super().__init__(runner=runner)
        self._on_line = on_line

    def start_python_pipeline(self, *args: Any, **kwargs: Any) -> None:
        inner = kwargs.get("process_line_callback")

        def both(line: str) -> None:
            self._on_line(line)
            if inner is not None:
                inner(line)

        kwargs["process_line_callback"] = both
        super().start_python_pipeline(*args, **kwargs)


class LaunchPipelineOperator(BeamRunPythonPipelineOperator):
    """BeamRunPythonPipelineOperator configured from K2fConfig; returns {"job_id", "job_name", "runner"}."""

    def __init__(self, **kwargs: Any) -> None:
        # py_file and runner are placeholders until execute() reads the Variables.
        super().__init__(py_file="", runner=DATAFLOW_RUNNER, **kwargs)
        self.launched: dict[str, Any] = {}

    def configure(self, cfg: K2fConfig) -> None:
        """Set the provider operator's arguments for this deployment (separate from execute for tests)."""
        self.py_file = cfg.py_file or default_py_file()
        self.py_interpreter = cfg.py_interpreter or sys.executable
        self.gcp_conn_id = cfg.gcp_conn_id
        options = pipeline_options(cfg)
        if cfg.is_local:
            self.runner, local = local_runner(cfg)
            self.pipeline_options = {**options, **local}
            self.dataflow_config = {}
        else:
            from airflow.providers.google.cloud.operators.dataflow import DataflowConfiguration

            self.runner = DATAFLOW_RUNNER
            self.pipeline_options = options
            self.dataflow_config = DataflowConfiguration(
                job_name=cfg.job_name,
                append_job_name=False,
                project_id=cfg.gcp_project or None,
                location=cfg.region,
                gcp_conn_id=cfg.gcp_conn_id,
                wait_until_finished=False,
                # If this task is killed mid-launch, drain rather than cancel: no message is dropped.
                drain_pipeline=True,
            )

    def _init_pipeline_options(self, *args: Any, **kwargs: Any) -> Any:
        result = super()._init_pipeline_options(*args, **kwargs)
        self.beam_hook = _LaunchLineHook(self.runner, self._on_line)
        return result

    def _on_line(self, line: str) -> None:
        launched = parse_launch_line(line)
        if launched is not None:
            self.launched = launched

    def execute(self, context: Any) -> dict[str, Any]:
        try:
            cfg = task_config(context)
            self.configure(cfg)
        except ConfigError as exc:
            raise AirflowFailException(str(exc)) from None
        super().execute(context)
        job_id = self.launched.get("job_id") or self.dataflow_job_id
        if not job_id:
            raise AirflowFailException(
                "the launcher exited without printing a job id: see the launcher output above in this log"
            )
        result = {"job_id": str(job_id), "job_name": cfg.job_name, "runner": cfg.runner}
        summarize(context, f"submitted {cfg.job_name} as job {job_id} on {cfg.runner}")
        return result
