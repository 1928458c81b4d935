"""One consumed Kafka message, as the pipeline carries it from ReadFromKafka to the archive and errors: its
coordinates, key, payload and headers, nothing built from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from beam_pipeline import failed_message
from beam_pipeline.contracts import archive_line
from beam_pipeline.contracts.error_record import KafkaCoordinates, key_fields
from beam_pipeline.delivery.ledger import Delivery


@dataclass(frozen=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def from_kafka(cls, record: Any) -> RawMessage:
        """From ReadFromKafka(with_metadata=True)'s row (key, value, topic, partition, offset, timestamp...)."""
        return cls(
            topic=record.topic,
            partition=int(record.partition),
            offset=int(record.offset),
            timestamp_ms=int(record.timestamp),
            key=bytes(record.key) if record.key is not None else None,
            value=bytes(record.value) if record.value is not None else b"",
            headers=tuple((str(h.key), bytes(h.value) if h.value is not None else b"") for h in (record.headers or ())),
        )

    @classmethod
    def from_archive_line(cls, line: str | bytes) -> RawMessage:
        """An archived message as it was consumed, without headers (the archive keeps none). Raises
        archive_line.CorruptArchiveLine for a line that is not one."""
        return cls(**archive_line.read_archive_line(line))

    @property
    def delivery(self) -> Delivery:
        return Delivery(self.topic, self.partition, self.offset)

    @property
    def source_topic(self) -> str:
        """The topic the message was first published to (what says its type): for a replay or the job's own
        retry, the origin its headers name; otherwise where it was read."""
        if not self.headers:
            return self.topic
        return failed_message.message_origin(self).source.topic

    @property
    def coordinates(self) -> KafkaCoordinates:
        return KafkaCoordinates(self.topic, self.partition, self.offset, self.timestamp_ms, **key_fields(self.key))

    # Error records (failed_message.py) and the archive line (contracts/archive_line.py) are built by their
    # own modules; these keep their readers' spelling.
    def error_fields(self) -> dict[str, Any]:
        """The source, attempt and first failure time of an error record about this message."""
        return failed_message.origin_fields(failed_message.message_origin(self))

    def archive_line(self) -> str:
        return archive_line.archive_line(self)

    def archive_partition(self) -> str:
        return archive_line.message_partition(self)
