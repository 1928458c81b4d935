"""Launch and drain: the provider operators with our arguments, rendered from the settings, and the exact
calls they make to Google (which is not reachable here); the deferrable waits; the refusal of undeclared
trigger conf."""

from __future__ import annotations

import asyncio
import json
from unittest import mock

import pytest
from airflow.providers.apache.beam.operators.beam import BeamRunPythonPipelineOperator
from airflow.providers.google.cloud.hooks.dataflow import DataflowHook as RealDataflowHook
from airflow.providers.google.cloud.operators.dataflow import DataflowStopJobOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskDeferred
from k2f_airflow.hooks.jobs import DataflowJobsHook, LocalJobsClient
from k2f_airflow.operators.drain import CancelLocalJobsOperator, PlanDrainOperator
from k2f_airflow.operators.launch import KNOWN_JOB_IDS, StartPipelineOperator, launch_plan
from k2f_airflow.sensors.job_state import JobRunningSensor, JobStoppedSensor
from k2f_airflow.triggers.job_state import RUNNING, STOPPED, JobStateTrigger

from launcher.job_states import JobInfo
from tests.unit.airflow.conftest import DATAFLOW, LOCAL, rendered

BEAM_OPS = "airflow.providers.apache.beam.operators.beam"
BEAM_HOOK = "airflow.providers.apache.beam.hooks.beam.BeamHook"


def _start(config, context, existing=()):  # noqa: ANN001, ANN202
    """start_pipeline as Airflow runs it: rendered from `config`, the runner knowing `existing` jobs."""
    jobs = mock.create_autospec(LocalJobsClient, instance=True)
    jobs.jobs_named.return_value = list(existing)
    op = rendered(StartPipelineOperator(task_id="start_pipeline", config=config), context)
    return op, mock.patch("k2f_airflow.hooks.jobs.jobs_hook", return_value=jobs)


def test_dataflow_launch_passes_the_exact_configuration(dataflow_cfg, context):
    plan = launch_plan(dataflow_cfg)
    assert plan["runner"] == "DataflowRunner"
    assert plan["dataflow_config"] == {
        "job_name": "k2f-unit",
        "append_job_name": False,
        "project_id": "df-project",
        "location": "europe-west1",
        "gcp_conn_id": "google_cloud_default",
        "wait_until_finished": False,
        "drain_pipeline": True,
    }
    assert plan["py_file"].endswith("beam_pipeline/dataflow_kafka_to_fhirstore.py")
    json.dumps(plan)  # rendered fields: plain JSON

    op, jobs = _start(DATAFLOW, context)
    assert isinstance(op, BeamRunPythonPipelineOperator)  # the provider's execute() runs as it is
    assert {k: getattr(op, k) for k in plan} == plan

    def start(**kwargs):
        kwargs["process_line_callback"]("Submitted job: 2025-01-01_00_00_00-123\n")

    with (
        jobs,
        mock.patch(f"{BEAM_OPS}.DataflowHook") as dataflow_hook,
        mock.patch("airflow.providers.apache.beam.hooks.beam.BeamHook.start_python_pipeline", side_effect=start) as run,
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
    assert result == {"dataflow_job_id": "2025-01-01_00_00_00-123"}


def test_local_launch_runs_the_pipeline_with_the_workers_own_python(local_cfg, context):
    import sys

    op, jobs = _start(LOCAL, context)
    with jobs, mock.patch("airflow.providers.apache.beam.hooks.beam.BeamHook.start_python_pipeline") as run:
        op.execute(context)
    assert op.runner != "DataflowRunner" and op.py_interpreter == sys.executable
    assert run.call_args.kwargs["variables"]["job_endpoint"] == "127.0.0.1:8073"
    assert run.call_args.kwargs["variables"]["job_name"] == "k2f-unit"
    assert run.call_args.kwargs["py_interpreter"] == sys.executable


def test_the_launch_keeps_the_jobs_that_exist_already_before_starting(context):
    op, jobs = _start(LOCAL, context, [JobInfo("old-1", "k2f-unit", "CANCELLED")])

    def start(**_kwargs):
        assert context["ti"].xcom[KNOWN_JOB_IDS] == ["old-1"]  # kept before the job exists

    with jobs as hook, mock.patch(f"{BEAM_HOOK}.start_python_pipeline", side_effect=start):
        op.execute(context)
    hook.return_value.jobs_named.assert_called_once_with("k2f-unit")
    assert "launching k2f-unit" in context["ti"].xcom["summary"]


def test_dataflow_drain_plans_the_stock_stop_operator_by_job_id(dataflow_cfg, context):
    jobs = mock.create_autospec(DataflowJobsHook, instance=True)
    jobs.project = "df-project"
    jobs.active_jobs.return_value = [JobInfo("2025-01-01_00_00_00-123", "k2f-unit", "RUNNING")]
    with mock.patch("k2f_airflow.hooks.jobs.jobs_hook", return_value=jobs):
        plan = rendered(PlanDrainOperator(task_id="plan_drain", config=DATAFLOW), context).execute(context)
    [kwargs] = plan
    op = DataflowStopJobOperator(task_id="drain_dataflow_job", drain_pipeline=True, **kwargs)
    with mock.patch("airflow.providers.google.cloud.operators.dataflow.DataflowHook") as hook:
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


def test_local_drain_cancels_through_the_job_service(local_cfg, dataflow_cfg, context):
    jobs = mock.create_autospec(LocalJobsClient, instance=True)
    jobs.active_jobs.return_value = [JobInfo("j1", "k2f-unit", "RUNNING")]
    with mock.patch("k2f_airflow.hooks.jobs.jobs_hook", return_value=jobs):
        assert rendered(PlanDrainOperator(task_id="plan_drain", config=LOCAL), context).execute(context) == []
        rendered(CancelLocalJobsOperator(task_id="cancel_local_jobs", config=LOCAL), context).execute(context)
    jobs.cancel.assert_called_once_with("j1")
    assert "cancelled j1" in context["ti"].xcom["summary"]
    with pytest.raises(AirflowSkipException):
        rendered(CancelLocalJobsOperator(task_id="cancel_local_jobs", config=DATAFLOW), context).execute(context)


def test_dataflow_jobs_hook_lists_active_jobs_of_exactly_the_name():
    with (
        mock.patch.object(RealDataflowHook, "__init__", return_value=None) as init,
        mock.patch.object(DataflowJobsHook, "get_conn") as get_conn,
        mock.patch.object(DataflowJobsHook, "get_job", return_value={"currentState": "JOB_STATE_DRAINING"}) as get_job,
        mock.patch.object(DataflowJobsHook, "num_retries", 5),
    ):
        jobs = DataflowJobsHook("gcp", "df-project", "europe-west1")
        jobs_api = get_conn.return_value.projects.return_value.locations.return_value.jobs.return_value
        jobs_api.list.return_value.execute.return_value = {
            "jobs": [
                {"id": "a", "name": "k2f-unit", "currentState": "JOB_STATE_RUNNING"},
                {"id": "b", "name": "k2f-unit-2", "currentState": "JOB_STATE_RUNNING"},
            ]
        }
        jobs_api.list_next.return_value = None
        assert jobs.active_jobs("k2f-unit") == [JobInfo("a", "k2f-unit", "RUNNING")]
        assert jobs.state("a") == "DRAINING"
    init.assert_called_once_with(gcp_conn_id="gcp")
    jobs_api.list.assert_called_once_with(projectId="df-project", location="europe-west1", filter="ACTIVE")
    jobs_api.list.return_value.execute.assert_called_once_with(num_retries=5)
    get_job.assert_called_once_with(job_id="a", project_id="df-project", location="europe-west1")


# -- the waits run on the triggerer -------------------------------------------------------------------


def test_both_sensors_defer_with_their_rendered_settings(local_cfg, context):
    not_yet = FakeJobs([JobInfo("j", local_cfg.job_name, "STARTING")])
    with (
        mock.patch.object(JobStateTrigger, "hook", return_value=not_yet),
    ):
        with pytest.raises(TaskDeferred) as running:
            rendered(
                JobRunningSensor(task_id="wait_until_running", known_job_ids=["old"], poke_interval=3, config=LOCAL),
                context,
            ).execute(context)
        with pytest.raises(TaskDeferred) as stopped:
            rendered(JobStoppedSensor(task_id="wait_until_stopped", config=LOCAL), context).execute(context)
    classpath, kwargs = running.value.trigger.serialize()
    assert classpath == "k2f_airflow.triggers.job_state.JobStateTrigger"
    assert kwargs["target"] == RUNNING and kwargs["known_job_ids"] == ["old"] and kwargs["poll_seconds"] == 3
    assert kwargs["local_job_endpoint"] == "127.0.0.1:8073" and kwargs["timeout_seconds"] == 900
    assert stopped.value.trigger.serialize()[1]["target"] == STOPPED
    JobStateTrigger(**kwargs)  # what the triggerer rebuilds from the serialized form


class FakeJobs:
    def __init__(self, *views):
        self.views = list(views)

    def _next(self):
        return self.views.pop(0) if len(self.views) > 1 else self.views[0]

    def jobs_named(self, name):
        return [j for j in self._next() if j.job_name == name]

    def active_jobs(self, name):
        return [j for j in self._next() if j.job_name == name and j.state not in ("CANCELLED", "FAILED", "DONE")]

    def state(self, job_id):
        return next(j.state for j in self._next() if j.job_id == job_id)


class AsyncJobs:
    """FakeJobs answering as the asyncio hooks do: the trigger must await every look."""

    def __init__(self, jobs):
        self.jobs = jobs

    async def jobs_named(self, name):
        return self.jobs.jobs_named(name)

    async def active_jobs(self, name):
        return self.jobs.active_jobs(name)

    async def state(self, job_id):
        return self.jobs.state(job_id)


def _events(trigger, hook):
    async def collect():
        with (
            mock.patch.object(JobStateTrigger, "hook", side_effect=AssertionError("a blocking look on the triggerer")),
            mock.patch.object(JobStateTrigger, "async_hook", return_value=AsyncJobs(hook)),
        ):
            return [e.payload async for e in trigger.run()]

    return asyncio.run(collect())


def _trigger(target, **kw):
    return JobStateTrigger(target=target, runner="local", job_name="k2f-unit", poll_seconds=0, **kw)


def test_the_running_wait_ignores_older_jobs_and_fires_when_the_new_one_runs():
    old = JobInfo("old", "k2f-unit", "RUNNING")
    hook = FakeJobs([old], [old, JobInfo("new", "k2f-unit", "STARTING")], [old, JobInfo("new", "k2f-unit", "RUNNING")])
    [event] = _events(_trigger(RUNNING, known_job_ids=["old"]), hook)
    assert event == {"status": "success", "job_id": "new", "job_name": "k2f-unit", "state": "RUNNING"}


def test_the_running_wait_fails_when_the_job_ends_first_and_times_out():
    hook = FakeJobs([JobInfo("new", "k2f-unit", "FAILED")])
    [event] = _events(_trigger(RUNNING), hook)
    assert event["status"] == "error" and "ended as FAILED" in event["message"]
    [event] = _events(_trigger(RUNNING, timeout_seconds=0), FakeJobs([]))
    assert event["status"] == "timeout"
    with pytest.raises(AirflowFailException, match="did not reach RUNNING"):
        JobRunningSensor(task_id="w").execute_complete({"ti": None}, event)


def test_a_sensor_whose_job_is_there_already_completes_without_deferring(local_cfg, context):
    # A deferral whose trigger fires at once can fail the task on Airflow 3 (apache/airflow#72716).
    running = FakeJobs([JobInfo("job-7", local_cfg.job_name, "RUNNING")])
    with (
        mock.patch.object(JobStateTrigger, "hook", return_value=running),
        mock.patch("k2f_airflow.sensors.job_state.summarize"),
    ):
        result = rendered(JobRunningSensor(task_id="wait_until_running", config=LOCAL), context).execute(context)
        assert result == {"job_id": "job-7", "job_name": local_cfg.job_name, "state": "RUNNING"}
        stopped = FakeJobs([JobInfo("job-7", local_cfg.job_name, "CANCELLED")])
        with mock.patch.object(JobStateTrigger, "hook", return_value=stopped):
            assert (
                rendered(JobStoppedSensor(task_id="wait_until_stopped", config=LOCAL), context).execute(context) is None
            )


def test_a_sensor_that_cannot_ask_the_runner_defers_instead_of_failing(local_cfg, context):
    with (
        mock.patch.object(JobStateTrigger, "hook", side_effect=ConnectionError("refused")),
        pytest.raises(TaskDeferred),
    ):
        rendered(JobRunningSensor(task_id="wait_until_running", config=LOCAL), context).execute(context)


def test_the_trigger_waits_one_poll_interval_before_its_first_look():
    calls = []

    class Recording(FakeJobs):
        def jobs_named(self, name):
            calls.append("look")
            return super().jobs_named(name)

    async def sleep(seconds):
        calls.append(("sleep", seconds))

    trigger = JobStateTrigger(target=RUNNING, runner="local", job_name="k2f-unit", poll_seconds=7)
    with mock.patch("k2f_airflow.triggers.job_state.asyncio.sleep", sleep):
        [event] = _events(trigger, Recording([JobInfo("new", "k2f-unit", "RUNNING")]))
    assert event["status"] == "success" and calls == [("sleep", 7), "look"]


def test_the_stopped_wait_fires_when_no_job_of_the_name_is_active():
    hook = FakeJobs([JobInfo("j", "k2f-unit", "RUNNING")], [JobInfo("j", "k2f-unit", "CANCELLED")])
    [event] = _events(_trigger(STOPPED), hook)
    assert event["status"] == "success" and event["state"] == STOPPED


def test_a_sensor_that_is_not_deferrable_pokes_the_same_look_in_its_slot(local_cfg, context):
    # Like the provider's sensors: deferrable=False waits in the worker slot instead of on the triggerer.
    starting = JobInfo("job-8", local_cfg.job_name, "STARTING")
    running = FakeJobs([starting], [JobInfo("job-8", local_cfg.job_name, "RUNNING")])
    with (
        mock.patch.object(JobStateTrigger, "hook", return_value=running),
        mock.patch("k2f_airflow.sensors.job_state.summarize"),
        mock.patch("airflow.sdk.bases.sensor.time.sleep"),
    ):
        sensor = rendered(
            JobRunningSensor(task_id="wait_until_running", deferrable=False, poke_interval=1, config=LOCAL), context
        )
        assert sensor.execute(context) == {"job_id": "job-8", "job_name": local_cfg.job_name, "state": "RUNNING"}
        assert sensor.timeout == local_cfg.launch_timeout_seconds
        stopped = FakeJobs([JobInfo("job-8", local_cfg.job_name, "RUNNING")], [])
        with mock.patch.object(JobStateTrigger, "hook", return_value=stopped):
            assert (
                rendered(
                    JobStoppedSensor(task_id="wait_until_stopped", deferrable=False, config=LOCAL), context
                ).execute(context)
                is None
            )


def test_a_sensor_that_is_not_deferrable_fails_when_the_job_ends_first(local_cfg, context):
    failed = FakeJobs(
        [JobInfo("job-9", local_cfg.job_name, "STARTING")], [JobInfo("job-9", local_cfg.job_name, "FAILED")]
    )
    with (
        mock.patch.object(JobStateTrigger, "hook", return_value=failed),
        mock.patch("airflow.sdk.bases.sensor.time.sleep"),
        pytest.raises(AirflowFailException, match="ended as FAILED"),
    ):
        rendered(
            JobRunningSensor(task_id="wait_until_running", deferrable=False, poke_interval=1, config=LOCAL), context
        ).execute(context)


def test_the_sensors_defer_by_default():
    assert JobRunningSensor(task_id="a").deferrable and JobStoppedSensor(task_id="b").deferrable
