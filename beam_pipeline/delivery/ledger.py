"""Which consumed messages have settled, per topic-partition, and the offset that may be committed.

A message has settled when its outcome is durable and it is archived: two events, in any order, from two
parts of the pipeline (ARCHIVED once its archive line is in an object, DONE once it is in the FHIR store,
filtered, or its error record is in an object). A third, READ, from the read step, says a message is in
flight; settling does not wait for it, so a read event that never arrives cannot hold the commit back
for good. The committable offset
is the first one that has not settled: everything below it may be forgotten by Kafka, everything from it
on is read again by the next job. Pure: the Beam step (transforms/commit_offsets.py) keeps one ledger per
topic-partition in its state and does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

READ = 1
ARCHIVED = 2
DONE = 4
SETTLED = ARCHIVED | DONE
# An offset no message was read at while the message read after it settled is a gap (a transaction
# marker, a compacted record), not a message in flight, once it has stayed missing this long: the read
# step reads a partition in order and its read event travels one step, its settlement at least the
# archive window, so a read event this late is not coming.
GAP_GRACE_SECONDS = 60.0


class Delivery(NamedTuple):
    """One consumed message: where the job read it (for a replayed message, the replay's own coordinates)."""

    topic: str
    partition: int
    offset: int


@dataclass
class PartitionLedger:
    # The next offset to read as the job would commit it; None until the group's committed offset is known.
    committed: int | None = None
    # Offsets at or above `committed` with some of their events seen.
    marks: dict[int, int] = field(default_factory=dict)
    read_next: int = 0
    settled: int = 0
    # Events about offsets already committed: a message delivered twice (a replayed runner bundle).
    repeats: int = 0
    # The first missing offset below settled ones, and when it was first seen missing.
    gap: tuple[int, float] | None = None

    def note(self, offset: int, events: int) -> None:
        if events & READ:
            self.read_next = max(self.read_next, offset + 1)
        if self.committed is not None and offset < self.committed:
            self.repeats += 1
            return
        self.marks[offset] = self.marks.get(offset, 0) | events

    def start_at(self, committed: int) -> None:
        """The group's committed offset when the job first sees the partition: where its reader started."""
        self.committed = committed
        self.read_next = max(self.read_next, committed)
        for offset in [o for o in self.marks if o < committed]:
            del self.marks[offset]
            self.repeats += 1

    @property
    def in_flight(self) -> int:
        return len(self.marks)

    def advance(self, now: float) -> bool:
        """Move `committed` past every settled offset (and past a gap older than the grace); True if it moved."""
        if self.committed is None:
            return False
        start = self.committed
        offset = start
        while True:
            events = self.marks.get(offset)
            if events is not None and events & SETTLED == SETTLED:
                del self.marks[offset]
                self.settled += 1
                offset += 1
                continue
            if events is None and self._gap_expired(offset, now):
                above = [o for o in self.marks if o > offset]
                offset = min(above)
                continue
            break
        self.committed = offset
        if self.gap is not None and self.gap[0] < offset:
            self.gap = None
        return offset != start

    def _gap_expired(self, offset: int, now: float) -> bool:
        above = [o for o, e in self.marks.items() if o > offset and e & SETTLED == SETTLED]
        # Only the read step can say nothing was read at `offset`: the message after it must have been seen
        # read. Settled messages above a missing offset whose own read event is missing too prove nothing
        # (a read event late or lost), and skipping then could commit past a message still in flight.
        if not above or not self.marks[min(above)] & READ:
            return False
        if self.gap is None or self.gap[0] != offset:
            self.gap = (offset, now)
            return False
        return now - self.gap[1] >= GAP_GRACE_SECONDS
