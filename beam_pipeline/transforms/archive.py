"""ArchiveRaw: every consumed message, exactly as consumed, in windowed NDJSON files in the archive bucket."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import apache_beam as beam

from beam_pipeline.contracts.bucket_layout import ARCHIVE_PREFIX, UNKNOWN, archive_partition
from beam_pipeline.delivery.ledger import Delivery
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms.windowed_files import WriteWindowedNdjson, default_storage_client


def archive_entry(message: RawMessage) -> tuple[str, str]:
    """(partition path, NDJSON line). Never raises: an exception here would fail the runner's bundle and
    stall the stream, so a message whose line cannot be built is archived as coordinates and base64."""
    try:
        return message.archive_partition(), message.archive_line()
    except Exception:  # noqa: BLE001
        beam.metrics.Metrics.counter("archive_raw", "fallback_lines").inc()
        return fallback_archive_entry(message)


def fallback_archive_entry(message: RawMessage) -> tuple[str, str]:
    data = {
        "topic": str(message.topic),
        "partition": message.partition,
        "offset": message.offset,
        "payload_base64": base64.b64encode(bytes(message.value)).decode("ascii"),
    }
    return archive_partition(str(message.topic), UNKNOWN), json.dumps(data, sort_keys=True, separators=(",", ":"))


class ArchiveRaw(beam.PTransform):
    """RawMessage -> gs://<archive bucket>/archive/topic=T/date=D/<window>-pane-shard-<job>-<launch>.ndjson."""

    def __init__(
        self,
        bucket: str,
        window_seconds: int,
        client_factory: Callable[[], Any] = default_storage_client,
        job_name: str = "",
    ) -> None:
        super().__init__()
        self._writer = WriteWindowedNdjson(
            bucket, ARCHIVE_PREFIX, window_seconds, client_factory=client_factory, job_name=job_name
        )

    def expand(self, messages: beam.PCollection[RawMessage]) -> beam.PCollection[Delivery]:
        """The Delivery of every message once its line is in an archive object."""
        return (
            messages
            | "ToArchiveLine" >> beam.Map(lambda m: (*archive_entry(m), m.delivery))
            | "WriteArchiveFiles" >> self._writer
        )
