"""The waits on the triggerer ask the runner with asyncio calls: the job service over grpc.aio (a real
in-process server here) and Dataflow through the provider's AsyncDataflowHook (its client faked, the
requests it is sent checked)."""

from __future__ import annotations

import asyncio
from unittest import mock

import grpc
from airflow.providers.google.cloud.hooks.dataflow import AsyncDataflowHook
from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc
from google.cloud.dataflow_v1beta3 import Job, JobState, ListJobsRequest
from google.protobuf import struct_pb2
from k2f_airflow.hooks.jobs import AsyncDataflowJobsHook
from k2f_airflow.triggers.job_state import RUNNING, STOPPED, JobStateTrigger

from launcher.job_states import JobInfo

STATE = beam_job_api_pb2.JobState


def _job(job_id: str, name: str, state: int) -> beam_job_api_pb2.JobInfo:
    options = struct_pb2.Struct()
    options.update({"beam:option:job_name:v1": name})  # as the PortableRunner submits it
    return beam_job_api_pb2.JobInfo(job_id=job_id, job_name="job", pipeline_options=options, state=state)


class Prism(beam_job_api_pb2_grpc.JobServiceServicer):
    """A job service whose jobs move on one step every time they are listed."""

    def __init__(self, *views: list[beam_job_api_pb2.JobInfo]) -> None:
        self.views = list(views)

    async def GetJobs(self, request, context):  # noqa: N802 (the gRPC method's name)
        view = self.views.pop(0) if len(self.views) > 1 else self.views[0]
        return beam_job_api_pb2.GetJobsResponse(job_info=view)

    async def GetState(self, request, context):  # noqa: N802
        state = next(j.state for j in self.views[0] if j.job_id == request.job_id)
        return beam_job_api_pb2.JobStateEvent(state=state)


async def _wait(trigger_kwargs: dict, service: Prism) -> list[dict]:
    server = grpc.aio.server()
    beam_job_api_pb2_grpc.add_JobServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        trigger = JobStateTrigger(
            runner="local", local_job_endpoint=f"127.0.0.1:{port}", poll_seconds=0, timeout_seconds=30, **trigger_kwargs
        )
        with mock.patch.object(JobStateTrigger, "hook", side_effect=AssertionError("a blocking look")):
            return [event.payload async for event in trigger.run()]
    finally:
        await server.stop(None)


def test_the_trigger_asks_the_local_job_service_over_grpc_aio():
    old = _job("old", "k2f-unit", STATE.RUNNING)
    service = Prism(
        [old], [old, _job("new", "k2f-unit", STATE.STARTING)], [old, _job("new", "k2f-unit", STATE.RUNNING)]
    )
    [event] = asyncio.run(_wait({"target": RUNNING, "job_name": "k2f-unit", "known_job_ids": ["old"]}, service))
    assert event == {"status": "success", "job_id": "new", "job_name": "k2f-unit", "state": "RUNNING"}
    assert service.views == [[old, _job("new", "k2f-unit", STATE.RUNNING)]]  # all three looks were taken

    by_id = Prism([_job("j1", "k2f-unit", STATE.FAILED)])
    [event] = asyncio.run(_wait({"target": RUNNING, "job_name": "k2f-unit", "job_id": "j1"}, by_id))
    assert event["status"] == "error" and event["state"] == "FAILED"

    stopping = Prism([_job("j1", "k2f-unit", STATE.CANCELLING)], [_job("j1", "k2f-unit", STATE.CANCELLED)])
    [event] = asyncio.run(_wait({"target": STOPPED, "job_name": "k2f-unit"}, stopping))
    assert event == {"status": "success", "job_name": "k2f-unit", "state": STOPPED}


class Pager:
    """The asyncio client's ListJobsAsyncPager: jobs over pages, iterated with `async for`."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs

    def __aiter__(self):
        async def each():
            for job in self.jobs:
                yield job

        return each()


def test_the_async_dataflow_hook_lists_active_jobs_of_exactly_the_name_and_reads_a_state():
    client = mock.Mock()
    client.list_jobs = mock.AsyncMock(
        return_value=Pager(
            [
                Job(id="a", name="k2f-unit", current_state=JobState.JOB_STATE_RUNNING),
                Job(id="b", name="k2f-unit-2", current_state=JobState.JOB_STATE_RUNNING),
            ]
        )
    )
    client.get_job = mock.AsyncMock(return_value=Job(id="a", current_state=JobState.JOB_STATE_DRAINING))

    async def ask(hook: AsyncDataflowJobsHook) -> tuple:
        return await hook.active_jobs("k2f-unit"), await hook.state("a")

    with (
        mock.patch.object(AsyncDataflowHook, "initialize_client", mock.AsyncMock(return_value=client)),
        mock.patch.object(AsyncDataflowHook, "get_project_id", mock.AsyncMock(return_value="connection-project")),
    ):
        active, state = asyncio.run(ask(AsyncDataflowJobsHook("gcp", "df-project", "europe-west1")))
        assert active == [JobInfo("a", "k2f-unit", "RUNNING")] and state == "DRAINING"
        listed = client.list_jobs.call_args.kwargs["request"]
        assert (listed.project_id, listed.location, listed.filter) == (
            "df-project",
            "europe-west1",
            ListJobsRequest.Filter.ACTIVE,
        )
        got = client.get_job.call_args.kwargs["request"]
        assert (got.project_id, got.location, got.job_id) == ("df-project", "europe-west1", "a")
        # Without a project setting: the connection's.
        asyncio.run(AsyncDataflowJobsHook("gcp", "", "europe-west1").active_jobs("k2f-unit"))
        assert client.list_jobs.call_args.kwargs["request"].project_id == "connection-project"
