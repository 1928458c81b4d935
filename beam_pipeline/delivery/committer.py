"""The consumer group's offsets, read and committed from Python workers through confluent-kafka.

KafkaIO's reader assigns partitions itself (no group membership), so a commit from another client of the
same group is accepted and is what the next job's reader starts from. The client reads the Kafka secret
on the worker, by its Secret Manager name: no credential travels in the job graph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from beam_pipeline.contracts.kafka_secret import parse_kafka_secret
from beam_pipeline.kafka.connection import librdkafka_config
from beam_pipeline.secret_manager import access_secret

TIMEOUT_SECONDS = 15.0

TopicPartitionKey = tuple[str, int]


class OffsetCommitter:
    def __init__(
        self,
        secret_resource_name: str,
        group_id: str,
        read_secret: Callable[[str], bytes] = access_secret,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self._secret_resource_name = secret_resource_name
        self._group_id = group_id
        self._read_secret = read_secret
        self._timeout = timeout
        self._consumer: Any = None

    def _client(self) -> Any:  # noqa: ANN401  (a confluent_kafka.Consumer)
        if self._consumer is None:
            from confluent_kafka import Consumer

            connection = parse_kafka_secret(self._read_secret(self._secret_resource_name))
            extra = {"group.id": self._group_id, "enable.auto.commit": False, "enable.auto.offset.store": False}
            self._consumer = Consumer(librdkafka_config(connection, extra))
        return self._consumer

    def start_offset(self, topic: str, partition: int) -> int:
        """Where a reader of the group starts on the partition: the committed offset, or the partition's
        first offset when the group has none (the job's consumer reads from the earliest)."""
        from confluent_kafka import TopicPartition

        client = self._client()
        (committed,) = client.committed([TopicPartition(topic, partition)], timeout=self._timeout)
        if committed.offset >= 0:
            return int(committed.offset)
        low, _high = client.get_watermark_offsets(TopicPartition(topic, partition), timeout=self._timeout)
        return int(low)

    def commit(self, offsets: Mapping[TopicPartitionKey, tuple[int, str]]) -> None:
        """Commit {(topic, partition): (offset, metadata)} in one request; raises when Kafka refuses any."""
        from confluent_kafka import KafkaException, TopicPartition

        if not offsets:
            return
        request = [TopicPartition(t, p, offset, metadata=meta) for (t, p), (offset, meta) in offsets.items()]
        result = self._client().commit(offsets=request, asynchronous=False)
        failed = [tp for tp in result or () if tp.error is not None]
        if failed:
            raise KafkaException(failed[0].error)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
