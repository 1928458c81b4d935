"""CommitOffsets: the consumer group's offsets move only past messages whose outcome is durable.

KafkaIO would commit an offset as soon as the runner finalizes the bundle that read it, before the message
is mapped, written or archived, so whatever a stopped job held in between was lost. Instead this step hears
from three places: the read (the message entered the job), the archive (its line is in an object) and the
outcome (stored in the FHIR store, filtered, or its error record in an object). Per topic-partition it
commits the first offset whose message has not settled: a job that stops in any way leaves its unsettled
messages to the next job, which reads them again; the idempotent write absorbs the repeat
(docs/contracts.md, "Delivery"). Each commit carries metadata (beam_pipeline/contracts/commit_metadata.py)
the health and drain DAGs read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

import apache_beam as beam
from apache_beam import typehints
from apache_beam.coders import PickleCoder
from apache_beam.transforms import window
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from beam_pipeline.contracts.commit_metadata import CommitMetadata
from beam_pipeline.delivery.committer import OffsetCommitter, TopicPartitionKey
from beam_pipeline.delivery.drain_signal import DrainSignal
from beam_pipeline.delivery.ledger import ARCHIVED, DONE, READ, Delivery, PartitionLedger

log = logging.getLogger(__name__)

# The inputs CommitOffsets takes, by name, and the event each one is about a message.
EVENTS: Mapping[str, int] = {
    "read": READ,
    "archived": ARCHIVED,
    "stored": DONE,
    "filtered": DONE,
    "dead_lettered": DONE,
    "deferred": DONE,  # sent to the retry topic, which now holds it
}
EVENT_NAMES = {READ: "read", ARCHIVED: "archived", DONE: "done"}
GLOBAL = (window.GlobalWindow(),)
NAMESPACE = "commit_offsets"


def _delivery(element: Any) -> Delivery:  # noqa: ANN401  (a RawMessage or a Delivery)
    return element if isinstance(element, Delivery) else element.delivery


class _CompactFn(beam.DoFn):
    """Deliveries (or RawMessages) that one event happened to -> one (topic-partition, ((offset, event), ...))
    per partition and runner bundle, in the global window, whatever window the input was in."""

    def __init__(self, event: int) -> None:
        self._event = event
        self._received = beam.metrics.Metrics.counter(NAMESPACE, f"events_{EVENT_NAMES[event]}")

    def start_bundle(self) -> None:
        self._offsets: dict[TopicPartitionKey, set[int]] = {}
        self._latest = MIN_TIMESTAMP

    def process(self, element: Any, timestamp: Any = beam.DoFn.TimestampParam) -> None:  # noqa: ANN401, B008
        delivery = _delivery(element)
        self._offsets.setdefault((delivery.topic, delivery.partition), set()).add(delivery.offset)
        self._latest = max(self._latest, timestamp)

    def finish_bundle(self) -> Iterable[WindowedValue]:
        for key, offsets in self._offsets.items():
            self._received.inc(len(offsets))
            yield WindowedValue((key, tuple((o, self._event) for o in sorted(offsets))), self._latest, GLOBAL)
        self._offsets = {}


class _CommitFn(beam.DoFn):
    LEDGER = ReadModifyWriteStateSpec("ledger", PickleCoder())

    def __init__(self, committer: OffsetCommitter, drain: DrainSignal, job_name: str) -> None:
        self._committer = committer
        self._drain = drain
        self._job_name = job_name
        counter = beam.metrics.Metrics.counter
        self._settled = counter(NAMESPACE, "messages_settled")
        self._repeats = counter(NAMESPACE, "repeated_events")
        self._commits = counter(NAMESPACE, "commits")
        self._applied = counter(NAMESPACE, "offsets_noted")
        self._failures = counter(NAMESPACE, "commit_failures")
        self._in_flight = beam.metrics.Metrics.distribution(NAMESPACE, "in_flight")

    def setup(self) -> None:
        # Offsets computed but not yet accepted by Kafka; a failed commit is sent again with the next bundle.
        self._due: dict[TopicPartitionKey, tuple[int, str]] = {}

    def teardown(self) -> None:
        self._committer.close()

    def process(
        self,
        element: tuple[TopicPartitionKey, tuple[tuple[int, int], ...]],
        ledger_state: Any = beam.DoFn.StateParam(LEDGER),  # noqa: B008
    ) -> None:
        key, marks = element
        ledger: PartitionLedger = ledger_state.read() or PartitionLedger()
        settled, repeats = ledger.settled, ledger.repeats
        for offset, events in marks:
            ledger.note(offset, events)
        self._applied.inc(len(marks))
        if ledger.committed is None:
            try:
                ledger.start_at(self._committer.start_offset(*key))
            except Exception as exc:  # noqa: BLE001  (Kafka unreachable: commit nothing yet, try again)
                log.warning("CommitOffsets: the group's offset is unknown (%s); nothing committed", type(exc).__name__)
                self._failures.inc()
        ledger.advance(time.time())
        ledger_state.write(ledger)
        self._settled.inc(ledger.settled - settled)
        self._repeats.inc(ledger.repeats - repeats)
        self._in_flight.update(ledger.in_flight)
        if ledger.committed is not None:
            metadata = CommitMetadata(
                job=self._job_name,
                read=ledger.read_next,
                in_flight=ledger.in_flight,
                settled=ledger.settled,
                draining=self._drain.requested(),
                at_ms=int(time.time() * 1000),
            )
            self._due[key] = (ledger.committed, metadata.encode())

    def finish_bundle(self) -> None:
        if not self._due:
            return
        try:
            self._committer.commit(self._due)
        except Exception as exc:  # noqa: BLE001  (the offsets stay due; a stopped job only re-reads more)
            log.warning("CommitOffsets: %d offset(s) not committed (%s)", len(self._due), type(exc).__name__)
            self._failures.inc()
            return
        self._commits.inc()
        self._due = {}


class CommitOffsets(beam.PTransform):
    """{"read": RawMessage, "archived" / "stored" / "filtered" / "dead_lettered": Delivery or RawMessage}
    -> the consumer group's offsets committed, per topic-partition, past every settled message."""

    def __init__(self, committer: OffsetCommitter, drain: DrainSignal, job_name: str) -> None:
        super().__init__()
        self._committer = committer
        self._drain = drain
        self._job_name = job_name

    def expand(self, inputs: Mapping[str, beam.PCollection]) -> beam.PCollection:
        unknown = set(inputs) - set(EVENTS)
        if unknown:
            raise ValueError(f"CommitOffsets takes {', '.join(EVENTS)}; not {', '.join(sorted(unknown))}")
        # Each input is compacted where it is produced (fused into its producer's bundle), so what crosses
        # to the stateful step is one element per partition and bundle, not one per message and event.
        compacted = [
            pcoll
            # The compacted element is in the global window, whatever the input's (the archive's are fixed
            # windows): its PCollection must say so.
            | f"Global{label}" >> beam.WindowInto(window.GlobalWindows())
            | f"Compact{label}"
            >> beam.ParDo(_CompactFn(EVENTS[name])).with_output_types(
                # Typed, so the stateful step's key has a deterministic coder (Dataflow requires one).
                typehints.KV[typehints.Tuple[str, int], typehints.Tuple[typehints.Tuple[int, int], ...]]
            )
            for name, pcoll in sorted(inputs.items())
            for label in [name.title().replace("_", "")]
        ]
        return (
            compacted
            | "AllEvents" >> beam.Flatten()
            | "CommitSettled" >> beam.ParDo(_CommitFn(self._committer, self._drain, self._job_name))
        )
