"""The settlement ledger: the committable offset never passes a message whose outcome is not durable."""

from __future__ import annotations

import json
import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from beam_pipeline.contracts.commit_metadata import CommitMetadata, decode
from beam_pipeline.delivery.ledger import ARCHIVED, DONE, GAP_GRACE_SECONDS, READ, SETTLED, PartitionLedger

EVENTS = (READ, ARCHIVED, DONE)


def _ledger(start: int = 100) -> PartitionLedger:
    ledger = PartitionLedger()
    ledger.start_at(start)
    return ledger


def test_an_offset_is_committed_only_once_archived_and_done():
    ledger = _ledger()
    for events in (READ, DONE):
        ledger.note(100, events)
        assert not ledger.advance(0.0) and ledger.committed == 100
    ledger.note(100, ARCHIVED)
    assert ledger.advance(0.0) and ledger.committed == 101
    assert ledger.settled == 1 and ledger.in_flight == 0 and ledger.read_next == 101


def test_a_read_event_that_never_comes_does_not_hold_the_commit_back():
    ledger = _ledger()
    ledger.note(100, ARCHIVED | DONE)
    assert ledger.advance(0.0) and ledger.committed == 101


def test_a_message_still_in_flight_holds_back_every_later_one():
    ledger = _ledger()
    for offset in range(100, 110):
        ledger.note(offset, READ)
    for offset in range(101, 110):
        ledger.note(offset, ARCHIVED | DONE)
    ledger.advance(0.0)
    assert ledger.committed == 100 and ledger.in_flight == 10 and ledger.read_next == 110
    ledger.note(100, ARCHIVED | DONE)
    ledger.advance(0.0)
    assert ledger.committed == 110 and ledger.in_flight == 0 and ledger.settled == 10


def test_nothing_is_committed_before_the_group_offset_is_known():
    ledger = PartitionLedger()
    ledger.note(5, SETTLED)
    assert not ledger.advance(0.0) and ledger.committed is None
    ledger.start_at(5)
    assert ledger.advance(0.0) and ledger.committed == 6


def test_events_below_the_committed_offset_are_repeats_not_messages():
    ledger = _ledger()
    ledger.note(99, SETTLED)
    ledger.note(100, SETTLED)
    ledger.advance(0.0)
    ledger.note(100, DONE)  # a redelivered outcome of a message already committed
    ledger.advance(0.0)
    assert ledger.committed == 101 and ledger.repeats == 2 and ledger.in_flight == 0


def test_a_gap_is_skipped_only_after_the_grace_period():
    # A transaction marker at offset 101: no message is ever read there.
    ledger = _ledger()
    ledger.note(100, SETTLED)
    ledger.note(102, READ | SETTLED)
    ledger.advance(0.0)
    assert ledger.committed == 101
    ledger.advance(GAP_GRACE_SECONDS / 2)
    assert ledger.committed == 101
    ledger.advance(GAP_GRACE_SECONDS + 1)
    assert ledger.committed == 103


def test_a_missing_offset_is_never_skipped_unless_the_message_after_it_was_seen_read():
    # Settled messages above, but no read event for them either: a lost or late read event, not a gap.
    ledger = _ledger()
    ledger.note(100, SETTLED)
    ledger.note(102, SETTLED)
    ledger.advance(0.0)
    ledger.advance(GAP_GRACE_SECONDS * 10)
    assert ledger.committed == 101


def test_a_late_read_fills_what_looked_like_a_gap():
    ledger = _ledger()
    ledger.note(100, SETTLED)
    ledger.note(102, SETTLED)
    ledger.advance(0.0)
    ledger.note(101, READ)
    ledger.advance(GAP_GRACE_SECONDS + 1)
    assert ledger.committed == 101, "a message read is in flight, not a gap"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 30), st.sampled_from(EVENTS)), max_size=120),
    st.integers(0, 30),
)
def test_the_committed_offset_never_passes_an_unsettled_message(events, start):
    ledger = _ledger(start)
    seen: dict[int, int] = {}
    for offset, event in events:
        ledger.note(offset, event)
        seen[offset] = seen.get(offset, 0) | event
        ledger.advance(0.0)  # no gap ever expires at time 0
        unsettled = [o for o, e in seen.items() if e & SETTLED != SETTLED and o >= start]
        if unsettled:
            assert ledger.committed <= min(unsettled)
        # Every offset below the committed one was settled (no gap can be skipped at time 0).
        assert all(seen.get(o, 0) & SETTLED == SETTLED for o in range(start, ledger.committed))


def test_commit_metadata_round_trips_and_refuses_what_is_not_ours():
    metadata = CommitMetadata(job="j", read=10, in_flight=2, settled=8, draining=False, at_ms=1)
    assert decode(metadata.encode()) == metadata
    assert decode(None) is None and decode("") is None
    assert decode("written by another tool") is None
    assert decode(json.dumps({"v": 99, "job": "j"})) is None
    assert decode(json.dumps({"v": 1, "job": "j"})) is None  # fields missing


class _DictLedger:
    """The ledger's rules written the plain way (a dict of offsets): the model the chunked ledger must match."""

    def __init__(self) -> None:
        self.committed: int | None = None
        self.marks: dict[int, int] = {}
        self.read_next = self.settled = self.repeats = 0
        self.gap: tuple[int, float] | None = None

    def note(self, offset: int, events: int) -> None:
        self.read_next = max(self.read_next, offset + 1 if events & READ else 0)
        if self.committed is None or offset >= self.committed:
            self.marks[offset] = self.marks.get(offset, 0) | events
        else:
            self.repeats += 1

    def start_at(self, committed: int) -> None:
        self.committed = committed
        self.read_next = max(self.read_next, committed)
        for offset in [o for o in self.marks if o < committed]:
            del self.marks[offset]
            self.repeats += 1

    def advance(self, now: float) -> None:
        if self.committed is None:
            return
        offset = self.committed
        while True:
            events = self.marks.get(offset)
            if events is not None and events & SETTLED == SETTLED:
                del self.marks[offset]
                self.settled += 1
                offset += 1
                continue
            if events is None:
                settled_above = [o for o, e in self.marks.items() if o > offset and e & SETTLED == SETTLED]
                if settled_above and self.marks[min(settled_above)] & READ:
                    if self.gap is not None and self.gap[0] == offset and now - self.gap[1] >= GAP_GRACE_SECONDS:
                        offset = min(o for o in self.marks if o > offset)
                        continue
                    if self.gap is None or self.gap[0] != offset:
                        self.gap = (offset, now)
            break
        self.committed = offset
        if self.gap is not None and self.gap[0] < offset:
            self.gap = None


# Offsets near chunk edges and far apart (a compacted topic's gaps), so chunks are made, crossed and dropped.
_OFFSETS = st.sampled_from([0, 1, 2, 3, 4094, 4095, 4096, 4097, 8191, 8192, 8193, 100_000, 100_001, 100_002])
_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("note"), _OFFSETS, st.sampled_from((*EVENTS, ARCHIVED | DONE, READ | ARCHIVED | DONE))),
        st.tuples(st.just("advance"), st.sampled_from([0.0, GAP_GRACE_SECONDS / 2, GAP_GRACE_SECONDS * 2])),
        st.tuples(st.just("start_at"), st.sampled_from([0, 2, 4095, 4096, 8192])),
    ),
    max_size=80,
)


@settings(max_examples=400, deadline=None)
@given(_STEPS)
def test_the_chunked_ledger_keeps_the_plain_rules(steps):
    ledger, model, now, started = PartitionLedger(), _DictLedger(), 0.0, False
    for step in steps:
        if step[0] == "note":
            ledger.note(step[1], step[2])
            model.note(step[1], step[2])
        elif step[0] == "advance":
            now += step[1]
            ledger.advance(now)
            model.advance(now)
        elif not started:  # the group's offset is learnt once per partition
            started = True
            ledger.start_at(step[1])
            model.start_at(step[1])
        got = (ledger.committed, ledger.in_flight, ledger.settled, ledger.repeats, ledger.read_next, ledger.gap)
        assert got == (model.committed, len(model.marks), model.settled, model.repeats, model.read_next, model.gap)


def test_thousands_in_flight_keep_a_small_state():
    ledger = _ledger(0)
    for offset in range(5000):
        ledger.note(offset, READ)
    assert len(pickle.dumps(ledger)) < 2 * 8192 + 500  # two chunks of a byte per offset, not a dict of ints
    for offset in range(5000):
        ledger.note(offset, SETTLED)
    assert ledger.advance(0.0) and ledger.committed == 5000 and ledger.in_flight == 0 and len(ledger.chunks) == 1


def test_a_skipped_gap_stops_at_the_next_message_seen_even_unsettled():
    ledger = _ledger(4095)  # the gap at a chunk's last offset, the messages after it in the next chunk
    ledger.note(4096, READ)
    ledger.note(4097, READ | ARCHIVED | DONE)
    ledger.advance(0.0)
    ledger.advance(GAP_GRACE_SECONDS + 1)
    assert ledger.committed == 4096 and ledger.in_flight == 2, "4096 was read and has not settled"
