"""ArchiveRaw: every consumed message, exactly as consumed, in windowed NDJSON files in the archive bucket."""

from __future__ import annotations

import apache_beam as beam

from beam_pipeline.contracts import archive_line
from beam_pipeline.contracts.bucket_layout import ARCHIVE_PREFIX
from beam_pipeline.delivery.ledger import Delivery
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms.windowed_files import WindowedNdjsonStep


def archive_entry(message: RawMessage) -> tuple[str, str]:
    """(partition path, NDJSON line). Never raises: an exception here would fail the runner's bundle and
    stall the stream, so a message whose line cannot be built is archived as coordinates and base64."""
    try:
        return archive_line.archive_entry(message)
    except Exception:  # noqa: BLE001
        beam.metrics.Metrics.counter("archive_raw", "fallback_lines").inc()
        return archive_line.fallback_archive_entry(message)


class ArchiveRaw(WindowedNdjsonStep):
    """RawMessage -> gs://<archive bucket>/archive/topic=T/date=D/<window>-pane-shard-<job>-<launch>.ndjson."""

    prefix = ARCHIVE_PREFIX

    def expand(self, messages: beam.PCollection[RawMessage]) -> beam.PCollection[Delivery]:
        """The Delivery of every message once its line is in an archive object."""
        return (
            messages
            | "ToArchiveLine" >> beam.Map(lambda m: (*archive_entry(m), m.delivery))
            | "WriteArchiveFiles" >> self._writer
        )
