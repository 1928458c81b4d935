"""The launch and drain operators: the exact provider arguments and hook calls (Google is not reachable)."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from airflow.providers.google.cloud.hooks.dataflow import DataflowHook as RealDataflowHook
from airflow.sdk.exceptions import AirflowFailException
from k2f_airflow.hooks.jobs import DataflowJobsHook, LocalJobsHook
from k2f_airflow.operators.drain import DrainPipelineOperator
from k2f_airflow.operators.launch import LaunchPipelineOperator, parse_launch_line

from beam_pipeline.job_service import JobInfo

BEAM_OPS = "airflow.providers.apache.beam.operators.beam"


def launch_line(job_id="job-123"):
    return json.dumps({"job_name": "k2f-unit", "job_id": job_id, "state": "RUNNING"}) + "\n"


def test_parse_launch_line_reads_only_the_launchers_line():
    assert parse_launch_line(launch_line())["job_id"] == "job-123"
    assert parse_launch_line("INFO submitting") is None
    assert parse_launch_line('{"job_id": ') is None


def test_dataflow_launch_passes_the_exact_configuration(dataflow_cfg, context):
    op = LaunchPipelineOperator(task_id="start_pipeline")
    op.configure(dataflow_cfg)
    assert op.runner == "DataflowRunner"
    cfg = op.dataflow_config
    assert (cfg.job_name, cfg.append_job_name, cfg.project_id, cfg.location) == (
        "k2f-unit",
        False,
        "df-project",
        "europe-west1",
    )
    assert cfg.wait_until_finished is False and cfg.drain_pipeline is True
    assert op.py_file.endswith("beam_pipeline/dataflow_kafka_to_fhirstore.py")

    def start(**kwargs):
        kwargs["process_line_callback"]("Submitted job: 2025-01-01_00_00_00-123\n")
        kwargs["process_line_callback"](launch_line("2025-01-01_00_00_00-123"))

    with (
        mock.patch(f"{BEAM_OPS}.DataflowHook") as dataflow_hook,
        mock.patch("airflow.providers.apache.beam.hooks.beam.BeamHook.start_python_pipeline", side_effect=start) as run,
        mock.patch("k2f_airflow.operators.launch.task_config", return_value=dataflow_cfg),
        mock.patch(f"{BEAM_OPS}.DataflowJobLink"),
    ):
        # The job's name is computed by the real static method: the Dataflow job keeps the configured name.
        dataflow_hook.build_dataflow_job_name.side_effect = RealDataflowHook.build_dataflow_job_name
        dataflow_hook.return_value.project_id = "connection-project"
        result = op.execute(context)
    variables = run.call_args.kwargs["variables"]
    assert variables["job_name"] == "k2f-unit"
    assert variables["project"] == "df-project" and variables["region"] == "europe-west1"
    assert variables["temp_location"] == "gs://tmp-bucket/tmp" and variables["streaming"] is True
    assert variables["hcapi_post_fhir_store"] == "post"
    dataflow_hook.assert_called_once()
    assert dataflow_hook.call_args.kwargs["wait_until_finished"] is False
    dataflow_hook.return_value.wait_for_done.assert_called_once_with(
        job_name="k2f-unit", location="europe-west1", job_id="2025-01-01_00_00_00-123", project_id="df-project"
    )
    assert result == {"job_id": "2025-01-01_00_00_00-123", "job_name": "k2f-unit", "runner": "dataflow"}
    assert "2025-01-01_00_00_00-123" in context["ti"].xcom["summary"]


def test_local_launch_reads_the_job_id_from_the_launcher(local_cfg, context):
    op = LaunchPipelineOperator(task_id="start_pipeline")

    def start(**kwargs):
        kwargs["process_line_callback"](launch_line("job-local-1"))

    with (
        mock.patch("airflow.providers.apache.beam.hooks.beam.BeamHook.start_python_pipeline", side_effect=start) as run,
        mock.patch("k2f_airflow.operators.launch.task_config", return_value=local_cfg),
    ):
        result = op.execute(context)
    assert op.runner != "DataflowRunner"
    assert run.call_args.kwargs["variables"]["job_endpoint"] == "127.0.0.1:8073"
    assert result["job_id"] == "job-local-1"


def test_launch_without_a_job_id_fails(local_cfg, context):
    op = LaunchPipelineOperator(task_id="start_pipeline")
    with (
        mock.patch("airflow.providers.apache.beam.hooks.beam.BeamHook.start_python_pipeline"),
        mock.patch("k2f_airflow.operators.launch.task_config", return_value=local_cfg),
        pytest.raises(AirflowFailException, match="without printing a job id"),
    ):
        op.execute(context)


def test_dataflow_drain_uses_the_stop_operator_with_drain(dataflow_cfg, context):
    jobs = mock.create_autospec(DataflowJobsHook, instance=True)
    jobs.project = "df-project"
    jobs.active_jobs.return_value = [JobInfo("2025-01-01_00_00_00-123", "k2f-unit", "RUNNING")]
    op = DrainPipelineOperator(task_id="drain_pipeline")
    with (
        mock.patch("k2f_airflow.operators.drain.task_config", return_value=dataflow_cfg),
        mock.patch("k2f_airflow.operators.drain.jobs_hook", return_value=jobs),
        mock.patch("airflow.providers.google.cloud.operators.dataflow.DataflowHook") as hook,
    ):
        op.execute(context)
    hook.assert_called_once_with(
        gcp_conn_id="google_cloud_default",
        poll_sleep=10,
        impersonation_chain=None,
        cancel_timeout=1800,
        drain_pipeline=True,
    )
    hook.return_value.cancel_job.assert_called_once_with(
        job_name=None, project_id="df-project", location="europe-west1", job_id="2025-01-01_00_00_00-123"
    )


def test_local_drain_cancels_through_the_job_service(local_cfg, context):
    jobs = mock.create_autospec(LocalJobsHook, instance=True)
    jobs.active_jobs.return_value = [JobInfo("j1", "k2f-unit", "RUNNING")]
    with (
        mock.patch("k2f_airflow.operators.drain.task_config", return_value=local_cfg),
        mock.patch("k2f_airflow.operators.drain.jobs_hook", return_value=jobs),
    ):
        DrainPipelineOperator(task_id="drain_pipeline").execute(context)
    jobs.cancel.assert_called_once_with("j1")
    assert "cancelled j1" in context["ti"].xcom["summary"]


def test_dataflow_jobs_hook_lists_active_jobs_of_exactly_the_name():
    with mock.patch("airflow.providers.google.cloud.hooks.dataflow.DataflowHook") as hook_cls:
        hook = hook_cls.return_value
        hook.num_retries = 5
        jobs_api = hook.get_conn.return_value.projects.return_value.locations.return_value.jobs.return_value
        jobs_api.list.return_value.execute.return_value = {
            "jobs": [
                {"id": "a", "name": "k2f-unit", "currentState": "JOB_STATE_RUNNING"},
                {"id": "b", "name": "k2f-unit-2", "currentState": "JOB_STATE_RUNNING"},
            ]
        }
        jobs_api.list_next.return_value = None
        hook.get_job.return_value = {"currentState": "JOB_STATE_DRAINING"}
        jobs = DataflowJobsHook("gcp", "df-project", "europe-west1")
        assert jobs.active_jobs("k2f-unit") == [JobInfo("a", "k2f-unit", "RUNNING")]
        assert jobs.state("a") == "DRAINING"
    hook_cls.assert_called_once_with(gcp_conn_id="gcp")
    jobs_api.list.assert_called_once_with(projectId="df-project", location="europe-west1", filter="ACTIVE")
    jobs_api.list.return_value.execute.assert_called_once_with(num_retries=5)
    hook.get_job.assert_called_once_with(job_id="a", project_id="df-project", location="europe-west1")
