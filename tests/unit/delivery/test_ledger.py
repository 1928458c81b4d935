"""The settlement ledger: the committable offset never passes a message whose outcome is not durable."""

from __future__ import annotations

import json

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
