"""Windowed NDJSON objects in a GCS bucket: the shared writer behind ArchiveRaw and DeadLetter.

Lines are grouped per fixed window, partition path and shard, and each group becomes ONE object, never
one object per message. Objects are only ever created, never replaced (`if_generation_match=0`): the
name carries the job name and an id drawn once per launch, so two jobs, or a job and its restart, writing
the same window write different objects. Within one launch the name is a pure function of (partition,
window, pane, shard) and lines are sorted, so a retried bundle finds its own object byte for byte and
writes nothing; any other clash (a job launched twice from one template) takes a new name.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import Duration

from beam_pipeline.contracts.bucket_layout import bucket_name
from beam_pipeline.delivery.ledger import Delivery

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


def writer_id(job_name: str) -> str:
    """The job name (as a safe path segment) and a random id: one per launch of the pipeline."""
    job = re.sub(r"[^a-zA-Z0-9_-]+", "-", job_name).strip("-")[:64]
    return f"{job}-{uuid.uuid4().hex[:12]}" if job else uuid.uuid4().hex[:12]


def object_name(
    prefix: str, partition: str, win: window.IntervalWindow, pane_index: int, shard: int, writer: str
) -> str:
    start = datetime.fromtimestamp(float(win.start), UTC)
    end = datetime.fromtimestamp(float(win.end), UTC)
    stamp = f"{start:%Y%m%dT%H%M%S}-{end:%H%M%S}"
    return f"{prefix}/{partition}/{stamp}-pane{pane_index:03d}-shard{shard:02d}-{writer}.ndjson"


# A clash with different bytes needs one new name; more than a few in a row is not a clash but a fault.
MAX_NAME_CLASHES = 5


def create_object(bucket: Any, name: str, body: bytes) -> str:  # noqa: ANN401  (a google.cloud.storage Bucket)
    """Upload `body` as a new object and return its name; never replaces an existing object.

    When `name` exists with the same bytes (a retried bundle, or an upload whose answer was lost) it is
    already written; with other bytes, or when the writer may not read objects (a create-only role), the
    body goes under `name` plus a random suffix: a line may then be stored twice, never lost.
    """
    from google.api_core.exceptions import PreconditionFailed

    candidate = name
    for _ in range(MAX_NAME_CLASHES):
        try:
            bucket.blob(candidate).upload_from_string(
                body, content_type="application/x-ndjson", if_generation_match=0, retry=_upload_retry()
            )
            return candidate
        except PreconditionFailed:
            if _holds(bucket, candidate, body):
                return candidate
            candidate = f"{name.removesuffix('.ndjson')}-{uuid.uuid4().hex[:8]}.ndjson"
    raise RuntimeError(f"{MAX_NAME_CLASHES} name clashes in a row under {name}")


def _holds(bucket: Any, name: str, body: bytes) -> bool:  # noqa: ANN401
    from google.api_core.exceptions import Forbidden, NotFound

    try:
        return bucket.blob(name).download_as_bytes() == body
    except (Forbidden, NotFound):
        return False


def shard_of(line: str, shards: int) -> int:
    # A stable hash (not Python's salted hash()) so every worker puts a line in the same shard.
    return int.from_bytes(hashlib.blake2b(line.encode(), digest_size=4).digest(), "big") % shards


def default_storage_client() -> Any:
    """google-cloud-storage client; honours STORAGE_EMULATOR_HOST for the local emulator."""
    from google.cloud import storage

    return storage.Client()


class _WriteObjectFn(beam.DoFn):
    def __init__(self, bucket: str, prefix: str, writer: str, client_factory: Callable[[], Any]) -> None:
        self._bucket_name = bucket_name(bucket)
        self._prefix = prefix
        self._writer = writer
        self._client_factory = client_factory
        self._objects = beam.metrics.Metrics.counter("windowed_files", f"{prefix}_objects_written")
        self._lines = beam.metrics.Metrics.counter("windowed_files", f"{prefix}_lines_written")

    def setup(self) -> None:
        self._bucket = self._client_factory().bucket(self._bucket_name)

    def process(
        self,
        element: tuple[tuple[str, int], Iterable[tuple[str, Delivery | None]]],
        win: window.IntervalWindow = beam.DoFn.WindowParam,
        pane: Any = beam.DoFn.PaneInfoParam,
    ) -> Iterable[Delivery]:
        (partition, shard), entries = element
        entries = list(entries)
        body = sorted(line for line, _ in entries)
        name = object_name(self._prefix, partition, win, pane.index, shard, self._writer)
        create_object(self._bucket, name, ("\n".join(body) + "\n").encode("utf-8"))
        self._objects.inc()
        self._lines.inc(len(body))
        # Only now is each line durable: what the offset commit waits for.
        yield from (delivery for _, delivery in entries if delivery is not None)


def _upload_retry() -> Any:  # noqa: ANN401
    from google.cloud.storage.retry import DEFAULT_RETRY

    # Create-only uploads: a retry after a lost answer meets its own object, which create_object accepts.
    return DEFAULT_RETRY


class WriteWindowedNdjson(beam.PTransform):
    """(partition path, NDJSON line, Delivery or None) -> gs://bucket/prefix/partition/<window>-pane-shard.ndjson.

    Its output is the Delivery of every line once the object holding it is written."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        window_seconds: int,
        shards: int = 2,
        client_factory: Callable[[], Any] = default_storage_client,
        job_name: str = "",
    ) -> None:
        super().__init__()
        self._bucket = bucket
        self._prefix = prefix
        self._window_seconds = window_seconds
        self._shards = shards
        self._client_factory = client_factory
        # Drawn when the pipeline is built, so every worker of this launch shares it and a restart does not.
        self._writer = writer_id(job_name)

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        shards = self._shards
        return (
            pcoll
            | "FixedWindows" >> fixed_windows(self._window_seconds)
            | "KeyByPartitionAndShard"
            >> beam.Map(lambda entry: ((entry[0], shard_of(entry[1], shards)), (entry[1], entry[2])))
            | "GroupPerObject" >> beam.GroupByKey()
            | "WriteObjects"
            >> beam.ParDo(_WriteObjectFn(self._bucket, self._prefix, self._writer, self._client_factory))
        )


class WindowedNdjsonStep(beam.PTransform):
    """What ArchiveRaw and DeadLetter share: a WriteWindowedNdjson into `bucket` under the class's `prefix`.
    A subclass's expand() turns its elements into (partition path, line, Delivery or None) for `_writer`."""

    prefix: str

    def __init__(
        self,
        bucket: str,
        window_seconds: int,
        client_factory: Callable[[], Any] = default_storage_client,
        job_name: str = "",
    ) -> None:
        super().__init__()
        self._writer = WriteWindowedNdjson(
            bucket, self.prefix, window_seconds, client_factory=client_factory, job_name=job_name
        )
