from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beam_pipeline.contracts.error_record import (
    SCHEMA_VERSION,
    KafkaCoordinates,
    from_json,
    make_error_record,
)

SOURCE = KafkaCoordinates(topic="patients", partition=1, offset=42, timestamp_ms=1_700_000_000_000, key="k")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _record(raw: bytes = b'{"Id": "x"}', **kw):
    args = dict(stage="map", code="no_usable_name", retryable=False, detail="FIRST, LAST", raw=raw)
    return make_error_record(source=SOURCE, now=NOW, job_name="job", **(args | kw))


def test_round_trip_keeps_every_field():
    record = _record(http_status=422, operation_outcome={"resourceType": "OperationOutcome"})
    again = from_json(record.to_json())
    assert again == record
    data = json.loads(record.to_json())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["source"] == {
        "topic": "patients",
        "partition": 1,
        "offset": 42,
        "timestamp_ms": 1_700_000_000_000,
        "key": "k",
    }
    assert data["first_failure_time"] == data["last_failure_time"] == "2026-11-25T12:00:00.000Z"


def test_absent_optionals_are_left_out_not_null():
    data = json.loads(_record().to_json())
    assert "http_status" not in data and "operation_outcome" not in data
    assert None not in data.values()


def test_non_utf8_payload_is_kept_as_base64():
    raw = b"\xff\xfe not utf-8"
    record = _record(raw=raw)
    assert record.payload is None and record.payload_base64
    assert from_json(record.to_json()).raw_payload() == raw


@given(st.binary(max_size=200))
def test_any_payload_survives_exactly(raw):
    assert from_json(_record(raw=raw).to_json()).raw_payload() == raw


def test_record_id_is_stable_and_changes_with_the_attempt():
    first = _record()
    assert first.record_id == _record().record_id
    later = first.next_attempt(now=NOW)
    assert later.attempt == 2 and later.record_id != first.record_id
    assert later.first_failure_time == first.first_failure_time


def test_a_newer_schema_is_refused_clearly():
    data = json.loads(_record().to_json()) | {"schema_version": SCHEMA_VERSION + 1}
    with pytest.raises(ValueError, match="schema_version"):
        from_json(json.dumps(data))


def test_a_replayed_message_continues_its_first_record():
    from beam_pipeline.contracts.error_record import replay_headers
    from beam_pipeline.raw_message import RawMessage

    first = _record()
    replayed = RawMessage("retry", 0, 7, 1, b"k", first.raw_payload(), tuple(replay_headers(first)))
    fields = replayed.error_fields()
    assert fields["source"] == first.source and fields["attempt"] == first.attempt + 1
    assert fields["first_failure_time"] == first.first_failure_time
    again = make_error_record(stage="write", code="timeout", retryable=True, detail="d", raw=b"x", **fields)
    assert again.attempt == 2 and again.record_id != first.record_id


def test_a_first_delivery_or_unparseable_headers_start_at_attempt_one():
    from beam_pipeline.raw_message import RawMessage

    plain = RawMessage("t", 1, 2, 3, None, b"x")
    assert plain.error_fields() == {"source": plain.coordinates, "attempt": 1}
    junk = RawMessage("t", 1, 2, 3, None, b"x", (("k2f-attempt", b"two"), ("k2f-original-topic", b"t")))
    assert junk.error_fields()["attempt"] == 1
