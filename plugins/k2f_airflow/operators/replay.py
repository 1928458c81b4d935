"""The error replay as a task: counts in its summary, a failure when a publish did not complete."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowException

from k2f_airflow.hooks.gcs import StorageHook
from k2f_airflow.kafka_client import KafkaClient
from k2f_airflow.operators.common import TemplatedSettings, summarize
from k2f_airflow.replay import ErrorReplayer, ReplayError


class ReplayErrorsOperator(TemplatedSettings):
    """Replays the error bucket's pending records (k2f_airflow.replay). `prefix` narrows it (tests)."""

    template_fields = (*TemplatedSettings.template_fields, "prefix")

    def __init__(self, *, prefix: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prefix = prefix

    def execute(self, context: Any) -> dict[str, Any]:
        cfg = self.settings
        cfg.require("error_bucket", "kafka_secret_resource_name")
        bucket = StorageHook(cfg.gcp_conn_id).bucket(cfg.error_bucket)
        producer = KafkaClient(cfg.kafka_secret_resource_name).producer()
        replayer = ErrorReplayer(
            bucket, producer, max_attempts=cfg.replay_max_attempts, retry_topic=cfg.replay_retry_topic
        )
        try:
            counts = replayer.run(self.prefix or None, max_objects=cfg.replay_max_objects)
        except ReplayError as exc:
            raise AirflowException(f"replay stopped, the object in flight stays for the next run: {exc}") from None
        summarize(context, counts.summary())
        return {k: v for k, v in vars(counts).items()}
