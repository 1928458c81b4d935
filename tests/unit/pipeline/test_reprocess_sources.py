"""A reprocess's sources without a pipeline: which archive objects a range reads, how an archive line is read
back (corrupt ones included), the source flags, and the error records of what cannot be read."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime

import pytest

from beam_pipeline.contracts.archive_line import CorruptArchiveLine, fallback_archive_entry, read_archive_line
from beam_pipeline.contracts.bucket_layout import archive_range_prefixes
from beam_pipeline.contracts.outcome import CORRUPT_ARCHIVE_LINE, REPROCESS, UNREADABLE_OBJECT
from beam_pipeline.contracts.reprocess_source import ReprocessSource, parse_time
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.reprocess import help_parser, main, source_from_flags
from beam_pipeline.transforms.read_history import (
    LineReading,
    _LazyClient,
    _ReadLinesFn,
    file_partition,
    lines_of,
    source_error,
)

PHI = "Zyxwvut-Secret-Name"


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_a_range_lists_only_the_days_it_overlaps_for_each_topic():
    prefixes = archive_range_prefixes(["a", "b"], _ms("2026-12-01T23:00:00"), _ms("2026-12-03T00:00:00"))
    assert prefixes == [
        "archive/topic=a/date=2026-12-01/",
        "archive/topic=a/date=2026-12-02/",
        "archive/topic=b/date=2026-12-01/",
        "archive/topic=b/date=2026-12-02/",
    ]


def test_the_end_of_a_range_is_exclusive_and_an_empty_range_lists_nothing():
    assert archive_range_prefixes(["a"], _ms("2026-12-01T00:00:00"), _ms("2026-12-01T00:00:00.001")) == [
        "archive/topic=a/date=2026-12-01/"
    ]
    assert archive_range_prefixes(["a"], _ms("2026-12-02T00:00:00"), _ms("2026-12-02T00:00:00")) == []
    assert archive_range_prefixes(["a"], _ms("2026-12-02T00:00:00"), _ms("2026-12-01T00:00:00")) == []


@pytest.mark.parametrize(
    "message",
    [
        RawMessage("patients", 0, 7, 1_795_000_000_000, b"k", b'{"Id": "1"}'),
        RawMessage("patients", 3, 2**40, -5, b"\xff\xfe", b"\xff not utf-8"),
        RawMessage("p.b-c_d", 1, 0, 0, None, b""),
    ],
)
def test_an_archive_line_reads_back_as_the_message_it_archived(message):
    assert RawMessage.from_archive_line(message.archive_line()) == message
    assert RawMessage.from_archive_line(message.archive_line().encode()) == message


def _line(**overrides: object) -> str:
    data = {"topic": "patients", "partition": 0, "offset": 1, "timestamp_ms": 5, "payload": PHI}
    data.update(overrides)
    return json.dumps({k: v for k, v in data.items() if v is not None})


CORRUPT = [
    (b"\xff" + PHI.encode(), "not UTF-8"),
    (PHI, "not JSON"),
    ('{"topic": "patients", ' + PHI, "not JSON"),
    (json.dumps([PHI]), "not a JSON object"),
    (_line(topic=None), "field topic"),
    (_line(topic="a/b"), "field topic"),
    (_line(partition=True), "field partition"),
    (_line(partition="0"), "field partition"),
    (_line(offset=-1), "field offset"),
    (_line(timestamp_ms=None), "field timestamp_ms"),
    (_line(payload=None), "payload and payload_base64 are both missing"),
    (_line(payload=7), "field payload"),
    (_line(payload=None, payload_base64=PHI + "!"), "field payload_base64 is not base64"),
    (_line(key_base64=["x"]), "field key_base64"),
    ('{"topic": "patients", "partition": 0, "offset": 1, "timestamp_ms": 5, "payload": "\\ud800"}', "lone surrogate"),
    ('{"offset": ' + "9" * 5000 + "}", "not JSON"),
]


@pytest.mark.parametrize(("line", "rule"), CORRUPT)
def test_a_corrupt_line_names_its_rule_and_never_its_content(line, rule):
    with pytest.raises(CorruptArchiveLine) as caught:
        read_archive_line(line)
    assert rule in str(caught.value)
    assert PHI not in str(caught.value) and "Zyxw" not in str(caught.value)


def test_a_fallback_line_has_no_timestamp_so_a_range_cannot_select_it():
    _, line = fallback_archive_entry(RawMessage("patients", 0, 1, 2, None, b"x"))
    with pytest.raises(CorruptArchiveLine, match="timestamp_ms"):
        read_archive_line(line)


def test_payload_base64_wins_and_keeps_the_exact_bytes():
    raw = b"\x00\xff{}"
    line = _line(payload=None, payload_base64=base64.b64encode(raw).decode())
    assert read_archive_line(line)["value"] == raw


def _flags(*argv: str):
    flags, _ = help_parser().parse_known_args(list(argv))
    return flags


def test_the_source_is_the_archive_of_topics_over_a_range_or_files():
    archive = source_from_flags(_flags("--from", "2026-12-01", "--to", "2026-12-02T06:00:00Z"), "a, b")
    assert archive == ReprocessSource(("a", "b"), _ms("2026-12-01T00:00:00"), _ms("2026-12-02T06:00:00"))
    files = source_from_flags(_flags("--input_pattern", "/tmp/x/*.ndjson"), "patients")
    assert files == ReprocessSource(("patients",), input_pattern="/tmp/x/*.ndjson")


@pytest.mark.parametrize(
    ("argv", "topics", "message"),
    [
        ((), None, "name what to reprocess"),
        (("--from", "2026-12-01"), "a", "name what to reprocess"),
        (("--from", "2026-12-02", "--to", "2026-12-01"), "a", "--to must be after --from"),
        (("--from", "yesterday", "--to", "2026-12-01"), "a", "--from takes an ISO 8601"),
        (("--input_pattern", "x", "--from", "2026-12-01"), None, "leave out --from"),
        (("--input_pattern", "x"), "a,b", "at most one topic"),
    ],
)
def test_a_source_the_flags_do_not_name_is_refused_with_the_flag(argv, topics, message):
    with pytest.raises(ValueError, match=message):
        source_from_flags(_flags(*argv), topics)


def test_a_time_without_a_zone_is_utc():
    assert parse_time("2026-12-01T06:00:00", "--from") == parse_time("2026-12-01T06:00:00Z", "--from")
    assert parse_time("2026-12-01T07:00:00+01:00", "--from") == _ms("2026-12-01T06:00:00")


def test_help_lists_every_flag_and_bad_flags_stop_before_a_job(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--from", "--to", "--input_pattern", "--dry_run", "--topics", "--fhir_base_url", "--mappings"):
        assert flag in text
    assert "--kafka_secret_resource_name" not in text  # a reprocess reads no Kafka
    assert main(["--topics", "a", "--from", "2026-12-01", "--to", "2026-12-02", "--dry_run", "--streaming"]) == 2
    assert "batch job" in capsys.readouterr().err
    assert main(["--topics", "a", "--from", "2026-12-01", "--to", "2026-12-02"]) == 2
    assert "--gcs_error_bucket" in capsys.readouterr().err


def test_records_of_two_unreadable_lines_have_their_own_ids_and_no_content():
    one = source_error("t", "gs://b/archive/x.ndjson", 1, CORRUPT_ARCHIVE_LINE, "line 1: not JSON", b"A", "job")
    two = source_error("t", "gs://b/archive/x.ndjson", 2, CORRUPT_ARCHIVE_LINE, "line 2: not JSON", b"B", "job")
    assert one.record_id != two.record_id
    assert (one.stage, one.code, one.retryable, one.job_name) == (REPROCESS, CORRUPT_ARCHIVE_LINE, False, "job")
    assert one.raw_payload() == b"A"  # kept where patient data may be, never in the detail


def test_an_object_that_cannot_be_read_is_one_error_record(tmp_path):
    read = _ReadLinesFn(LineReading(RawMessage.from_archive_line, lambda _p: "patients", lambda _m: True, "job", 0.0))
    read.setup()
    missing = str(tmp_path / "archive" / "topic=patients" / "date=2026-12-01" / "gone.ndjson")
    [out] = list(read.process(missing))
    record = out.value.value
    assert (record.stage, record.code, record.source.topic) == (REPROCESS, UNREADABLE_OBJECT, "patients")
    assert "could not be read after 0 lines (FileNotFoundError)" in record.detail


def test_a_raw_files_partition_is_stable_and_in_kafka_range():
    assert file_partition("gs://b/x.ndjson") == file_partition("gs://b/x.ndjson")
    assert file_partition("gs://b/x.ndjson") != file_partition("gs://b/y.ndjson")
    assert 0 <= file_partition("/tmp/z") < 2**31


def _range(topics: tuple[str, ...], start: str, end: str) -> ReprocessSource:
    return ReprocessSource(topics, _ms(start), _ms(end))


def test_two_sources_overlap_when_they_share_a_topic_and_time_or_the_same_files():
    day1 = _range(("a", "b"), "2026-12-01T00:00:00", "2026-12-02T00:00:00")
    assert day1.overlaps(_range(("b",), "2026-12-01T23:00:00", "2026-12-03T00:00:00"))
    assert not day1.overlaps(_range(("b",), "2026-12-02T00:00:00", "2026-12-03T00:00:00"))  # [from, to)
    assert not day1.overlaps(_range(("c",), "2026-12-01T00:00:00", "2026-12-02T00:00:00"))
    files = ReprocessSource(input_pattern="gs://h/*.ndjson")
    assert files.overlaps(ReprocessSource(("x",), input_pattern="gs://h/*.ndjson"))
    assert not files.overlaps(day1) and not day1.overlaps(files)
    assert ReprocessSource.from_json(day1.to_json()) == day1


class _Blob:
    def __init__(self, name: str) -> None:
        self.name = name


class _ListingClient:
    def __init__(self) -> None:
        self.listed: list[tuple[str, str]] = []

    def list_blobs(self, bucket: str, prefix: str) -> list[_Blob]:
        self.listed.append((bucket, prefix))
        names = ["archive/topic=a/date=2026-12-01/w1.ndjson", "archive/topic=a/date=2026-12-01/w2.json"]
        return [_Blob(n) for n in names if n.startswith(prefix)]


def test_a_gs_glob_lists_its_literal_prefix_with_the_storage_client():
    client = _ListingClient()
    reading = LineReading(RawMessage.from_archive_line, lambda _p: "a", lambda _m: True, "job", 0.0, lambda: client)
    lazy = _LazyClient(reading.storage_client)
    got = reading.match("gs://arch/archive/topic=a/date=2026-12-01/*.ndjson", lazy)
    assert got == ["gs://arch/archive/topic=a/date=2026-12-01/w1.ndjson"]
    assert client.listed == [("arch", "archive/topic=a/date=2026-12-01/")]


def test_a_line_whose_reading_fails_unexpectedly_costs_only_that_line(tmp_path):
    def decode(_path: str, line_number: int, line: bytes) -> RawMessage:
        if line_number == 1:
            raise RecursionError("a decoder bug")
        return RawMessage.from_archive_line(line)

    good = RawMessage("patients", 0, 5, 1_700_000_000_000, None, b"{}", ())
    path = tmp_path / "archive" / "topic=patients" / "date=2023-11-14" / "x.ndjson"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"first\n" + good.archive_line().encode() + b"\n")
    read = _ReadLinesFn(LineReading(decode, lambda _p: "patients", lambda _m: True, "job", 0.0))
    read.setup()
    bad, kept, *tally = list(read.process(str(path)))
    assert [t.value for t in tally] == [("reprocess/lines_read", 2), ("reprocess/objects_read", 1)]
    assert (bad.value.value.code, "(RecursionError)" in bad.value.value.detail) == (CORRUPT_ARCHIVE_LINE, True)
    assert kept.value == good


class _CountingReads(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads = 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        return super().read(size)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 20])
def test_an_object_reads_as_its_lines_whatever_the_chunk_boundaries(chunk):
    data = b'{"a": 1}\r\n\n{"b": "long line past any small chunk"}\n\r\nlast without newline'
    expected = [b'{"a": 1}', b"", b'{"b": "long line past any small chunk"}', b"", b"last without newline"]
    assert list(lines_of(io.BytesIO(data), chunk)) == expected  # empty lines kept: line numbers stay true
    assert list(lines_of(io.BytesIO(data + b"\n"), chunk)) == expected
    assert list(lines_of(io.BytesIO(b""), chunk)) == []


def test_an_object_is_read_in_chunks_not_a_line_or_a_byte_at_a_time():
    data = b"".join(b'{"n": %d}\n' % i for i in range(10_000))
    handle = _CountingReads(data)
    assert len(list(lines_of(handle, 64 * 1024))) == 10_000
    assert handle.reads == -(-len(data) // (64 * 1024)) + 1  # whole chunks, and the empty read that ends it
