"""A client for a portable Beam job service (Prism locally): list, watch and cancel jobs.

Dataflow jobs are managed through Dataflow's own API (Airflow's Dataflow hook); this is the local
runner's equivalent, used by the launcher, the Airflow health and drain tasks, and the tests.
`AsyncJobServiceClient` asks the questions a wait asks over grpc.aio, for Airflow's triggerer, whose event
loop a blocking call would stall.
"""

from __future__ import annotations

import time

import grpc
from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc
from apache_beam.runners.portability.portable_runner import PortableMetrics

from beam_pipeline.contracts.reprocess_summary import counter_totals
from launcher.job_states import TERMINAL, JobInfo


def _job_name(info: beam_job_api_pb2.JobInfo) -> str:
    # Python's PortableRunner submits every job as "job"; the --job_name the user chose travels in the
    # job's pipeline options.
    option = info.pipeline_options.fields.get("beam:option:job_name:v1")
    return option.string_value if option is not None and option.string_value else info.job_name


def _job_infos(response: beam_job_api_pb2.GetJobsResponse) -> list[JobInfo]:
    return [JobInfo(j.job_id, _job_name(j), beam_job_api_pb2.JobState.Enum.Name(j.state)) for j in response.job_info]


def _active(jobs: list[JobInfo], job_name: str | None) -> list[JobInfo]:
    return [j for j in jobs if j.state not in TERMINAL and (job_name is None or j.job_name == job_name)]


class JobServiceClient:
    def __init__(self, endpoint: str, timeout: float = 10.0) -> None:
        self._channel = grpc.insecure_channel(endpoint)
        self._stub = beam_job_api_pb2_grpc.JobServiceStub(self._channel)
        self._timeout = timeout

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> JobServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def jobs(self) -> list[JobInfo]:
        return _job_infos(self._stub.GetJobs(beam_job_api_pb2.GetJobsRequest(), timeout=self._timeout))

    def state(self, job_id: str) -> str:
        response = self._stub.GetState(beam_job_api_pb2.GetJobStateRequest(job_id=job_id), timeout=self._timeout)
        return beam_job_api_pb2.JobState.Enum.Name(response.state)

    def active_jobs(self, job_name: str | None = None) -> list[JobInfo]:
        """Jobs not yet in a terminal state, optionally only those of one name (never two on one group)."""
        return _active(self.jobs(), job_name)

    def cancel(self, job_id: str) -> str:
        response = self._stub.Cancel(beam_job_api_pb2.CancelJobRequest(job_id=job_id), timeout=self._timeout)
        return beam_job_api_pb2.JobState.Enum.Name(response.state)

    def counters(self, job_id: str, *, running: bool = False) -> dict[str, int]:
        """The job's Beam counters as {"namespace/name": value}, summed over steps: committed when known;
        `running`, with what its unfinished bundles counted so far (reprocess_summary.counter_totals)."""
        response = self._stub.GetJobMetrics(beam_job_api_pb2.GetJobMetricsRequest(job_id=job_id), timeout=self._timeout)
        return counter_totals(PortableMetrics(response).query()["counters"], running=running)

    def wait_for(self, job_id: str, states: set[str], timeout: float, poll: float = 1.0) -> str:
        """Poll until the job reaches one of `states` (or a terminal state); the last state seen."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(job_id)
            if state in states or state in TERMINAL or time.monotonic() >= deadline:
                return state
            time.sleep(poll)


class AsyncJobServiceClient:
    """JobServiceClient's reading questions (jobs, state, active jobs) over grpc.aio; `async with` it."""

    def __init__(self, endpoint: str, timeout: float = 10.0) -> None:
        self._channel = grpc.aio.insecure_channel(endpoint)
        self._stub = beam_job_api_pb2_grpc.JobServiceStub(self._channel)
        self._timeout = timeout

    async def __aenter__(self) -> AsyncJobServiceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._channel.close()

    async def jobs(self) -> list[JobInfo]:
        return _job_infos(await self._stub.GetJobs(beam_job_api_pb2.GetJobsRequest(), timeout=self._timeout))

    async def state(self, job_id: str) -> str:
        request = beam_job_api_pb2.GetJobStateRequest(job_id=job_id)
        return beam_job_api_pb2.JobState.Enum.Name((await self._stub.GetState(request, timeout=self._timeout)).state)

    async def active_jobs(self, job_name: str | None = None) -> list[JobInfo]:
        return _active(await self.jobs(), job_name)
