"""WriteToFhirStore: resources in batch bundles through the FHIR store client, one outcome per message.

Every message leaves the step once: settled (the main output), or as an error record. A settled message
is counted once, by what the store did with its resources (settled_as): `messages_written` when it changed
any, else `messages_superseded` when the store holds newer data for any (older never overwrites newer),
else `messages_unchanged` (the store already held exactly this content). Nothing
about one bundle escapes the DoFn: an unexpected exception turns that bundle's messages into retryable
error records. The FHIR credentials are not part of the step: it carries the Secret Manager name only and
reads the secret in setup(), again every SECRET_REFRESH_SECONDS and after the store refused them.

Batching has one owner each way: the runner decides which messages travel together (its bundle: the
DoFn buffers one and writes it at finish_bundle, or as soon as it fills every bundle in flight), the
client decides how they are cut into FHIR batch bundles. Nothing waits for a window or a timer, so a
message is written as soon as the runner hands it over. A full group is written on a thread of the step
while the next one fills (GROUPS_IN_FLIGHT): a long runner bundle (a reprocess's, a backlog's) keeps the
store's bundles in flight back to back instead of pausing for the step to map the next group and for the
slowest bundle of the last one. A group's messages leave the step, in order, once it has settled.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.transforms import window
from apache_beam.utils.windowed_value import WindowedValue

from beam_pipeline import failed_message
from beam_pipeline.contracts.error_record import ErrorRecord, ReplayOrigin
from beam_pipeline.contracts.outcome import (
    SETTLED_OUTCOMES,
    SUPERSEDED_OUTCOME,
    UNCHANGED_OUTCOME,
    WRITE,
    WRITE_METRICS,
    WRITTEN_OUTCOME,
    MappedResource,
)
from beam_pipeline.failed_message import message_origin
from beam_pipeline.fhir_store import FhirStoreClient, FhirStoreConfig, FhirStoreError, WriteItem, WriteOutcome, errors
from beam_pipeline.fhir_store.retry import CREDENTIALS_REFUSED_STATUSES
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.secret_manager import access_secret
from beam_pipeline.transforms import coders  # noqa: F401  (registers the coders of the types crossing the Reshuffle)
from beam_pipeline.transforms.elements import MappedMessage
from beam_pipeline.transforms.outputs import FAILED, TALLY, WRITTEN, WriteResult
from beam_pipeline.transforms.tally import Tally

log = logging.getLogger(__name__)

# finish_bundle has no current element, so its outputs name their window; the write runs in the global one.
GLOBAL = (window.GlobalWindow(),)
# A source time this far past the worker's clock is not trusted to guard the write: one message with a
# Kafka timestamp in the year 10000 would otherwise shadow every later update of its patient for good.
MAX_SOURCE_TIME_SKEW_MS = 24 * 3600 * 1000
# How often a worker reads the FHIR auth secret again (rotation), and the least time between two reads
# prompted by the store refusing the credentials.
SECRET_REFRESH_SECONDS = 600.0
SECRET_REREAD_AFTER_REFUSAL_SECONDS = 30.0

# The bundles in flight of every write DoFn instance in this worker process, per store. A runner processes
# several bundles at once (an SDK thread each, with a DoFn instance and a client each): each client's own
# max_bundles_in_flight alone let the store see that many times more, and a store that validates (HAPI with
# US Core on: about 40 ms of CPU a Patient) then queued 200-entry bundles past the client's read timeout,
# and did the work of every resent bundle twice.
_SLOTS: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()
# Groups of bundle_size * max_bundles_in_flight messages one write DoFn has sent and not yet settled: the
# one being written and the next, whose bundles take the store slots the first one's free. A third full
# group waits for the first to settle (and its messages to leave the step).
GROUPS_IN_FLIGHT = 2


def store_slots(config: FhirStoreConfig) -> threading.BoundedSemaphore:
    """The process's semaphore of bundles in flight to the store `config` writes to."""
    key = (config.write_base, config.max_bundles_in_flight)
    with _SLOTS_LOCK:
        if key not in _SLOTS:
            _SLOTS[key] = threading.BoundedSemaphore(config.max_bundles_in_flight)
        return _SLOTS[key]


def source_time_ms(message: RawMessage, now_ms: int | None = None) -> int | None:
    """When the source produced this message: the Kafka timestamp of its first delivery (a replay carries it
    in its headers), or None when there is none to trust (negative, or far in the future)."""
    return trusted_source_time(message_origin(message), now_ms)


def trusted_source_time(origin: ReplayOrigin, now_ms: int | None = None) -> int | None:
    """source_time_ms of a message whose origin has been read already."""
    timestamp = origin.source.timestamp_ms
    if not isinstance(timestamp, int) or timestamp < 0:
        return None
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return timestamp if timestamp <= now_ms + MAX_SOURCE_TIME_SKEW_MS else None


def default_write_order() -> dict[str, int]:
    """resourceType -> tier, derived from the shipped mappings' declared references (Patient 0, Encounter 1,
    what refers to them 2, ...)."""
    from beam_pipeline.mapping.mapping_set import compiled

    return dict(compiled().write_order)


def settled_as(outcomes: Iterable[WriteOutcome]) -> str:
    """One outcome for a message all of whose resources were settled: written when the store changed any of
    them, else superseded when it holds newer data for any, else unchanged (every one as stored, or none)."""
    kinds = {
        SUPERSEDED_OUTCOME if o.superseded else UNCHANGED_OUTCOME if o.unchanged else WRITTEN_OUTCOME for o in outcomes
    }
    return next((kind for kind in SETTLED_OUTCOMES if kind in kinds), UNCHANGED_OUTCOME)


def tiers(messages: list[MappedMessage], order: Mapping[str, int]) -> list[list[tuple[int, MappedResource]]]:
    """The messages' resources per write tier, (message index, resource) in input order within a tier, empty
    tiers left out. What others refer to is written first, each tier after the one before has settled: the
    store resolves a conditional reference (`Patient?identifier=...`) when it writes the entry, so a Patient
    in flight beside its Observation (or in the same message) could still be missing for it. A type no
    mapping orders is written last."""
    last = max(order.values(), default=-1) + 1
    grouped: list[list[tuple[int, MappedResource]]] = [[] for _ in range(last + 1)]
    for index, mapped in enumerate(messages):
        for resource in mapped.resources:
            rtype = resource.resource.get("resourceType") if isinstance(resource.resource, dict) else None
            grouped[order.get(rtype, last) if isinstance(rtype, str) else last].append((index, resource))
    return [group for group in grouped if group]


@dataclass
class _Group:
    """Messages sent to the store together, and what became of them: `outcomes` from the thread that writes
    them, or `failure` for all of them when they could not be sent."""

    pending: list[tuple[MappedMessage, Any]]
    origins: list[ReplayOrigin]
    started: float
    outcomes: concurrent.futures.Future[list[WriteOutcome]] | None = None
    failure: FhirStoreError | None = None


def send_tiers(
    client: FhirStoreClient, messages: list[MappedMessage], source_times: list[int | None], order: Mapping[str, int]
) -> list[WriteOutcome]:
    """The messages' resources written tier by tier (each after the one before has settled); every outcome,
    keyed by message index. Runs on the step's writing thread: it touches no Beam metric."""
    outcomes: list[WriteOutcome] = []
    for tier in tiers(messages, order):
        outcomes.extend(
            client.write([WriteItem(r.resource, r.identifier, key=i, source_time_ms=source_times[i]) for i, r in tier])
        )
    return outcomes


class _WriteBundlesFn(beam.DoFn):
    def __init__(
        self,
        config: FhirStoreConfig,
        job_name: str,
        read_secret: Callable[[str], bytes] = access_secret,
        write_order: Mapping[str, int] | None = None,
    ) -> None:
        if any(getattr(config.auth, name) for name in ("token", "password", "client_secret")):
            # They would be pickled into the job graph (and every template); only the secret's name may travel.
            raise ValueError("WriteToFhirStore takes the FHIR auth secret's resource name, not credentials")
        self._config = config
        self._job_name = job_name
        self._read_secret = read_secret
        self._write_order = dict(write_order) if write_order is not None else default_write_order()

        def counter(name: str) -> Any:  # noqa: ANN401  (a Beam metrics counter)
            return beam.metrics.Metrics.counter(WRITE_METRICS, name)

        # Outcomes (messages_<outcome>, messages_failed) and what the store did per resource: counters that a
        # reprocess also reads as data (the TALLY output).
        self._tally = Tally(WRITE_METRICS)
        # What the client actually sent: its bundles (with their sizes), retries, splits and lookups.
        self._sent = {name: counter(name) for name in ("bundles", "retries", "splits", "lookups")}
        self._bundle_size = beam.metrics.Metrics.distribution(WRITE_METRICS, "bundle_size")
        self._flush_latency = beam.metrics.Metrics.distribution(WRITE_METRICS, "flush_latency_ms")

    def setup(self) -> None:
        # One client per DoFn instance: its keep-alive pool and cached token live as long as the worker.
        self._client: FhirStoreClient | None = None
        self._sizes_sent: list[int] = []
        self._stats_seen: dict[str, int] = {}
        self._client_config: FhirStoreConfig | None = None
        self._secret_read_at = float("-inf")
        self._secret_error: FhirStoreError | None = None
        self._refresh_due = False
        self._groups: deque[_Group] = deque()
        self._writer = concurrent.futures.ThreadPoolExecutor(
            max_workers=GROUPS_IN_FLIGHT, thread_name_prefix="fhir-store-write"
        )
        self._refresh_client(force=True)

    def teardown(self) -> None:
        self._writer.shutdown(wait=True)
        if self._client is not None:
            self._client.close()

    def _refresh_client(self, *, force: bool = False) -> None:
        """(Re)build the client when its config changed: on setup, and when the named secret is due to be
        read again. A secret that cannot be read, or a client that cannot be built (no credentials on the
        worker), leaves the messages retryable, and is tried again. Never while a group is in flight (the
        old client is closed): callers settle them first."""
        now = time.monotonic()
        if not force and now - self._secret_read_at < SECRET_REFRESH_SECONDS:
            return
        if not self._config.auth.unresolved and self._client is not None:
            return
        self._secret_read_at = now
        try:
            config = self._config.resolve_secret(self._read_secret)
            if config != self._client_config:
                # The client's threads note the sizes; _settle reports them (Beam metrics count on this thread).
                client = FhirStoreClient(config, on_bundle_sent=self._sizes_sent.append, slots=store_slots(config))
                old, self._client, self._client_config = self._client, client, config
                self._stats_seen = client.stats.snapshot()
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
        # Groups left by a runner bundle that failed before its end: the runner sends its messages again, so
        # theirs never leave the step; their writes are let end (the client may be rebuilt just below).
        stale, self._groups = self._groups, deque()
        concurrent.futures.wait([group.outcomes for group in stale if group.outcomes is not None])
        self._refresh_client()

    def process(
        self,
        mapped: MappedMessage,
        timestamp: Any = beam.DoFn.TimestampParam,  # noqa: B008 (Beam's parameter marker)
    ) -> Iterable[Any]:
        # Held to the end of the runner's bundle, so the client can keep several FHIR bundles in flight;
        # sent at once when there is enough to fill them all.
        self._pending.append((mapped, timestamp))
        if len(self._pending) >= self._config.bundle_size * self._config.max_bundles_in_flight:
            yield from self._send()

    def finish_bundle(self) -> Iterable[Any]:
        yield from self._send()
        yield from self._settle_down_to(0)

    def _settle_down_to(self, groups: int) -> Iterable[Any]:
        """The oldest groups settled, in order, until at most `groups` are in flight."""
        while len(self._groups) > groups:
            yield from self._settle(self._groups.popleft())

    def _send(self) -> Iterable[Any]:
        """The pending messages as a group on the writing thread; first the oldest group settled when
        GROUPS_IN_FLIGHT are out, or every one when the client must be built again."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        yield from self._settle_down_to(GROUPS_IN_FLIGHT - 1)
        retry_secret = self._client is None or self._secret_error is not None
        if (retry_secret or self._refresh_due) and (
            time.monotonic() - self._secret_read_at > SECRET_REREAD_AFTER_REFUSAL_SECONDS
        ):
            yield from self._settle_down_to(0)
            self._refresh_due = False
            self._refresh_client(force=True)  # the secret may have been rotated
        # Each message's replay headers, read once: for the write's source time and any error record.
        origins = [message_origin(mapped.message) for mapped, _ in pending]
        group = _Group(pending, origins, time.monotonic())
        client = self._client
        if client is None or self._secret_error is not None:
            group.failure = self._secret_error or FhirStoreError(
                code=errors.AUTH_ERROR, retryable=True, transient=False, detail="no FHIR store client"
            )
        else:
            now_ms = int(time.time() * 1000)
            source_times = [trusted_source_time(origin, now_ms) for origin in origins]
            messages = [mapped for mapped, _ in pending]
            group.outcomes = self._writer.submit(send_tiers, client, messages, source_times, self._write_order)
        self._groups.append(group)

    def _settle(self, group: _Group) -> Iterable[Any]:
        """A group's messages out of the step, once its writes are done: settled, or as error records."""
        settled: dict[int, list[WriteOutcome]] = {}
        try:
            first_failure = self._outcomes(group, settled)
        except Exception as exc:  # noqa: BLE001  (never lose a group: its messages stay retryable)
            log.error(
                "WriteToFhirStore: unexpected %s; %d messages left retryable", type(exc).__name__, len(group.pending)
            )
            error = errors.internal_error(f"unexpected {type(exc).__name__} in the write step")
            first_failure = dict.fromkeys(range(len(group.pending)), error)
        self._flush_latency.update(int((time.monotonic() - group.started) * 1000))
        for index, (mapped, timestamp) in enumerate(group.pending):
            failure = first_failure.get(index)
            if failure is None:
                self._tally.inc(f"messages_{settled_as(settled.get(index, ()))}")
                yield WindowedValue(mapped.message, timestamp, GLOBAL)
                continue
            self._tally.inc("messages_failed")
            record = failed_message.error_record(
                mapped.message,
                origin=group.origins[index],
                stage=WRITE,
                code=failure.code,
                retryable=failure.retryable,
                detail=failure.detail,
                job_name=self._job_name,
                http_status=failure.http_status,
                operation_outcome=failure.operation_outcome,
            )
            yield pvalue.TaggedOutput(FAILED, WindowedValue(record, timestamp, GLOBAL))
        for pair in self._tally.take():
            yield pvalue.TaggedOutput(TALLY, WindowedValue(pair, group.pending[-1][1], GLOBAL))

    def _outcomes(self, group: _Group, settled: dict[int, list[WriteOutcome]]) -> dict[int, FhirStoreError]:
        """The first error of each message of the group that failed, by index; `settled` receives each
        message's successful outcomes. Counted here, on the DoFn's thread (Beam metrics are per thread)."""
        if group.outcomes is None:  # not sent: `failure` says why
            return dict.fromkeys(range(len(group.pending)), group.failure)
        # A message succeeds only when all of its resources did; its first failure is its error record.
        first_failure: dict[int, FhirStoreError] = {}
        try:
            outcomes = group.outcomes.result()
        finally:
            self._count_sent()
        for outcome in outcomes:
            if outcome.ok:
                settled.setdefault(outcome.key, []).append(outcome)
                self._tally.inc("resources_written")
                self._tally.inc("resources_created", outcome.created)
                self._tally.inc("superseded", outcome.superseded)
                self._tally.inc("unchanged", outcome.unchanged)
            elif outcome.error is not None:
                first_failure.setdefault(outcome.key, outcome.error)
                if outcome.error.http_status in CREDENTIALS_REFUSED_STATUSES:
                    self._refresh_due = True  # read the secret again before the next group
        return first_failure

    def _count_sent(self) -> None:
        """What the client sent since the last count (bundles, retries, splits, lookups, bundle sizes)."""
        if self._client is None:
            return
        now = self._client.stats.snapshot()
        for name, metric in self._sent.items():
            metric.inc(now.get(name, 0) - self._stats_seen.get(name, 0))
        self._stats_seen = now
        # The writing threads append to this list (the client holds its append): take what is there, in
        # place, so a size noted meanwhile waits for the next count.
        taken = len(self._sizes_sent)
        sizes = self._sizes_sent[:taken]
        del self._sizes_sent[:taken]
        for size in sizes:
            self._bundle_size.update(size)


class WriteToFhirStore(beam.PTransform):
    """MappedMessage -> WriteResult: `written` RawMessage, `failed` ErrorRecord, both in the global window."""

    def __init__(
        self,
        config: FhirStoreConfig,
        job_name: str,
        read_secret: Callable[[str], bytes] = access_secret,
        write_order: Mapping[str, int] | None = None,
        *,
        spread: bool = True,
    ) -> None:
        """`write_order`: resourceType -> tier, from the job's mapping set (MappingSet.write_order); by default
        the shipped mappings'. `spread=False`: no SpreadOverWorkers, for messages a shuffle just spread and
        checkpointed (a reprocess of the archive, grouped by Kafka coordinates)."""
        super().__init__()
        self._spread = spread
        self._config = config
        self._read_secret = read_secret
        self._job_name = job_name
        self._write_order = write_order

    def expand(self, mapped: beam.PCollection[MappedMessage]) -> WriteResult:
        # The Reshuffle spreads the writes over every worker Dataflow scales to (the Kafka read alone is
        # bounded by the topics' partitions) and checkpoints the mapped messages, so a retried write resends
        # the same ones. Prism keeps it as a stage boundary only. No window or timer holds a message back:
        # GroupIntoBatches' buffering timers are mishandled by Prism under load (apache/beam#35771), and a
        # windowed GroupByKey waits for the watermark.
        if self._spread:
            mapped = mapped | "SpreadOverWorkers" >> beam.Reshuffle().with_input_types(MappedMessage).with_output_types(
                MappedMessage
            )
        results = mapped | "WriteBundles" >> beam.ParDo(
            _WriteBundlesFn(self._config, self._job_name, self._read_secret, self._write_order)
        ).with_output_types(RawMessage, **{FAILED: ErrorRecord, TALLY: tuple[str, int]}).with_outputs(
            FAILED, TALLY, main=WRITTEN
        )
        return WriteResult(written=results[WRITTEN], failed=results[FAILED], tally=results[TALLY])
