"""WriteToFhirStore: resources in batch bundles through the FHIR store client, one outcome per message."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.transforms import window
from apache_beam.utils.windowed_value import WindowedValue

from beam_pipeline.error_record import ErrorRecord, make_error_record
from beam_pipeline.fhir_store import FhirStoreClient, FhirStoreConfig, WriteItem
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms.windowed_files import fixed_windows

WRITE_STAGE = "write"
FAILED = "failed"
WRITTEN = "written"
# finish_bundle has no current element, so its outputs name their window; the write runs in the global one.
GLOBAL = (window.GlobalWindow(),)


@dataclass(frozen=True)
class MappedMessage:
    """A message mapped to its resources, each with its business identifier (system, value) or None."""

    message: RawMessage
    resources: tuple[tuple[dict[str, Any], tuple[str, str] | None], ...]


def shard_key(item: MappedMessage, shards: int) -> int:
    # Every message about one resource identity lands on one key, so its updates are written in order.
    _, identifier = item.resources[0]
    ident = "|".join(identifier) if identifier else f"{item.message.topic}|{item.message.partition}"
    return int.from_bytes(hashlib.blake2b(ident.encode(), digest_size=4).digest(), "big") % shards


class _WriteBundlesFn(beam.DoFn):
    def __init__(self, config: FhirStoreConfig, job_name: str) -> None:
        self._config = config
        self._job_name = job_name
        self._written = beam.metrics.Metrics.counter("write_to_fhir_store", "resources_written")
        self._created = beam.metrics.Metrics.counter("write_to_fhir_store", "resources_created")
        self._failed = beam.metrics.Metrics.counter("write_to_fhir_store", "messages_failed")
        self._latency = beam.metrics.Metrics.distribution("write_to_fhir_store", "batch_latency_ms")
        self._batch_size = beam.metrics.Metrics.distribution("write_to_fhir_store", "batch_size")

    def setup(self) -> None:
        # One client per DoFn instance: its keep-alive pool and cached token live as long as the worker.
        self._client = FhirStoreClient(self._config)

    def teardown(self) -> None:
        self._client.close()

    def start_bundle(self) -> None:
        self._pending: list[tuple[MappedMessage, Any]] = []

    def process(
        self,
        batch: tuple[int, Iterable[MappedMessage]],
        timestamp: Any = beam.DoFn.TimestampParam,  # noqa: B008 (Beam's parameter marker)
    ) -> Iterable[Any]:
        # Batches are held to the end of the runner's bundle and written together, so the client keeps
        # several FHIR bundles in flight instead of one key's batch at a time.
        _, messages = batch
        self._pending.extend((mapped, timestamp) for mapped in messages)
        if len(self._pending) >= self._config.bundle_size * self._config.max_bundles_in_flight:
            yield from self._flush()

    def finish_bundle(self) -> Iterable[Any]:
        yield from self._flush()

    def _flush(self) -> Iterable[Any]:
        pending, self._pending = self._pending, []
        if not pending:
            return
        items = [
            WriteItem(resource, identifier, key=index)
            for index, (mapped, _) in enumerate(pending)
            for resource, identifier in mapped.resources
        ]
        started = time.monotonic()
        outcomes = self._client.write(items)
        self._latency.update(int((time.monotonic() - started) * 1000))
        size = self._config.bundle_size
        for start in range(0, len(items), size):
            self._batch_size.update(min(size, len(items) - start))
        # A message succeeds only when all of its resources did; its first failure is its error record.
        first_failure: dict[int, Any] = {}
        for outcome in outcomes:
            if outcome.ok:
                self._written.inc()
                if outcome.created:
                    self._created.inc()
            else:
                first_failure.setdefault(outcome.key, outcome)
        for index, (mapped, timestamp) in enumerate(pending):
            failure = first_failure.get(index)
            if failure is None:
                yield WindowedValue(mapped.message, timestamp, GLOBAL)
                continue
            self._failed.inc()
            record = self._error_record(mapped.message, failure)
            yield pvalue.TaggedOutput(FAILED, WindowedValue(record, timestamp, GLOBAL))

    def _error_record(self, message: RawMessage, outcome: Any) -> ErrorRecord:
        error = outcome.error
        return make_error_record(
            stage=WRITE_STAGE,
            code=error.code,
            retryable=error.retryable,
            detail=error.detail,
            raw=message.value,
            **message.error_fields(),
            job_name=self._job_name,
            http_status=error.http_status,
            operation_outcome=error.operation_outcome,
        )


def split_into_bundles(
    keyed: tuple[int, Iterable[MappedMessage]], bundle_size: int
) -> Iterable[tuple[int, list[MappedMessage]]]:
    """One key's messages of one window, in chunks of at most bundle_size (a chunk is one batch bundle)."""
    key, messages = keyed
    chunk: list[MappedMessage] = []
    for message in messages:
        chunk.append(message)
        if len(chunk) == bundle_size:
            yield key, chunk
            chunk = []
    if chunk:
        yield key, chunk


class WriteToFhirStore(beam.PTransform):
    """MappedMessage -> {"written": RawMessage, "failed": ErrorRecord}, both in the global window."""

    def __init__(self, config: FhirStoreConfig, job_name: str, shards: int = 8, batch_window_secs: float = 1.0) -> None:
        super().__init__()
        self._config = config
        self._job_name = job_name
        self._shards = shards
        self._batch_window_secs = batch_window_secs

    def expand(self, mapped: beam.PCollection[MappedMessage]) -> dict[str, beam.PCollection]:
        shards, bundle_size = self._shards, self._config.bundle_size
        # Batches are short fixed windows grouped by key, not GroupIntoBatches: Prism drops or repeats the
        # batches GroupIntoBatches' buffering timers emit when it splits a slow bundle (apache/beam#35771),
        # which lost messages under load even behind a Reshuffle. A grouped window is a checkpoint on every
        # runner, so a retried write resends the same bundle.
        results = (
            mapped
            | "BatchWindows" >> fixed_windows(self._batch_window_secs)
            | "KeyByResource" >> beam.Map(lambda m: (shard_key(m, shards), m))
            | "GroupPerWindow" >> beam.GroupByKey()
            | "SplitIntoBundles" >> beam.FlatMap(split_into_bundles, bundle_size)
            # Back to the global window the input had, before writing: the failures are flattened with the
            # other steps' failures, and Prism misreads a Flatten of differently windowed inputs.
            | "ToGlobalWindow" >> beam.WindowInto(window.GlobalWindows())
            | "WriteBundles"
            >> beam.ParDo(_WriteBundlesFn(self._config, self._job_name)).with_outputs(FAILED, main=WRITTEN)
        )
        return {WRITTEN: results[WRITTEN], FAILED: results[FAILED]}
