"""Anything Kafka can deliver ends as one outcome with a code, never as an exception that fails a bundle.

Each known way in (issue 10, item 1) has its own case here; the graph-level and Kafka-level versions are
tests/integration/test_hostile_input_graph.py and test_hostile_input_e2e.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from beam_pipeline.contracts.bucket_layout import error_partition
from beam_pipeline.contracts.error_record import (
    HEADER_ATTEMPT,
    HEADER_FIRST_FAILURE,
    HEADER_OFFSET,
    HEADER_PARTITION,
    HEADER_TIMESTAMP,
    HEADER_TOPIC,
    json_line,
    make_error_record,
    utc_date,
)
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms.archive import archive_entry
from beam_pipeline.transforms.parse_and_map import (
    FAILED,
    FILTERED,
    INVALID,
    MAPPED,
    _MapFn,
    _ParseFn,
)
from beam_pipeline.us_core import Error, Ok, TransformConfig, stages, transform
from beam_pipeline.us_core import parse as parsing
from beam_pipeline.us_core.parse import parse_json_object

BASE = {"Id": "hostile-1", "FIRST": "Ann", "LAST": "Lee"}
YEAR_10000_MS = 253_402_300_800_000
T0_MS = 1_795_000_000_000  # 2026-11-18


def _json(**fields: object) -> bytes:
    return json.dumps(BASE | fields).encode()


def _raw(text: str) -> bytes:
    return text.encode("utf-8")


def _with(members: str) -> bytes:
    """A record with an Id and a name plus `members`, JSON text as written (so escapes stay escapes)."""
    return _raw('{"Id": "1", "FIRST": "A", ' + members + "}")


# (name, raw message, expected stage, expected code); the name is the kind of poison.
POISON = [
    ("integer of 5,000 digits", _with('"ZIP": ' + "9" * 5000), "parse", "invalid_number"),
    ("integer of 101 digits", _with('"ZIP": ' + "9" * 101), "parse", "invalid_number"),
    ("NaN", _raw('{"Id": "1", "FIRST": "A", "LAT": NaN}'), "parse", "invalid_number"),
    ("Infinity", _raw('{"Id": "1", "FIRST": "A", "LAT": Infinity}'), "parse", "invalid_number"),
    ("-Infinity", _raw('{"Id": "1", "FIRST": "A", "LON": -Infinity}'), "parse", "invalid_number"),
    ("float overflow", _raw('{"Id": "1", "FIRST": "A", "LAT": 1e400}'), "parse", "invalid_number"),
    ("lone high surrogate", _raw('{"Id": "1", "FIRST": "A\\ud800nn"}'), "parse", "lone_surrogate"),
    ("lone low surrogate", _raw('{"Id": "1", "LAST": "\\uDC00"}'), "parse", "lone_surrogate"),
    ("lone surrogate in a key", _raw('{"Id": "1", "FIRST": "A", "\\ud800": 1}'), "parse", "lone_surrogate"),
    ("lone surrogate deep down", _with('"x": [{"y": ["\\udbff"]}]'), "parse", "lone_surrogate"),
    ("tombstone or empty value", b"", "parse", "empty_message"),
    ("whitespace only", b" \n\t ", "parse", "empty_message"),
    ("invalid UTF-8", b'{"Id": "1", "FIRST": "\xc3\x28"}', "parse", "invalid_utf8"),
    ("UTF-8-encoded surrogate", b'{"Id": "1", "FIRST": "\xed\xa0\x80"}', "parse", "invalid_utf8"),
    ("deep nesting beyond the decoder", b"[" * 100_000, "parse", "too_deep"),
    ("deep nesting the decoder takes", _with('"x": ' + "[" * 200 + "]" * 200), "parse", "too_deep"),
    ("duplicate keys", _raw('{"Id": "1", "FIRST": "A", "Id": "2"}'), "parse", "duplicate_key"),
    ("oversized", _json(ADDRESS="x" * 1_000_001), "parse", "too_large"),
    ("NUL in a name", _json(FIRST="A\u0000nn"), "validate", "invalid_characters"),
    ("bell in a name", _json(LAST="L\u0007ee"), "validate", "invalid_characters"),
    ("escape in an identifier", _json(SSN="999\u001b[2J"), "validate", "invalid_characters"),
    ("raw control character", b'{"Id": "1", "FIRST": "A\x01"}', "parse", "invalid_json"),
    ("not JSON", b"{not json", "parse", "invalid_json"),
    ("JSON array", b"[1, 2]", "parse", "not_an_object"),
    ("JSON string", b'"Ann Lee"', "parse", "not_an_object"),
    ("BOM and not JSON", b"\xef\xbb\xbf{oops", "parse", "invalid_json"),
    ("time out of range", _json(DEATHDATE="2020-05-05T25:61:00Z"), "validate", "invalid_date"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "stage", "code"), [p[1:] for p in POISON], ids=[p[0] for p in POISON])
def test_each_kind_of_poison_is_an_error_with_its_code(raw, stage, code):
    result = transform(raw, topic="patients", config=TransformConfig(structural_validation=False))
    assert isinstance(result, Error), result
    assert (result.stage, result.code) == (stage, code)
    json.dumps(result.to_json())  # and the outcome can be written


@pytest.mark.parametrize(
    "raw",
    [
        b"\xef\xbb\xbf" + _json(),  # a byte order mark before an otherwise valid record
        _json(FIRST="Ann \ud83d\ude00"),  # a surrogate pair (written as \ud83d\ude00 by json.dumps) is one emoji
        _json(FIRST="Ann\tMarie", LAT=42.1, LON=-71.5, ZIP=2115),
    ],
    ids=["BOM", "surrogate pair", "tab, floats and integers"],
)
def test_odd_but_valid_messages_are_mapped(raw):
    result = transform(raw, config=TransformConfig(structural_validation=False))
    assert isinstance(result, Ok), result
    assert "\ufeff" not in json.dumps(result.to_json(), ensure_ascii=False)


def _replay_headers(**overrides: str) -> tuple[tuple[str, bytes], ...]:
    values = {
        HEADER_ATTEMPT: "2",
        HEADER_TOPIC: "patients",
        HEADER_PARTITION: "1",
        HEADER_OFFSET: "42",
        HEADER_TIMESTAMP: str(T0_MS),
        HEADER_FIRST_FAILURE: "2026-11-18T10:00:00.000Z",
    } | overrides
    return tuple((k, v.encode()) for k, v in values.items())


BAD_HEADERS = {
    "non-numeric attempt": {HEADER_ATTEMPT: "two"},
    "attempt zero": {HEADER_ATTEMPT: "0"},
    "attempt with underscores": {HEADER_ATTEMPT: "1_000"},
    "non-numeric partition": {HEADER_PARTITION: "p1"},
    "negative partition": {HEADER_PARTITION: "-1"},
    "partition beyond int32": {HEADER_PARTITION: str(2**31)},
    "non-numeric offset": {HEADER_OFFSET: "4.2"},
    "offset beyond int64": {HEADER_OFFSET: str(2**63)},
    "topic with a newline": {HEADER_TOPIC: "patients\nerrors"},
    "topic with a slash": {HEADER_TOPIC: "../../archive"},
    "topic over 1 KB": {HEADER_TOPIC: "t" * 1025},
    "empty topic": {HEADER_TOPIC: ""},
}


@pytest.mark.parametrize("bad", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_replay_headers_out_of_range_fall_back_to_the_message_itself(bad):
    message = RawMessage("retry", 0, 7, T0_MS, b"k", b"{}", _replay_headers(**bad))
    fields = message.error_fields()
    assert fields == {"source": message.coordinates, "attempt": 1}
    record = make_error_record(stage="parse", code="invalid_json", retryable=False, detail="d", raw=b"{}", **fields)
    assert error_partition(record) == "stage=parse/topic=retry/date=2026-11-18"
    json.loads(record.to_json())


BAD_TIMESTAMPS = {
    "in the year 10000": str(YEAR_10000_MS),
    "beyond int64": "9" * 30,
    "far before year 1": "-9000000000000000000",
    "not a number": "yesterday",
}


@pytest.mark.parametrize("bad", BAD_TIMESTAMPS.values(), ids=BAD_TIMESTAMPS.keys())
def test_a_replay_timestamp_out_of_range_is_dropped_and_the_attempt_still_counts(bad):
    # Dropping the whole origin would restart the count at 1 on every replay: a message that keeps
    # failing would never reach the replay DAG's cap.
    message = RawMessage("retry", 0, 7, T0_MS, b"k", b"{}", _replay_headers(**{HEADER_TIMESTAMP: bad}))
    fields = message.error_fields()
    assert fields["attempt"] == 2 and fields["source"].timestamp_ms is None
    assert (fields["source"].topic, fields["source"].partition, fields["source"].offset) == ("patients", 1, 42)
    record = make_error_record(stage="parse", code="invalid_json", retryable=False, detail="d", raw=b"{}", **fields)
    assert error_partition(record) == "stage=parse/topic=patients/date=2026-11-18"  # the first failure's day


def test_valid_replay_headers_still_continue_the_first_record():
    message = RawMessage("retry", 0, 7, T0_MS, b"k", b"{}", _replay_headers())
    fields = message.error_fields()
    assert fields["attempt"] == 2 and fields["first_failure_time"] == "2026-11-18T10:00:00.000Z"
    assert (fields["source"].topic, fields["source"].partition, fields["source"].offset) == ("patients", 1, 42)


def test_a_malformed_first_failure_time_is_ignored_not_used_as_a_path():
    message = RawMessage("retry", 0, 7, T0_MS, b"k", b"{}", _replay_headers(**{HEADER_FIRST_FAILURE: "../x/y"}))
    fields = message.error_fields()
    assert fields["source"].topic == "patients" and fields["first_failure_time"] is None


@pytest.mark.parametrize("timestamp", [YEAR_10000_MS, 2**63 - 1, -(2**63), -62_135_596_800_001])
def test_kafka_timestamps_no_calendar_can_name_still_archive_and_dead_letter(timestamp):
    message = RawMessage("patients", 0, 1, timestamp, None, b"{oops")
    assert archive_entry(message)[0] == "topic=patients/date=unknown"
    assert json.loads(message.archive_line())["timestamp_ms"] == timestamp
    fields = message.error_fields()
    record = make_error_record(stage="parse", code="invalid_json", retryable=False, detail="d", raw=b"x", **fields)
    partition = error_partition(record)
    assert partition.startswith("stage=parse/topic=patients/date=") and "unknown" not in partition  # failure day


@pytest.mark.parametrize(("timestamp", "date"), [(-1, "1969-12-31"), (0, "1970-01-01"), (T0_MS, "2026-11-18")])
def test_kafka_timestamps_in_range_name_their_day(timestamp, date):
    assert utc_date(timestamp) == date
    assert RawMessage("t", 0, 0, timestamp, None, b"").archive_partition() == f"topic=t/date={date}"


def test_a_line_with_a_lone_surrogate_is_still_valid_utf8_json():
    line = json_line({"topic": "t\ud800", "payload": "caf\u00e9"})
    assert json.loads(line.encode("utf-8")) == {"topic": "t\ud800", "payload": "caf\u00e9"}
    assert json_line({"payload": "caf\u00e9"}) == '{"payload":"caf\u00e9"}'  # UTF-8 as before otherwise


def test_an_archive_line_that_cannot_be_built_falls_back_to_coordinates_and_base64():
    message = RawMessage("patients", 0, 3, "not a number", None, b"\x00\xff")  # type: ignore[arg-type]
    partition, line = archive_entry(message)
    assert partition == "topic=patients/date=unknown"
    assert json.loads(line) == {"topic": "patients", "partition": 0, "offset": 3, "payload_base64": "AP8="}


SETTINGS = TransformConfig(structural_validation=False)


def test_an_unexpected_exception_in_parse_becomes_an_internal_error_record():
    # A configuration the parser cannot use stands in for any bug: the message still gets its record.
    broken = TransformConfig(max_message_bytes=None)  # type: ignore[arg-type]
    [out] = list(_ParseFn(broken, "job").process(RawMessage("t", 0, 1, T0_MS, None, _json())))
    assert out.tag == INVALID
    assert (out.value.stage, out.value.code, out.value.detail) == (
        "parse",
        "internal_error",
        "TypeError in ParseAndValidate",
    )


def test_an_unexpected_exception_in_map_becomes_an_internal_error_record(monkeypatch):
    def explode(*_args, **_kwargs):
        raise ValueError("Zyx-Patient-Name")  # an exception text that quotes a value

    monkeypatch.setattr(stages, "check_resource", explode)
    [parsed] = list(_ParseFn(SETTINGS, "job").process(RawMessage("t", 0, 1, T0_MS, None, _json())))
    [out] = list(_MapFn(SETTINGS, "job").process(parsed))
    assert out.tag == FAILED
    assert (out.value.stage, out.value.code, out.value.detail) == ("map", "internal_error", "ValueError in MapToFhir")


def test_poison_mixed_with_valid_messages_each_gets_exactly_one_outcome():
    # The DoFns as the runner calls them; the whole graph on the local runner is
    # tests/integration/test_hostile_input_graph.py.
    valid = [RawMessage("t", 0, i, T0_MS, None, _json(Id=f"ok-{i}")) for i in range(5)]
    poison = [RawMessage("t", 1, i, T0_MS, None, raw) for i, (_, raw, _, _) in enumerate(POISON)]
    timestamps = [RawMessage("t", 2, i, ts, None, _json(Id=f"ts-{i}")) for i, ts in enumerate((YEAR_10000_MS, -1))]
    headers = [
        RawMessage("t", 3, i, T0_MS, None, b"{oops", _replay_headers(**bad))
        for i, bad in enumerate(BAD_HEADERS.values())
    ]
    parse, map_ = _ParseFn(SETTINGS, "job"), _MapFn(SETTINGS, "job")
    outcomes: dict[tuple[int, int], list[str]] = {}
    for message in valid + poison + timestamps + headers:
        for out in parse.process(message):
            if getattr(out, "tag", None) is None:
                out = next(iter(map_.process(out)))
            tag = getattr(out, "tag", None) or MAPPED
            outcomes.setdefault((message.partition, message.offset), []).append(tag)
    assert len(outcomes) == len(valid + poison + timestamps + headers)
    assert all(len(tags) == 1 for tags in outcomes.values())
    mapped = sorted(key for key, tags in outcomes.items() if tags == [MAPPED])
    assert mapped == [(0, i) for i in range(5)] + [(2, 0), (2, 1)]
    assert FILTERED not in {tag for tags in outcomes.values() for tag in tags}


_member_values = st.one_of(
    st.text(alphabet='ab"\\/\u00e9 :,{}', max_size=6),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from(["x", "y"]), st.integers(0, 3), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["Id", "FIRST", 'a"b', "c\\d", "é"]), _member_values), max_size=6),
    st.sampled_from(["", " ", "\n", "\t "]),
    st.booleans(),
)
def test_a_repeated_key_is_found_however_the_object_is_written(members, space, escape_all):
    # The fast path counts quotes; escapes, whitespace, nesting and quotes inside values must not fool it.
    dump = lambda v: json.dumps(v, ensure_ascii=escape_all)  # noqa: E731
    text = "{" + f",{space}".join(f"{dump(k)}{space}:{space}{dump(v)}" for k, v in members) + "}"
    result = parse_json_object(text.encode("utf-8"), 10_000)
    repeated = len({k for k, _ in members}) != len(members)
    assert (isinstance(result, Error) and result.code == "duplicate_key") == repeated, (text, result)
    if not repeated:
        assert result == dict(members)


# A JSON tree written by hand, so any object at any depth may name a key twice: objects are lists of pairs.
_pairs_tree = st.recursive(
    st.text(alphabet='ab"\\ ', max_size=3) | st.integers(-3, 3) | st.none(),
    lambda inner: (
        st.lists(inner, max_size=3).map(lambda items: ("list", items))
        | st.lists(st.tuples(st.sampled_from(["x", "y", 'q"', "z\\"]), inner), max_size=3).map(lambda p: ("obj", p))
    ),
    max_leaves=10,
)


def _written(node: Any) -> tuple[str, bool]:  # noqa: ANN401
    """The JSON text of a pairs tree, and whether some object in it names a key twice."""
    if isinstance(node, tuple) and node[0] == "list":
        parts = [_written(item) for item in node[1]]
        return "[" + ",".join(t for t, _ in parts) + "]", any(r for _, r in parts)
    if isinstance(node, tuple):
        parts = [(json.dumps(k), _written(v)) for k, v in node[1]]
        repeated = len({k for k, _ in node[1]}) != len(node[1]) or any(r for _, (_, r) in parts)
        return "{" + ",".join(f"{k}:{t}" for k, (t, _) in parts) + "}", repeated
    return json.dumps(node), False


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Id", "patient", "visit"]), _pairs_tree), max_size=4))
def test_a_repeated_key_is_found_at_any_depth(members):
    text, repeated = _written(("obj", members))
    result = parse_json_object(text.encode("utf-8"), 10_000)
    assert (isinstance(result, Error) and result.code == "duplicate_key") == repeated, (text, result)


# Hostile pieces of nested text: repeated keys, numbers out of range, NaN, lone surrogates, broken syntax.
_HOSTILE_LEAVES = st.sampled_from(
    ['"a"', '"\\ud800"', '"\\u00e9"', "1", "-0", "1e400", "-1e400", "1.5E3", "1" * 101, "-" + "9" * 100, "9" * 100,
     "NaN", "Infinity", "null", "true", '"x\\ny"', "01", "1.", '"unterminated'],
) | st.sampled_from(['"a"', "1", "2.5", "null", '"b"'])  # fmt: skip
_hostile_tree = st.recursive(
    _HOSTILE_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]")
        | st.lists(st.tuples(st.sampled_from(['"x"', '"y"', '"z"', '"w"', '"x"']), inner), max_size=3).map(
            lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"
        )
    ),
    max_leaves=12,
)


@settings(max_examples=800, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(['"a"', '"b"', '"c"', '"d"', '"a"']), _hostile_tree), max_size=4),
    st.integers(0, 40),
)
@example([('"a"', "[" + "1" * 101 + "]")], 0)
@example([('"a"', "[-" + "1" * 100 + "]")], 0)
@example([('"a"', '{"x":1e400}')], 0)
@example([('"a"', "[1.5E3]"), ('"b"', '{"x":1,"x":NaN}')], 0)
@example([('"a"', "[1]")], 31)
@example([('"a"', "[1]")], 30)
def test_a_nested_message_parses_as_the_usual_walk_decides(members, depth):
    # Nested messages are parsed with their keys counted and numbers checked as they are read; whatever the
    # text, the answer (the object, or the first error in the usual order) is the usual parse's.
    body = "{" + ",".join(f"{k}:{v}" for k, v in members) + "}"
    text = '{"deep":' + "[" * depth + "1" + "]" * depth + "," + body[1:] if depth else body
    result, usual = parse_json_object(text.encode("utf-8"), 100_000), parsing._parse_text(text)
    assert (result, repr(result)) == (usual, repr(usual)), text  # repr: 1 and 1.0 are equal, not the same
