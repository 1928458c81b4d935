"""Waiting on the triggerer until a reprocess has ended, with its progress in the task log meanwhile.

The STOPPED wait of JobStateTrigger, plus, about once a minute while the job runs (in the sensor's own looks
and in the deferred wait alike), a progress line from its counters as the runner reports them (Prism's job
service, Dataflow's jobs.getMetrics): messages done, the rate since the last line, error records
(contracts/reprocess_progress.py). The triggerer's log lines of a deferred task go to that task's log.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from beam_pipeline.contracts.reprocess_progress import PROGRESS_SECONDS, ProgressMeter
from k2f_airflow.triggers.job_state import STOPPED, JobStateTrigger


class ReprocessWaitTrigger(JobStateTrigger):
    """JobStateTrigger(target=STOPPED) that logs the running job's progress every `progress_seconds`.
    Reading the counters is a courtesy: when it fails, the wait goes on and the next look tries again."""

    def __init__(self, *, progress_seconds: float = PROGRESS_SECONDS, **kwargs: Any) -> None:
        kwargs.setdefault("target", STOPPED)
        super().__init__(**kwargs)
        self.progress_seconds = progress_seconds
        self.meter = ProgressMeter(progress_seconds)
        # Seconds of any origin; a test sets its own.
        self.clock = time.monotonic
        # The runner's asyncio hooks ask no counters: the deferred wait reads them through the blocking hook,
        # built once, in a thread.
        self._counters_hook: Any = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        classpath, kwargs = super().serialize()
        return classpath, {**kwargs, "progress_seconds": self.progress_seconds}

    def check(self, hook: Any) -> dict[str, Any] | None:  # noqa: ANN401  (a jobs hook)
        event = super().check(hook)
        if event is None:
            self.log_progress(hook)
        return event

    async def acheck(self, hook: Any) -> dict[str, Any] | None:  # noqa: ANN401  (an asyncio jobs hook)
        event = await super().acheck(hook)
        if event is None and self.meter.due(self.clock()):
            await asyncio.to_thread(self._log_progress_blocking)
        return event

    def _log_progress_blocking(self) -> str | None:
        try:
            if self._counters_hook is None:
                self._counters_hook = self.hook()
        except Exception as exc:  # noqa: BLE001  (as log_progress: the wait is what matters)
            self.log.info("reprocess progress: the job's counters could not be read (%s)", type(exc).__name__)
            return None
        return self.log_progress(self._counters_hook)

    def log_progress(self, hook: Any) -> str | None:  # noqa: ANN401
        """Logs (and returns) the progress line when one is due and the runner answers."""
        now = self.clock()
        if not self.meter.due(now):
            return None
        try:
            active = hook.active_jobs(self.job_name)
            if not active:
                return None
            counters = hook.counters(active[0].job_id, running=True)
        except Exception as exc:  # noqa: BLE001  (the type only: the wait is what matters)
            self.log.info("reprocess progress: the job's counters could not be read (%s)", type(exc).__name__)
            return None
        line = self.meter.line(counters, now)
        self.log.info("%s", line)
        return line
