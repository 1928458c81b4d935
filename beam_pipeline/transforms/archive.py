"""ArchiveRaw: every consumed message, exactly as consumed, in windowed NDJSON files in the archive bucket."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import apache_beam as beam

from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms.windowed_files import WriteWindowedNdjson, default_storage_client

ARCHIVE_PREFIX = "archive"


class ArchiveRaw(beam.PTransform):
    """RawMessage -> gs://<archive bucket>/archive/topic=T/date=D/<window>-pane-shard.ndjson."""

    def __init__(
        self, bucket: str, window_seconds: int, client_factory: Callable[[], Any] = default_storage_client
    ) -> None:
        super().__init__()
        self._writer = WriteWindowedNdjson(bucket, ARCHIVE_PREFIX, window_seconds, client_factory=client_factory)

    def expand(self, messages: beam.PCollection[RawMessage]) -> beam.PCollection[str]:
        return (
            messages
            | "ToArchiveLine" >> beam.Map(lambda m: (m.archive_partition(), m.archive_line()))
            | "WriteArchiveFiles" >> self._writer
        )
