"""Waiting on the triggerer until the streaming job runs (after launch) or has stopped (after drain).

The sensors resolve the settings once, in their worker slot, and hand this trigger only what it needs
to ask the runner: names, ids and addresses, never a credential (the Dataflow hook takes its credentials
from the Airflow Connection when the trigger runs). The trigger asks through the runner's asyncio hook
(hooks/jobs.py), so a look never blocks the triggerer's event loop; the sensors ask the same question
through the blocking hook, and one decide() turns either answer into the event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

RUNNING = "RUNNING"
STOPPED = "STOPPED"


class JobStateTrigger(BaseTrigger):
    """Polls the runner until `target` (RUNNING or STOPPED) is reached or the job fails.

    RUNNING: the job `job_id`, or else the first job named `job_name` whose id is not in `known_job_ids`
    (the jobs that existed before the launch), is RUNNING; it fails if that job ends first.
    STOPPED: no unfinished job named `job_name` is left.
    """

    def __init__(
        self,
        *,
        target: str,
        runner: str,
        job_name: str,
        job_id: str = "",
        known_job_ids: list[str] | None = None,
        local_job_endpoint: str = "",
        gcp_conn_id: str = "google_cloud_default",
        gcp_project: str = "",
        region: str = "",
        poll_seconds: float = 10.0,
        timeout_seconds: float = 900.0,
    ) -> None:
        super().__init__()
        if target not in (RUNNING, STOPPED):
            raise ValueError(f"target must be {RUNNING} or {STOPPED}")
        self.target = target
        self.runner = runner
        self.job_name = job_name
        self.job_id = job_id
        self.known_job_ids = list(known_job_ids or [])
        self.local_job_endpoint = local_job_endpoint
        self.gcp_conn_id = gcp_conn_id
        self.gcp_project = gcp_project
        self.region = region
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "target": self.target,
                "runner": self.runner,
                "job_name": self.job_name,
                "job_id": self.job_id,
                "known_job_ids": self.known_job_ids,
                "local_job_endpoint": self.local_job_endpoint,
                "gcp_conn_id": self.gcp_conn_id,
                "gcp_project": self.gcp_project,
                "region": self.region,
                "poll_seconds": self.poll_seconds,
                "timeout_seconds": self.timeout_seconds,
            },
        )

    def _config(self) -> Any:  # noqa: ANN401  (a K2fConfig, imported lazily as the module is)
        from k2f_airflow.config import K2fConfig

        return K2fConfig(
            runner=self.runner,
            local_job_endpoint=self.local_job_endpoint,
            gcp_conn_id=self.gcp_conn_id,
            gcp_project=self.gcp_project,
            region=self.region,
        )

    def hook(self) -> Any:  # noqa: ANN401  (a jobs hook: Dataflow's or the local runner's)
        """The runner's blocking jobs hook, for the sensors' looks in their worker slot."""
        from k2f_airflow.hooks.jobs import jobs_hook

        return jobs_hook(self._config())

    def async_hook(self) -> Any:  # noqa: ANN401
        """The runner's asyncio jobs hook, for this trigger's loop on the triggerer."""
        from k2f_airflow.hooks.jobs import async_jobs_hook

        return async_jobs_hook(self._config())

    def _question(self) -> tuple[str, str]:
        """What to ask the runner: (the jobs hook's method, its argument); either hook answers it alike."""
        if self.target == STOPPED:
            return "active_jobs", self.job_name
        if self.job_id:
            return "state", self.job_id
        return "jobs_named", self.job_name

    def check(self, hook: Any) -> dict[str, Any] | None:
        """One blocking look at the runner: the event to fire, or None to keep waiting."""
        method, argument = self._question()
        return self.decide(getattr(hook, method)(argument))

    async def acheck(self, hook: Any) -> dict[str, Any] | None:
        """check() through the asyncio hook."""
        method, argument = self._question()
        return self.decide(await getattr(hook, method)(argument))

    def decide(self, answer: Any) -> dict[str, Any] | None:
        """The event the runner's answer to _question() calls for, or None to keep waiting."""
        from launcher.job_states import TERMINAL

        if self.target == STOPPED:
            if answer:
                self.log.info("still active: %s", ", ".join(f"{j.job_id} ({j.state})" for j in answer))
                return None
            return {"status": "success", "job_name": self.job_name, "state": STOPPED}
        job_id, state = self.job_id, None
        if job_id:
            state = answer
        else:
            new = [j for j in answer if j.job_id not in self.known_job_ids]
            if new:
                running = [j for j in new if j.state == RUNNING]
                job_id, state = (running or new)[-1].job_id, (running or new)[-1].state
        self.log.info("job %s of %s is %s", job_id or "(not submitted yet)", self.job_name, state or "-")
        if state == RUNNING:
            return {"status": "success", "job_id": job_id, "job_name": self.job_name, "state": state}
        if state in TERMINAL:
            return {
                "status": "error",
                "job_id": job_id,
                "job_name": self.job_name,
                "state": state,
                "message": f"job {job_id} ended as {state} before running: see the runner's job log "
                "(Dataflow console, or the Prism UI locally)",
            }
        return None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # Built in a thread: building it imports the runner's client, seconds the event loop must not wait.
        hook = await asyncio.to_thread(self.async_hook)
        deadline = time.monotonic() + self.timeout_seconds
        # The sensor looked just before deferring; firing at once could fail the task (see the sensors).
        await asyncio.sleep(self.poll_seconds)
        while True:
            try:
                event = await self.acheck(hook)
            except Exception as exc:  # noqa: BLE001  (a flaky poll is retried; the deadline bounds it)
                self.log.warning("polling the runner failed (%s); trying again", type(exc).__name__)
                event = None
            if event is not None:
                yield TriggerEvent(event)
                return
            if time.monotonic() >= deadline:
                yield TriggerEvent(
                    {
                        "status": "timeout",
                        "job_name": self.job_name,
                        "message": f"{self.job_name} did not reach {self.target} within {self.timeout_seconds:.0f}s",
                    }
                )
                return
            await asyncio.sleep(self.poll_seconds)
