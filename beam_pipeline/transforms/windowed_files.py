"""Windowed NDJSON objects in a GCS bucket: the shared writer behind ArchiveRaw and DeadLetter.

Lines are grouped per fixed window, partition path and shard, and each group becomes ONE object, never
one object per message. The object name is a pure function of (partition, window, pane, shard), so a
retried bundle overwrites the object it already wrote instead of adding a second copy; lines are sorted
so the retried object is byte-identical.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import Duration

# Late data still lands, as its own pane/object: a day covers a job stopped overnight and drained later.
ALLOWED_LATENESS = Duration(seconds=24 * 3600)


def fixed_windows(seconds: float) -> beam.WindowInto:
    """Fixed windows that fire when the watermark passes, then once per late element for a day."""
    return beam.WindowInto(
        window.FixedWindows(seconds),
        trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
        allowed_lateness=ALLOWED_LATENESS,
        accumulation_mode=trigger.AccumulationMode.DISCARDING,
    )


def bucket_name(bucket: str) -> str:
    """`gs://name/` or `name` -> `name`."""
    return bucket.removeprefix("gs://").strip("/")


def object_name(prefix: str, partition: str, win: window.IntervalWindow, pane_index: int, shard: int) -> str:
    start = datetime.fromtimestamp(float(win.start), UTC)
    end = datetime.fromtimestamp(float(win.end), UTC)
    stamp = f"{start:%Y%m%dT%H%M%S}-{end:%H%M%S}"
    return f"{prefix}/{partition}/{stamp}-pane{pane_index:03d}-shard{shard:02d}.ndjson"


def shard_of(line: str, shards: int) -> int:
    # A stable hash (not Python's salted hash()) so every worker puts a line in the same shard.
    return int.from_bytes(hashlib.blake2b(line.encode(), digest_size=4).digest(), "big") % shards


def default_storage_client() -> Any:
    """google-cloud-storage client; honours STORAGE_EMULATOR_HOST for the local emulator."""
    from google.cloud import storage

    return storage.Client()


class _WriteObjectFn(beam.DoFn):
    def __init__(self, bucket: str, prefix: str, client_factory: Callable[[], Any]) -> None:
        self._bucket_name = bucket_name(bucket)
        self._prefix = prefix
        self._client_factory = client_factory
        self._objects = beam.metrics.Metrics.counter("windowed_files", f"{prefix}_objects_written")
        self._lines = beam.metrics.Metrics.counter("windowed_files", f"{prefix}_lines_written")

    def setup(self) -> None:
        self._bucket = self._client_factory().bucket(self._bucket_name)

    def process(
        self,
        element: tuple[tuple[str, int], Iterable[str]],
        win: window.IntervalWindow = beam.DoFn.WindowParam,
        pane: Any = beam.DoFn.PaneInfoParam,
    ) -> Iterable[str]:
        (partition, shard), lines = element
        body = sorted(lines)
        name = object_name(self._prefix, partition, win, pane.index, shard)
        self._bucket.blob(name).upload_from_string(
            "\n".join(body) + "\n", content_type="application/x-ndjson", retry=_upload_retry()
        )
        self._objects.inc()
        self._lines.inc(len(body))
        yield f"gs://{self._bucket_name}/{name}"


def _upload_retry() -> Any:
    from google.cloud.storage.retry import DEFAULT_RETRY

    # The object name is deterministic, so an unconditional retry cannot duplicate data.
    return DEFAULT_RETRY


class WriteWindowedNdjson(beam.PTransform):
    """(partition path, NDJSON line) pairs -> gs://bucket/prefix/partition/<window>-pane-shard.ndjson."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        window_seconds: int,
        shards: int = 2,
        client_factory: Callable[[], Any] = default_storage_client,
    ) -> None:
        super().__init__()
        self._bucket = bucket
        self._prefix = prefix
        self._window_seconds = window_seconds
        self._shards = shards
        self._client_factory = client_factory

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        shards = self._shards
        return (
            pcoll
            | "FixedWindows" >> fixed_windows(self._window_seconds)
            | "KeyByPartitionAndShard" >> beam.Map(lambda kv: ((kv[0], shard_of(kv[1], shards)), kv[1]))
            | "GroupPerObject" >> beam.GroupByKey()
            | "WriteObjects" >> beam.ParDo(_WriteObjectFn(self._bucket, self._prefix, self._client_factory))
        )
