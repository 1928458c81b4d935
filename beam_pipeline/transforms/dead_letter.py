"""DeadLetter: every failure from any step, as error records in windowed NDJSON files in the error bucket."""

from __future__ import annotations

import apache_beam as beam

from beam_pipeline.contracts.bucket_layout import ERRORS_PREFIX, error_partition
from beam_pipeline.contracts.error_record import ErrorRecord
from beam_pipeline.contracts.outcome import DEAD_LETTER_METRICS
from beam_pipeline.delivery.ledger import Delivery
from beam_pipeline.transforms.windowed_files import WindowedNdjsonStep


class DeadLetter(WindowedNdjsonStep):
    """ErrorRecord -> gs://<error bucket>/errors/stage=S/topic=T/date=D/<window>-pane-shard-<job>-<launch>.ndjson."""

    prefix = ERRORS_PREFIX

    def expand(self, records: beam.PCollection[ErrorRecord]) -> beam.PCollection[Delivery]:
        """The Delivery of every message whose error record is in an object (the offset commit waits for it)."""
        return (
            records
            | "CountByStageAndCode" >> beam.Map(_count)
            | "ToErrorLine" >> beam.Map(lambda r: (error_partition(r), r.to_json(), record_delivery(r)))
            | "WriteErrorFiles" >> self._writer
        )


def record_delivery(record: ErrorRecord) -> Delivery | None:
    """Where the failed delivery was read: what settles once its record is written (or it is retried)."""
    where = record.delivery
    if where is None or where.partition is None or where.offset is None:
        return None
    return Delivery(where.topic, where.partition, where.offset)


def _count(record: ErrorRecord) -> ErrorRecord:
    # Stage and code are fixed vocabularies, never data, so they are safe as metric names.
    beam.metrics.Metrics.counter(DEAD_LETTER_METRICS, f"{record.stage}.{record.code}").inc()
    return record
