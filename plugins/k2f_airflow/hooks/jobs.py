"""The streaming job's runner: Dataflow through the Google provider, or the local stack's job service.

Both answer in launcher.job_states terms (JobInfo, Beam job states such as RUNNING, DRAINED), so
sensors and checks are written once for either runner. `DataflowJobsHook` is the Google provider's
DataflowHook (its Airflow Connection, `google_cloud_default` by default) with the two questions the DAGs
ask. `LocalJobsClient` is a plain client: Prism's job service is a local address with no credentials, so an
Airflow Connection would only be a second place to write the endpoint down.

The waits on the triggerer ask the same three questions (active_jobs, jobs_named, state) without blocking
its event loop: `AsyncDataflowJobsHook` is the provider's AsyncDataflowHook (the Dataflow API's asyncio
client, as the provider's DataflowJobStatusTrigger uses), `AsyncLocalJobsClient` the job service over
grpc.aio.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow.providers.google.cloud.hooks.dataflow import AsyncDataflowHook, DataflowHook

from beam_pipeline.contracts.reprocess_summary import metric_key
from k2f_airflow.config import K2fConfig

DATAFLOW_STATE_PREFIX = "JOB_STATE_"


class LocalJobsClient:
    """Prism's Beam job service (launcher.job_service), one gRPC channel per call."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def _client(self) -> Any:
        from launcher.job_service import JobServiceClient

        return JobServiceClient(self.endpoint)

    def active_jobs(self, job_name: str) -> list[Any]:
        with self._client() as client:
            return client.active_jobs(job_name)

    def active_jobs_named_from(self, prefix: str) -> list[Any]:
        """Unfinished jobs whose name starts with `prefix` (the reprocesses)."""
        with self._client() as client:
            return [j for j in client.active_jobs() if j.job_name.startswith(prefix)]

    def jobs_named(self, job_name: str) -> list[Any]:
        """Every job of this name the job service knows, finished ones included."""
        with self._client() as client:
            return [j for j in client.jobs() if j.job_name == job_name]

    def state(self, job_id: str) -> str:
        with self._client() as client:
            return client.state(job_id)

    def counters(self, job_id: str, *, running: bool = False) -> dict[str, int]:
        """The job's Beam counters, {"namespace/name": value} summed over steps; `running`: with what its
        unfinished bundles counted so far (Prism's attempted values)."""
        with self._client() as client:
            return client.counters(job_id, running=running)

    def cancel(self, job_id: str) -> str:
        with self._client() as client:
            return client.cancel(job_id)


class AsyncLocalJobsClient:
    """LocalJobsClient's waiting questions over grpc.aio (launcher.job_service), one channel per call."""

    def __init__(self, endpoint: str) -> None:
        # Imported on construction, not on the first question: importing Beam's job API takes seconds, which
        # a trigger spends in a thread (JobStateTrigger.run), not on the triggerer's event loop.
        from launcher.job_service import AsyncJobServiceClient

        self.endpoint = endpoint
        self._client_class = AsyncJobServiceClient

    def _client(self) -> Any:
        return self._client_class(self.endpoint)

    async def active_jobs(self, job_name: str) -> list[Any]:
        async with self._client() as client:
            return await client.active_jobs(job_name)

    async def jobs_named(self, job_name: str) -> list[Any]:
        async with self._client() as client:
            return [j for j in await client.jobs() if j.job_name == job_name]

    async def state(self, job_id: str) -> str:
        async with self._client() as client:
            return await client.state(job_id)


class DataflowJobsHook(DataflowHook):
    """Dataflow jobs of one project and region: the provider's DataflowHook plus the DAGs' questions."""

    def __init__(self, gcp_conn_id: str, project_id: str | None, location: str) -> None:
        super().__init__(gcp_conn_id=gcp_conn_id)
        self.job_project_id = project_id or None
        self.location = location

    @property
    def project(self) -> str:
        return self.job_project_id or self.project_id

    def active_jobs(self, job_name: str) -> list[Any]:
        """Jobs of exactly this name that are not finished (the ACTIVE filter of jobs.list)."""
        return self._active(lambda name: name == job_name)

    def active_jobs_named_from(self, prefix: str) -> list[Any]:
        """Unfinished jobs whose name starts with `prefix` (the reprocesses)."""
        return self._active(lambda name: name.startswith(prefix))

    def _active(self, wanted: Callable[[str], bool]) -> list[Any]:
        from launcher.job_states import JobInfo

        jobs_api = self.get_conn().projects().locations().jobs()
        request = jobs_api.list(projectId=self.project, location=self.location, filter="ACTIVE")
        found = []
        while request is not None:
            response = request.execute(num_retries=self.num_retries)
            for job in response.get("jobs", []):
                if wanted(job.get("name", "")):
                    found.append(JobInfo(job["id"], job["name"], beam_state(job.get("currentState", ""))))
            request = jobs_api.list_next(previous_request=request, previous_response=response)
        return found

    def jobs_named(self, job_name: str) -> list[Any]:
        """Unfinished jobs of this name (a launch's own job is found by id, from the Beam operator)."""
        return self.active_jobs(job_name)

    def counters(self, job_id: str, *, running: bool = False) -> dict[str, int]:
        """The job's user counters, {"namespace/name": value} summed over steps (jobs.getMetrics): the
        committed values; `running`, per counter the larger of those and the tentative ones (what the work
        in progress has counted)."""
        jobs_api = self.get_conn().projects().locations().jobs()
        request = jobs_api.getMetrics(projectId=self.project, location=self.location, jobId=job_id)
        totals: dict[bool, dict[str, int]] = {False: {}, True: {}}
        for metric in request.execute(num_retries=self.num_retries).get("metrics", []):
            name = metric.get("name", {})
            context = name.get("context", {})
            if name.get("origin") != "user" or "namespace" not in context:
                continue
            found = totals[context.get("tentative") == "true"]
            key = metric_key(context["namespace"], name.get("name", ""))
            found[key] = found.get(key, 0) + int(metric.get("scalar") or 0)
        committed, tentative = totals[False], totals[True]
        if not running:
            return committed
        return {key: max(committed.get(key, 0), tentative.get(key, 0)) for key in committed.keys() | tentative.keys()}

    def state(self, job_id: str) -> str:
        job = self.get_job(job_id=job_id, project_id=self.project, location=self.location)
        return beam_state(job.get("currentState", ""))

    def data_freshness_seconds(self, job_id: str, lookback_seconds: int = 600) -> float | None:
        """The newest `job/data_watermark_age` point from Cloud Monitoring, None when there is none yet."""
        import time

        from google.cloud import monitoring_v3

        client = monitoring_v3.MetricServiceClient(credentials=self.get_credentials())
        now = int(time.time())
        interval = monitoring_v3.TimeInterval(end_time={"seconds": now}, start_time={"seconds": now - lookback_seconds})
        series = client.list_time_series(
            request={
                "name": f"projects/{self.project}",
                "filter": f'metric.type="dataflow.googleapis.com/job/data_watermark_age" '
                f'AND resource.labels.job_id="{job_id}"',
                "interval": interval,
                "view": monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
            }
        )
        for ts in series:
            for point in ts.points:  # newest first
                return float(point.value.int64_value or point.value.double_value)
        return None


class AsyncDataflowJobsHook(AsyncDataflowHook):
    """DataflowJobsHook's waiting questions through the provider's async hook (the Dataflow API's asyncio
    client on the same connection)."""

    def __init__(self, gcp_conn_id: str, project_id: str | None, location: str) -> None:
        super().__init__(gcp_conn_id=gcp_conn_id)
        self.job_project_id = project_id or None
        self.location = location

    async def project(self) -> str:
        return self.job_project_id or await self.get_project_id()

    async def active_jobs(self, job_name: str) -> list[Any]:
        """Jobs of exactly this name that are not finished (the ACTIVE filter of ListJobs)."""
        from google.cloud.dataflow_v1beta3 import ListJobsRequest

        from launcher.job_states import JobInfo

        pager = await self.list_jobs(
            jobs_filter=ListJobsRequest.Filter.ACTIVE, project_id=await self.project(), location=self.location
        )
        return [
            JobInfo(job.id, job.name, beam_state(job.current_state.name)) async for job in pager if job.name == job_name
        ]

    async def jobs_named(self, job_name: str) -> list[Any]:
        """Unfinished jobs of this name, as DataflowJobsHook.jobs_named."""
        return await self.active_jobs(job_name)

    async def state(self, job_id: str) -> str:
        status = await self.get_job_status(job_id=job_id, project_id=await self.project(), location=self.location)
        return beam_state(status.name)


def beam_state(dataflow_state: str) -> str:
    """JOB_STATE_RUNNING -> RUNNING: Dataflow's names in Beam's vocabulary."""
    return dataflow_state.removeprefix(DATAFLOW_STATE_PREFIX) or "UNKNOWN"


def jobs_hook(cfg: K2fConfig) -> LocalJobsClient | DataflowJobsHook:
    if cfg.is_local:
        cfg.require("local_job_endpoint")
        return LocalJobsClient(cfg.local_job_endpoint)
    return DataflowJobsHook(cfg.gcp_conn_id, cfg.gcp_project, cfg.region)


def async_jobs_hook(cfg: K2fConfig) -> AsyncLocalJobsClient | AsyncDataflowJobsHook:
    """jobs_hook's asyncio twin, for a trigger."""
    if cfg.is_local:
        cfg.require("local_job_endpoint")
        return AsyncLocalJobsClient(cfg.local_job_endpoint)
    return AsyncDataflowJobsHook(cfg.gcp_conn_id, cfg.gcp_project, cfg.region)
