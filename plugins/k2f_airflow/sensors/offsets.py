"""Waiting, during a local drain, until what the job took before it stopped taking messages has settled."""

from __future__ import annotations

import time
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSkipException

from k2f_airflow.operators.common import TemplatedSettings, summarize

# After the drain marker: the job's read step looks for it every 2 s (drain_signal.POLL_SECONDS) and what
# it passed on before then reaches the commit step within moments; until this has passed, a partition
# showing nothing in flight may still be about to receive a message.
SETTLE_GRACE_SECONDS = 8.0


class OffsetsSettledSensor(TemplatedSettings, BaseSensorOperator):
    """Done when, for the configured job, committed equals read on every partition, and stays so between two
    looks. It looks every few seconds for at most the drain timeout, in poke mode: a drain is short and the
    wait only runs on the local runner (on Dataflow, the provider's drain waits)."""

    template_fields = (*TemplatedSettings.template_fields, "requested_at_ms")

    def __init__(self, *, requested_at_ms: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("poke_interval", 3)
        kwargs.setdefault("mode", "poke")
        super().__init__(**kwargs)
        self.requested_at_ms = requested_at_ms
        self._previous: Any = None

    def execute(self, context: Any) -> Any:
        cfg = self.settings
        if not cfg.is_local:
            raise AirflowSkipException("Dataflow runner: Dataflow's drain lets the job settle")
        if self.requested_at_ms in (None, "", "None"):
            raise AirflowSkipException("no drain was asked for: no job was running")
        self.timeout = cfg.drain_timeout_seconds
        return super().execute(context)

    def poke(self, context: Any) -> bool:
        from k2f_airflow.drain import offsets_signature, unsettled
        from k2f_airflow.kafka_client import KafkaClient

        cfg = self.settings
        if time.time() * 1000 - int(self.requested_at_ms) < SETTLE_GRACE_SECONDS * 1000:
            return False
        partitions = KafkaClient(cfg.kafka_secret_resource_name).consumer_lag(cfg.kafka_consumer_group, cfg.topic_list)
        left = unsettled(partitions, cfg.job_name)
        signature = offsets_signature(partitions)
        still = signature == self._previous
        self._previous = signature
        if left:
            self.log.info("in flight: %s", ", ".join(f"{tp} {n}" for tp, n in left))
            return False
        if not still:
            return False
        summarize(context, f"job {cfg.job_name} holds no unsettled message: committed equals read")
        return True
