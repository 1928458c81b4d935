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


# Offsets are kept a byte each (their events), in chunks of CHUNK offsets: the step's state is read and
# written for every element it gets, so thousands of messages in flight must cost kilobytes, not a pickled
# dict of ints (0.5 ms a read and write at 5,000 in flight); a gap of any size costs no chunk.
CHUNK_BITS = 10
CHUNK = 1 << CHUNK_BITS
_MASK = CHUNK - 1
# bytes.translate tables, so a chunk is searched in C: 1 where an offset is unsettled / settled / seen.
_UNSETTLED = bytes(0 if b & SETTLED == SETTLED else 1 for b in range(256))
_SETTLED_ONES = bytes(1 if b & SETTLED == SETTLED else 0 for b in range(256))
_SEEN = bytes(1 if b else 0 for b in range(256))


@dataclass
class PartitionLedger:
    # The next offset to read as the job would commit it; None until the group's committed offset is known.
    committed: int | None = None
    # Events seen, per offset at or above `committed`: chunk number (offset // CHUNK) -> a byte per offset.
    chunks: dict[int, bytearray] = field(default_factory=dict)
    # Offsets with some of their events seen and not settled (the messages in flight).
    in_flight: int = 0
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
        if not events:
            return
        chunk = self.chunks.get(offset >> CHUNK_BITS)
        if chunk is None:
            chunk = self.chunks[offset >> CHUNK_BITS] = bytearray(CHUNK)
        index = offset & _MASK
        if not chunk[index]:
            self.in_flight += 1
        chunk[index] |= events

    def start_at(self, committed: int) -> None:
        """The group's committed offset when the job first sees the partition: where its reader started."""
        self.committed = committed
        self.read_next = max(self.read_next, committed)
        for number in sorted(self.chunks):
            low = number << CHUNK_BITS
            if low >= committed:
                break
            chunk = self.chunks[number]
            end = min(CHUNK, committed - low)
            dropped = end - chunk.count(0, 0, end)
            self.repeats += dropped
            self.in_flight -= dropped
            chunk[:end] = bytes(end)
            if end == CHUNK:
                del self.chunks[number]

    def advance(self, now: float) -> bool:
        """Move `committed` past every settled offset (and past a gap older than the grace); True if it moved."""
        if self.committed is None:
            return False
        start = offset = self.committed
        while True:
            number, index = offset >> CHUNK_BITS, offset & _MASK
            chunk = self.chunks.get(number)
            if chunk is not None and chunk[index] and chunk[index] & SETTLED == SETTLED:
                end = chunk.translate(_UNSETTLED).find(1, index)
                end = CHUNK if end < 0 else end
                self.settled += end - index
                self.in_flight -= end - index
                chunk[index:end] = bytes(end - index)
                offset += end - index
                if end == CHUNK:  # every offset of the chunk is now below `committed`
                    del self.chunks[number]
                continue
            if (chunk is None or not chunk[index]) and self._gap_expired(offset, now):
                offset = self._first_above(offset, _SEEN)  # type: ignore[assignment]  (a settled one exists)
                continue
            break
        self.committed = offset
        if self.gap is not None and self.gap[0] < offset:
            self.gap = None
        return offset != start

    def _events(self, offset: int) -> int:
        chunk = self.chunks.get(offset >> CHUNK_BITS)
        return chunk[offset & _MASK] if chunk is not None else 0

    def _first_above(self, offset: int, table: bytes) -> int | None:
        """The first offset above `offset` whose events `table` maps to 1, or None."""
        first = offset >> CHUNK_BITS
        for number in sorted(n for n in self.chunks if n >= first):
            found = self.chunks[number].translate(table).find(1, (offset & _MASK) + 1 if number == first else 0)
            if found >= 0:
                return (number << CHUNK_BITS) + found
        return None

    def _gap_expired(self, offset: int, now: float) -> bool:
        above = self._first_above(offset, _SETTLED_ONES)
        # Only the read step can say nothing was read at `offset`: the message after it must have been seen
        # read. Settled messages above a missing offset whose own read event is missing too prove nothing
        # (a read event late or lost), and skipping then could commit past a message still in flight.
        if above is None or not self._events(above) & READ:
            return False
        if self.gap is None or self.gap[0] != offset:
            self.gap = (offset, now)
            return False
        return now - self.gap[1] >= GAP_GRACE_SECONDS
