"""WriteToFhirStore: resources in batch bundles through the FHIR store client, one outcome per message."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from beam_pipeline.error_record import ErrorRecord, make_error_record
from beam_pipeline.fhir_store import FhirStoreClient, FhirStoreConfig, WriteItem
from beam_pipeline.raw_message import RawMessage

WRITE_STAGE = "write"
FAILED = "failed"


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

    def process(self, batch: tuple[int, Iterable[MappedMessage]]) -> Iterable[Any]:
        _, messages = batch
        messages = list(messages)
        items = [
            WriteItem(resource, identifier, key=index)
            for index, mapped in enumerate(messages)
            for resource, identifier in mapped.resources
        ]
        started = time.monotonic()
        outcomes = self._client.write(items)
        self._latency.update(int((time.monotonic() - started) * 1000))
        self._batch_size.update(len(items))
        # A message succeeds only when all of its resources did; its first failure is its error record.
        first_failure: dict[int, Any] = {}
        for outcome in outcomes:
            if outcome.ok:
                self._written.inc()
                if outcome.created:
                    self._created.inc()
            else:
                first_failure.setdefault(outcome.key, outcome)
        for index, mapped in enumerate(messages):
            failure = first_failure.get(index)
            if failure is None:
                yield mapped.message
                continue
            self._failed.inc()
            yield pvalue.TaggedOutput(FAILED, self._error_record(mapped.message, failure))

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


class WriteToFhirStore(beam.PTransform):
    """MappedMessage -> written RawMessage (main output) and ErrorRecord (`failed`)."""

    def __init__(
        self, config: FhirStoreConfig, job_name: str, shards: int = 8, max_buffering_secs: float = 1.0
    ) -> None:
        super().__init__()
        self._config = config
        self._job_name = job_name
        self._shards = shards
        self._max_buffering_secs = max_buffering_secs

    def expand(self, mapped: beam.PCollection[MappedMessage]) -> pvalue.DoOutputsTuple:
        shards = self._shards
        return (
            mapped
            | "KeyByResource" >> beam.Map(lambda m: (shard_key(m, shards), m))
            | "GroupIntoBundles"
            >> beam.GroupIntoBatches(self._config.bundle_size, max_buffering_duration_secs=self._max_buffering_secs)
            # A fusion break between the timers and the slow HTTP step. Prism splits a slow bundle and then
            # drops or repeats the batches its flush timers emitted (apache/beam#35771); on Dataflow the
            # checkpoint means a retried write resends the same bundle instead of regrouping.
            | "CheckpointBundles" >> beam.Reshuffle()
            | "WriteBundles"
            >> beam.ParDo(_WriteBundlesFn(self._config, self._job_name)).with_outputs(FAILED, main="written")
        )
