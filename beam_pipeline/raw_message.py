"""One consumed Kafka message, as the pipeline carries it from ReadFromKafka to the archive and errors."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from beam_pipeline.contracts import archive_line
from beam_pipeline.contracts.error_record import (
    ErrorRecord,
    KafkaCoordinates,
    key_fields,
    make_error_record,
    replay_origin,
)
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

    @property
    def delivery(self) -> Delivery:
        return Delivery(self.topic, self.partition, self.offset)

    @property
    def coordinates(self) -> KafkaCoordinates:
        return KafkaCoordinates(self.topic, self.partition, self.offset, self.timestamp_ms, **key_fields(self.key))

    def error_fields(self) -> dict[str, Any]:
        """The source, attempt and first failure time of an error record about this message: a replayed
        message (replay headers) continues the record of its first delivery."""
        origin = replay_origin(self.headers, **key_fields(self.key))
        if origin is None:
            return {"source": self.coordinates, "attempt": 1}
        return {"source": origin.source, "attempt": origin.attempt, "first_failure_time": origin.first_failure_time}

    def error_record(
        self,
        *,
        stage: str,
        code: str,
        retryable: bool,
        detail: str,
        job_name: str,
        http_status: int | None = None,
        operation_outcome: dict[str, Any] | None = None,
    ) -> ErrorRecord:
        """The error record about this message: its payload, and the source and attempt it continues."""
        try:
            origin = self.error_fields()
        except Exception:  # noqa: BLE001  (headers are input: a record about the message beats none)
            origin = {"source": self.coordinates, "attempt": 1}
        record = make_error_record(
            stage=stage,
            code=code,
            retryable=retryable,
            detail=detail,
            raw=self.value,
            **origin,
            job_name=job_name,
            http_status=http_status,
            operation_outcome=operation_outcome,
        )
        return replace(record, delivery=self.coordinates)

    # The archive line is archive_line.py's; these two keep its readers' spelling.
    def archive_line(self) -> str:
        return archive_line.archive_line(self)

    def archive_partition(self) -> str:
        return archive_line.message_partition(self)
