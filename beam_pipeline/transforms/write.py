"""WriteToFhirStore: resources in batch bundles through the FHIR store client, one outcome per message.

Every message leaves the step once: written (the main output; a message whose data the store already
holds from a newer source time is settled too, counted `superseded`), or as an error record. Nothing
about one bundle escapes the DoFn: an unexpected exception turns that bundle's messages into retryable
error records. The FHIR credentials are not part of the step: it carries the Secret Manager name only and
reads the secret in setup(), again every SECRET_REFRESH_SECONDS and after the store refused them.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.transforms import window
from apache_beam.utils.windowed_value import WindowedValue

from beam_pipeline.contracts.error_record import ErrorRecord, make_error_record
from beam_pipeline.fhir_store import FhirStoreClient, FhirStoreConfig, FhirStoreError, WriteItem, errors
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms.windowed_files import fixed_windows

log = logging.getLogger(__name__)

WRITE_STAGE = "write"
FAILED = "failed"
WRITTEN = "written"
# finish_bundle has no current element, so its outputs name their window; the write runs in the global one.
GLOBAL = (window.GlobalWindow(),)
# Write shards without --max_num_workers, and per worker with it (see default_write_shards).
MIN_WRITE_SHARDS = 8
WRITE_SHARDS_PER_WORKER = 4
# A source time this far past the worker's clock is not trusted to guard the write: one message with a
# Kafka timestamp in the year 10000 would otherwise shadow every later update of its patient for good.
MAX_SOURCE_TIME_SKEW_MS = 24 * 3600 * 1000
# How often a worker reads the FHIR auth secret again (rotation), and the least time between two reads
# prompted by the store refusing the credentials.
SECRET_REFRESH_SECONDS = 600.0
SECRET_REREAD_AFTER_REFUSAL_SECONDS = 30.0
_REFUSED_STATUSES = frozenset({401, 403})


def default_write_shards(max_num_workers: int | None) -> int:
    """Keys of the write's GroupByKey when --write_shards is not given: enough that every worker Dataflow
    may scale to has write work (keys are the unit Dataflow spreads over workers), at least MIN_WRITE_SHARDS."""
    return max(MIN_WRITE_SHARDS, WRITE_SHARDS_PER_WORKER * (max_num_workers or 0))


def source_time_ms(message: RawMessage, now_ms: int | None = None) -> int | None:
    """When the source produced this message: the Kafka timestamp of its first delivery (a replay carries it
    in its headers), or None when there is none to trust (negative, or far in the future)."""
    try:
        timestamp = message.error_fields()["source"].timestamp_ms
    except Exception:  # noqa: BLE001  (odd headers: fall back to the message's own timestamp)
        timestamp = message.timestamp_ms
    if not isinstance(timestamp, int) or timestamp < 0:
        return None
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return timestamp if timestamp <= now_ms + MAX_SOURCE_TIME_SKEW_MS else None


@dataclass(frozen=True)
class MappedMessage:
    """A message mapped to its resources, each with its business identifier (system, value) or None."""

    message: RawMessage
    resources: tuple[tuple[dict[str, Any], tuple[str, str] | None], ...]


# A row about a patient refers to it as `Patient?identifier=system|value` (us_core/clinical.py).
_PATIENT_REFERENCE = "Patient?identifier="
_REFERENCE_FIELDS = ("subject", "patient")
# Within one bundle, what others refer to goes first: the store resolves an entry's conditional references
# when it writes that entry, in the bundle's order.
_WRITE_ORDER = {"Patient": 0, "Encounter": 1}


def owner_identity(resource: dict[str, Any], identifier: tuple[str, str]) -> str:
    """The patient a resource belongs to, as `system|value`: its own identifier for a Patient, the one its
    subject/patient reference names for a clinical row, else its own identifier."""
    for name in _REFERENCE_FIELDS:
        field = resource.get(name)
        reference = field.get("reference", "") if isinstance(field, dict) else ""
        if isinstance(reference, str) and reference.startswith(_PATIENT_REFERENCE):
            return unquote(reference.removeprefix(_PATIENT_REFERENCE))
    return "|".join(identifier)


def shard_key(item: MappedMessage, shards: int) -> int:
    # Every message about one patient lands on one key: its updates are written in order, and its
    # Encounter and the rows that refer to both usually share a bundle, where they are written in order.
    try:
        resource, identifier = item.resources[0]
        ident = owner_identity(resource, identifier)
    except (IndexError, TypeError, ValueError, AttributeError):  # no resource or usable identifier
        ident = f"{item.message.topic}|{item.message.partition}"
    # surrogatepass: a lone surrogate in an identifier must still get a key (the client then refuses it alone).
    digest = hashlib.blake2b(ident.encode("utf-8", "surrogatepass"), digest_size=4).digest()
    return int.from_bytes(digest, "big") % shards


def _read_secret(resource_name: str) -> bytes:
    from beam_pipeline.secret_manager import access_secret  # the worker's Secret Manager client

    return access_secret(resource_name)


class _WriteBundlesFn(beam.DoFn):
    def __init__(
        self, config: FhirStoreConfig, job_name: str, read_secret: Callable[[str], bytes] = _read_secret
    ) -> None:
        if any(getattr(config.auth, name) for name in ("token", "password", "client_secret")):
            # They would be pickled into the job graph (and every template); only the secret's name may travel.
            raise ValueError("WriteToFhirStore takes the FHIR auth secret's resource name, not credentials")
        self._config = config
        self._job_name = job_name
        self._read_secret = read_secret
        self._written = beam.metrics.Metrics.counter("write_to_fhir_store", "resources_written")
        self._created = beam.metrics.Metrics.counter("write_to_fhir_store", "resources_created")
        self._superseded = beam.metrics.Metrics.counter("write_to_fhir_store", "superseded")
        self._failed = beam.metrics.Metrics.counter("write_to_fhir_store", "messages_failed")
        self._latency = beam.metrics.Metrics.distribution("write_to_fhir_store", "batch_latency_ms")
        self._batch_size = beam.metrics.Metrics.distribution("write_to_fhir_store", "batch_size")

    def setup(self) -> None:
        # One client per DoFn instance: its keep-alive pool and cached token live as long as the worker.
        self._client: FhirStoreClient | None = None
        self._client_config: FhirStoreConfig | None = None
        self._secret_read_at = float("-inf")
        self._secret_error: FhirStoreError | None = None
        self._refresh_client(force=True)

    def teardown(self) -> None:
        if self._client is not None:
            self._client.close()

    def _refresh_client(self, *, force: bool = False) -> None:
        """(Re)build the client when its config changed: on setup, and when the named secret is due to be
        read again. A secret that cannot be read, or a client that cannot be built (no credentials on the
        worker), leaves the messages retryable, and is tried again."""
        now = time.monotonic()
        if not force and now - self._secret_read_at < SECRET_REFRESH_SECONDS:
            return
        if not self._config.auth.unresolved and self._client is not None:
            return
        self._secret_read_at = now
        try:
            config = self._config.resolve_secret(self._read_secret)
            if config != self._client_config:
                old, self._client, self._client_config = self._client, FhirStoreClient(config), config
                if old is not None:
                    old.close()
        except Exception as exc:  # noqa: BLE001  (the messages stay retryable; the type names the cause)
            log.warning("WriteToFhirStore: FHIR store client not (re)built (%s)", type(exc).__name__)
            if self._client is not None:
                return  # keep writing with the credentials read before
            self._secret_error = FhirStoreError(
                code=errors.AUTH_ERROR,
                retryable=True,
                transient=False,
                detail=f"the FHIR store client could not be set up ({type(exc).__name__})",
            )
            return
        self._secret_error = None

    def start_bundle(self) -> None:
        self._pending: list[tuple[MappedMessage, Any]] = []
        self._refresh_client()

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
        try:
            first_failure = self._write(pending)
        except Exception as exc:  # noqa: BLE001  (never lose a bundle: its messages stay retryable)
            log.error("WriteToFhirStore: unexpected %s; %d messages left retryable", type(exc).__name__, len(pending))
            error = FhirStoreError(
                code=errors.INTERNAL_ERROR,
                retryable=True,
                detail=f"unexpected {type(exc).__name__} in the write step",
                attempts=0,
            )
            first_failure = dict.fromkeys(range(len(pending)), error)
        for index, (mapped, timestamp) in enumerate(pending):
            failure = first_failure.get(index)
            if failure is None:
                yield WindowedValue(mapped.message, timestamp, GLOBAL)
                continue
            self._failed.inc()
            record = self._error_record(mapped.message, failure)
            yield pvalue.TaggedOutput(FAILED, WindowedValue(record, timestamp, GLOBAL))

    def _write(self, pending: list[tuple[MappedMessage, Any]]) -> dict[int, FhirStoreError]:
        """Write the pending messages' resources; the first error of each message that failed, by index."""
        if self._client is None or self._secret_error is not None:
            if time.monotonic() - self._secret_read_at > SECRET_REREAD_AFTER_REFUSAL_SECONDS:
                self._refresh_client(force=True)
        if self._client is None or self._secret_error is not None:
            error = self._secret_error or FhirStoreError(
                code=errors.AUTH_ERROR, retryable=True, transient=False, detail="no FHIR store client"
            )
            return dict.fromkeys(range(len(pending)), error)
        now_ms = int(time.time() * 1000)
        items = [
            WriteItem(resource, identifier, key=index, source_time_ms=source_time_ms(mapped.message, now_ms))
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
        first_failure: dict[int, FhirStoreError] = {}
        refused = False
        for outcome in outcomes:
            if outcome.ok:
                self._written.inc()
                if outcome.created:
                    self._created.inc()
                if outcome.superseded:
                    self._superseded.inc()
            elif outcome.error is not None:
                first_failure.setdefault(outcome.key, outcome.error)
                refused = refused or outcome.error.http_status in _REFUSED_STATUSES
        if refused and time.monotonic() - self._secret_read_at > SECRET_REREAD_AFTER_REFUSAL_SECONDS:
            self._refresh_client(force=True)  # the secret may have been rotated
        return first_failure

    def _error_record(self, message: RawMessage, error: FhirStoreError) -> ErrorRecord:
        try:
            origin = message.error_fields()
        except Exception:  # noqa: BLE001  (odd replay headers: the message's own coordinates stand)
            origin = {"source": message.coordinates, "attempt": 1}
        return make_error_record(
            stage=WRITE_STAGE,
            code=error.code,
            retryable=error.retryable,
            detail=error.detail,
            raw=message.value,
            **origin,
            job_name=self._job_name,
            http_status=error.http_status,
            operation_outcome=error.operation_outcome,
        )


def _write_rank(message: MappedMessage) -> int:
    try:
        return _WRITE_ORDER.get(message.resources[0][0].get("resourceType"), len(_WRITE_ORDER))
    except (IndexError, TypeError, AttributeError):
        return len(_WRITE_ORDER)


def split_into_bundles(
    keyed: tuple[int, Iterable[MappedMessage]], bundle_size: int
) -> Iterable[tuple[int, list[MappedMessage]]]:
    """One key's messages of one window, in chunks of at most bundle_size (a chunk is one batch bundle)."""
    key, messages = keyed
    chunk: list[MappedMessage] = []
    for message in sorted(messages, key=_write_rank):
        chunk.append(message)
        if len(chunk) == bundle_size:
            yield key, chunk
            chunk = []
    if chunk:
        yield key, chunk


class WriteToFhirStore(beam.PTransform):
    """MappedMessage -> {"written": RawMessage, "failed": ErrorRecord}, both in the global window."""

    def __init__(
        self,
        config: FhirStoreConfig,
        job_name: str,
        shards: int = MIN_WRITE_SHARDS,
        batch_window_secs: float = 1.0,
        read_secret: Callable[[str], bytes] = _read_secret,
    ) -> None:
        super().__init__()
        if shards < 1:
            raise ValueError("write shards must be at least 1")
        self._config = config
        self._read_secret = read_secret
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
            >> beam.ParDo(_WriteBundlesFn(self._config, self._job_name, self._read_secret)).with_outputs(
                FAILED, main=WRITTEN
            )
        )
        return {WRITTEN: results[WRITTEN], FAILED: results[FAILED]}
