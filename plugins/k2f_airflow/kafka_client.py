"""Kafka from Airflow: the same connection secret the pipeline reads, spoken through confluent-kafka.

A plain client, not an Airflow hook: it reads the secret the pipeline reads instead of an Airflow Connection.
The secret (docs/contracts.md contract 2) is parsed by beam_pipeline.contracts.kafka_secret; this module only
turns it into librdkafka settings (the pipeline's consumer_config builds the Java client's, a different dialect).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from beam_pipeline.contracts.commit_metadata import CommitMetadata, decode
from beam_pipeline.kafka.connection import librdkafka_config

TIMEOUT_SECONDS = 20.0


class KafkaProblem(Exception):
    """Kafka is unusable from here; the message names the fix, never a credential."""


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int
    # What the pipeline said when it committed (beam_pipeline/contracts/commit_metadata.py), if it did.
    metadata: CommitMetadata | None = None

    @property
    def in_flight(self) -> int | None:
        """Messages the committing job had read and not yet settled, as of its last commit."""
        return self.metadata.in_flight if self.metadata is not None else None

    @property
    def read_gap(self) -> int | None:
        """Offsets read past the committed one, as of the job's last commit."""
        if self.metadata is None or self.committed is None:
            return None
        return max(0, self.metadata.read - self.committed)


class KafkaClient:
    """Admin, lag and producer access for the cluster described by a Secret Manager secret."""

    def __init__(self, secret_resource_name: str, timeout: float = TIMEOUT_SECONDS) -> None:
        self.secret_resource_name = secret_resource_name
        self.timeout = timeout
        self._config: dict[str, Any] | None = None

    def client_config(self) -> dict[str, Any]:
        if self._config is None:
            from beam_pipeline.contracts.kafka_secret import parse_kafka_secret
            from beam_pipeline.secret_manager import access_secret

            self._config = librdkafka_config(parse_kafka_secret(access_secret(self.secret_resource_name)))
        return self._config

    def admin(self) -> Any:
        from confluent_kafka.admin import AdminClient

        return AdminClient(self.client_config())

    def missing_topics(self, topics: Iterable[str]) -> list[str]:
        """Topics the cluster does not have; KafkaProblem when it cannot be reached or refuses us."""
        from confluent_kafka import KafkaException

        try:
            metadata = self.admin().list_topics(timeout=self.timeout)
        except KafkaException as exc:
            raise KafkaProblem(
                f"Kafka did not answer with the credentials of the secret ({_kafka_reason(exc)}): check "
                "bootstrap_servers, apiKey/apiSecret and security_protocol in the secret, and the network path"
            ) from None
        return [t for t in topics if t not in metadata.topics or metadata.topics[t].error is not None]

    def consumer_lag(self, group: str, topics: Iterable[str]) -> list[PartitionLag]:
        """Per partition: end offset minus the group's committed offset (or the start, none committed)."""
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
        from confluent_kafka.admin import OffsetSpec

        admin = self.admin()
        metadata = admin.list_topics(timeout=self.timeout)
        partitions = [
            TopicPartition(t, p) for t in topics if t in metadata.topics for p in sorted(metadata.topics[t].partitions)
        ]
        if not partitions:
            return []
        request = [ConsumerGroupTopicPartitions(group, partitions)]
        committed_result = admin.list_consumer_group_offsets(request, request_timeout=self.timeout)[group]
        committed = {
            (tp.topic, tp.partition): (tp.offset, decode(getattr(tp, "metadata", None)))
            for tp in committed_result.result(self.timeout).topic_partitions
        }
        ends = _offsets(admin, partitions, OffsetSpec.latest(), self.timeout)
        starts = _offsets(admin, partitions, OffsetSpec.earliest(), self.timeout)
        out = []
        for tp in partitions:
            key = (tp.topic, tp.partition)
            offset, metadata = committed.get(key, (None, None))
            has_commit = offset is not None and offset >= 0
            base = offset if has_commit else starts[key]
            out.append(
                PartitionLag(
                    tp.topic,
                    tp.partition,
                    offset if has_commit else None,
                    ends[key],
                    max(0, ends[key] - base),
                    metadata if has_commit else None,
                )
            )
        return out

    def producer(self, extra: dict[str, Any] | None = None) -> Any:
        """An idempotent producer: a retried send inside one session is written once."""
        from confluent_kafka import Producer

        settings = {"enable.idempotence": True, "acks": "all", "linger.ms": 20}
        return Producer({**self.client_config(), **settings, **(extra or {})})


def _offsets(admin: Any, partitions: list[Any], spec: Any, timeout: float) -> dict[tuple[str, int], int]:
    futures = admin.list_offsets({tp: spec for tp in partitions}, request_timeout=timeout)
    return {(tp.topic, tp.partition): f.result(timeout).offset for tp, f in futures.items()}


def _kafka_reason(exc: Exception) -> str:
    # librdkafka errors carry a code name (e.g. _TRANSPORT, SASL_AUTHENTICATION_FAILED) and no secret.
    error = exc.args[0] if exc.args else None
    name = getattr(error, "name", None)
    return name() if callable(name) else type(exc).__name__
