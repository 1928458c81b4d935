"""Waiting for the streaming job: until it runs (after launch) or until it has stopped (after drain).

Both sensors take their settings rendered (`config`, operators/common.py), look once in their worker slot,
and only if the job is not there yet wait. With `deferrable=True` they hand the wait to JobStateTrigger on
the triggerer (asyncio calls to the runner), so minutes of waiting hold no worker slot; with
`deferrable=False` they poke the same look in their slot (`mode`, `poke_interval` as for any sensor), like
the provider's sensors. Unlike theirs, the default is True, not
`[operators] default_deferrable` (False unless set): the DAGs were written for a wait on the triggerer.
Looking first is not only cheaper: Airflow 3 can fail a deferred task whose trigger fires within moments
of the deferral (the stale success of the deferring attempt meets the resumed attempt,
apache/airflow#72716), and the trigger therefore waits one poll interval before its first look.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException

from k2f_airflow.config import K2fConfig
from k2f_airflow.operators.common import TemplatedSettings, summarize
from k2f_airflow.triggers.job_state import RUNNING, STOPPED, JobStateTrigger

log = logging.getLogger(__name__)


def _trigger(cfg: K2fConfig, target: str, poll: float, timeout: int, job_name: str = "", **job: Any) -> JobStateTrigger:
    return JobStateTrigger(
        target=target,
        runner=cfg.runner,
        job_name=job_name or cfg.job_name,
        local_job_endpoint=cfg.local_job_endpoint,
        gcp_conn_id=cfg.gcp_conn_id,
        gcp_project=cfg.gcp_project,
        region=cfg.region,
        poll_seconds=poll,
        timeout_seconds=timeout,
        **job,
    )


def _look(trigger: JobStateTrigger) -> dict[str, Any] | None:
    """The trigger's event if the job is already there, else None (also when the runner cannot be asked:
    the trigger then keeps asking until its deadline)."""
    try:
        return trigger.check(trigger.hook())
    except Exception as exc:  # noqa: BLE001  (the deferred wait retries; its deadline bounds it)
        log.warning("asking the runner failed (%s); waiting on the triggerer", type(exc).__name__)
        return None


def _finished(event: dict[str, Any]) -> dict[str, Any]:
    if event.get("status") != "success":
        raise AirflowFailException(event.get("message") or f"waiting for the job failed: {event.get('status')}")
    return event


class _JobStateSensor(TemplatedSettings, BaseSensorOperator):
    """What both waits share: one look, then the wait on the triggerer or, not deferrable, in the slot."""

    def __init__(
        self,
        *,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.deferrable = deferrable

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _wait(self, context: Any, trigger: JobStateTrigger, timeout: int) -> Any:
        event = _look(trigger)
        if event is not None:
            return self.execute_complete(context, event)
        if self.deferrable:
            self.defer(trigger=trigger, method_name="execute_complete", timeout=timedelta(seconds=timeout + 60))
        # Not deferrable: BaseSensorOperator pokes the same look until the settings' timeout.
        self._waiting_for = trigger
        self.timeout = timeout
        return super().execute(context)

    def poke(self, context: Any) -> PokeReturnValue:
        event = _look(self._waiting_for)
        if event is None:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self.execute_complete(context, event))


class JobRunningSensor(_JobStateSensor):
    """Done when the launched job is RUNNING; fails at once if it ends first. XCom: job id, name, state.

    `job_id` (templated) is the Beam operator's Dataflow job id when there is one; without it (the local
    runner) the job is the first of the configured name that is not in `known_job_ids` (templated list).
    """

    template_fields = (*TemplatedSettings.template_fields, "job_id", "known_job_ids")

    def __init__(self, *, job_id: str = "", known_job_ids: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.known_job_ids = known_job_ids

    def execute(self, context: Any) -> Any:
        cfg = self.settings
        timeout = cfg.launch_timeout_seconds
        known = [str(i) for i in (self.known_job_ids or [])] if isinstance(self.known_job_ids, list) else []
        trigger = _trigger(cfg, RUNNING, self.poke_interval, timeout, job_id=self.job_id or "", known_job_ids=known)
        return self._wait(context, trigger, timeout)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        event = _finished(event)
        summarize(context, f"job {event['job_name']} ({event['job_id']}) is RUNNING")
        return {"job_id": event["job_id"], "job_name": event["job_name"], "state": event["state"]}


class JobStoppedSensor(_JobStateSensor):
    """Done when no job of the configured name (or `job_name`, templated: a reprocess's) is unfinished any
    more, waiting at most the drain timeout (or `timeout_seconds`)."""

    template_fields = (*TemplatedSettings.template_fields, "job_name")

    def __init__(self, *, job_name: Any = "", timeout_seconds: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.timeout_seconds = timeout_seconds

    def execute(self, context: Any) -> Any:
        cfg = self.settings
        timeout = self.timeout_seconds or cfg.drain_timeout_seconds
        trigger = _trigger(cfg, STOPPED, self.poke_interval, timeout, job_name=str(self.job_name or ""))
        return self._wait(context, trigger, timeout)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> None:
        event = _finished(event)
        summarize(context, f"no job named {event['job_name']} is running any more")
