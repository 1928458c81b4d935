"""Guarded creates sent without reading the store first (fhir_store/guard.py): a stream of new records costs
one request a bundle, and a guess that was wrong costs a read, never a wrong write or a failed message."""

from __future__ import annotations

import pytest
from fhir_fakes import SYSTEM, patient

from beam_pipeline.fhir_store import RetryPolicy, WriteItem


def _timed(value: str, source_time_ms: int, family: str) -> WriteItem:
    return WriteItem(patient(value, family), (SYSTEM, value), key=(value, family), source_time_ms=source_time_ms)


def _searches(server) -> int:  # noqa: ANN001
    return sum(1 for r in server.log if r.url.endswith("/_search"))


def _families(server) -> dict[str, str]:  # noqa: ANN001
    return {p["identifier"][0]["value"]: p["name"][0]["family"] for p in server.patients()}


def test_new_records_are_read_for_once_then_created_without_a_read(server, make_client):
    client = make_client(bundle_size=10)
    for batch in range(3):
        outcomes = client.write([_timed(f"N{batch}-{i}", 1_000, "New") for i in range(5)])
        assert all(o.ok and o.status == 201 for o in outcomes)
    assert _searches(server) == 1  # the first bundle's read found none of its identifiers
    stats = client.stats.snapshot()
    assert (stats["unread_creates"], stats["unread_creates_found"], stats["conflicts"]) == (10, 0, 0)
    assert len(server.patients()) == 15


@pytest.mark.parametrize("max_attempts", [1, 4])
def test_a_wrong_guess_is_read_and_decided_with_one_outcome_each_whatever_the_retry_budget(
    server, make_client, max_attempts
):
    client = make_client(retry=RetryPolicy(max_attempts=max_attempts, total_timeout=60, initial_backoff=1))
    client.write([_timed("A", 1_000, "Old"), _timed("B", 9_000, "Newest")])  # read once: none stored
    # Unread: A and B exist (A older, B newer than what comes now), C is new.
    outcomes = client.write([_timed("A", 2_000, "Updated"), _timed("B", 2_000, "Stale"), _timed("C", 2_000, "New")])
    by_key = {o.key[0]: o for o in outcomes}
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert by_key["C"].status == 201 and by_key["B"].superseded and not by_key["A"].superseded
    assert _families(server) == {"A": "Updated", "B": "Newest", "C": "New"}  # nothing duplicated
    stats = client.stats.snapshot()
    assert (stats["unread_creates_found"], stats["conflicts"]) == (2, 0)
    searches = _searches(server)
    # The guess was wrong: the next bundle is read before it is written.
    client.write([_timed("D", 3_000, "Read first")])
    assert _searches(server) == searches + 1


def test_unguarded_writes_and_creates_of_another_type_keep_their_own_reading(server, make_client):
    client = make_client()
    client.write([_timed("P", 1_000, "First")])
    client.write([_timed("P", 2_000, "Second")])  # unread, found: Patients are read first again
    before = _searches(server)
    client.write([WriteItem(patient("Q", "Plain"), (SYSTEM, "Q"))])  # no source time: no guard, no read
    assert _searches(server) == before
    client.write([_timed("R", 3_000, "Guarded")])
    assert _searches(server) == before + 1
