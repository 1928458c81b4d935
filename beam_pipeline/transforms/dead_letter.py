"""DeadLetter: every failure from any step, as error records in windowed NDJSON files in the error bucket."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam

from beam_pipeline.error_record import ErrorRecord
from beam_pipeline.transforms.windowed_files import WriteWindowedNdjson, default_storage_client

ERRORS_PREFIX = "errors"


def error_partition(record: ErrorRecord) -> str:
    """stage=S/topic=T/date=D, the date of the Kafka message (of the failure when it has none)."""
    if record.source.timestamp_ms is not None:
        date = datetime.fromtimestamp(record.source.timestamp_ms / 1000, UTC).strftime("%Y-%m-%d")
    else:
        date = record.first_failure_time[:10]
    return f"stage={record.stage}/topic={record.source.topic}/date={date}"


class DeadLetter(beam.PTransform):
    """ErrorRecord -> gs://<error bucket>/errors/stage=S/topic=T/date=D/<window>-pane-shard.ndjson."""

    def __init__(
        self, bucket: str, window_seconds: int, client_factory: Callable[[], Any] = default_storage_client
    ) -> None:
        super().__init__()
        self._writer = WriteWindowedNdjson(bucket, ERRORS_PREFIX, window_seconds, client_factory=client_factory)

    def expand(self, records: beam.PCollection[ErrorRecord]) -> beam.PCollection[str]:
        return (
            records
            | "CountByStageAndCode" >> beam.Map(_count)
            | "ToErrorLine" >> beam.Map(lambda r: (error_partition(r), r.to_json()))
            | "WriteErrorFiles" >> self._writer
        )


def _count(record: ErrorRecord) -> ErrorRecord:
    # Stage and code are fixed vocabularies, never data, so they are safe as metric names.
    beam.metrics.Metrics.counter("dead_letter", f"{record.stage}.{record.code}").inc()
    return record
