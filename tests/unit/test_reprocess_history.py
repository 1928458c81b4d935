"""The reprocess test's and benchmark's own logic: history in the archive's layout, the changed mapping set,
and the checks of what a pass left in the store (dev/history_archive.py, dev/reprocess_checks.py)."""

from __future__ import annotations

from datetime import date

from beam_pipeline.contracts.bucket_layout import archive_range_prefixes
from beam_pipeline.contracts.reprocess_source import parse_time
from beam_pipeline.fhir_store.bundles import SOURCE_TIME_SYSTEM
from beam_pipeline.mapping.feed import MAPPING_TAG_SYSTEM
from beam_pipeline.mapping.mapping_set import SHIPPED_FOLDER
from beam_pipeline.raw_message import RawMessage
from dev.history_archive import (
    CHANGED_MAPPING,
    archive_objects,
    archived,
    changed_mapping_set,
    corrupt_line,
    day_start_ms,
    mapping_tag,
    with_line,
)
from dev.reprocess_checks import CREATED, UNCHANGED, UPDATED, Stored, by_value, store_problems, stored, summary_problems

SYSTEM = "urn:k2f-unit:history"
DAY = date(2026, 12, 1)


def test_history_is_in_the_archive_layout_a_range_of_its_day_selects():
    rows = [f'{{"Id": "r{i}"}}'.encode() for i in range(25)]
    messages = archived("patients", rows, day_start_ms(DAY), spacing_ms=1000)
    objects = archive_objects(messages, per_object=10, name="h")
    [prefix] = archive_range_prefixes(
        ["patients"], parse_time("2026-12-01", "--from"), parse_time("2026-12-02", "--to")
    )
    assert sorted(objects) == [f"{prefix}h-{n}.ndjson" for n in range(3)]
    lines = [line for name in sorted(objects) for line in objects[name].splitlines()]
    back = [RawMessage.from_archive_line(line) for line in lines]
    assert back == messages  # every message once, exactly as archived
    assert len({(m.partition, m.offset) for m in back}) == 25 and {m.partition for m in back} == {0, 1}


def test_a_message_of_the_next_day_goes_under_that_day():
    late = archived("patients", [b"{}"], day_start_ms(date(2026, 12, 2)), spacing_ms=1)
    [name] = archive_objects(late, per_object=10, name="h")
    assert "/topic=patients/date=2026-12-02/" in name


def test_a_corrupt_line_is_inserted_where_asked_and_reads_as_corrupt():
    import pytest

    from beam_pipeline.contracts.archive_line import CorruptArchiveLine

    body = with_line("a\nb\nc\n", 1, corrupt_line("patients"))
    assert body.splitlines() == ["a", corrupt_line("patients"), "b", "c"] and body.endswith("\n")
    with pytest.raises(CorruptArchiveLine, match="field offset"):
        RawMessage.from_archive_line(corrupt_line("patients"))


def test_the_changed_set_differs_in_one_file_and_writes_a_new_version(tmp_path):
    folder = changed_mapping_set(tmp_path / "changed")
    shipped, changed = mapping_tag(), mapping_tag(folder)
    assert shipped != changed and shipped.split("@")[0] == changed.split("@")[0]
    changed_files = [
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.read_bytes() != (SHIPPED_FOLDER / p.relative_to(folder)).read_bytes()
    ]
    assert changed_files == [CHANGED_MAPPING]


def _resource(value: str, version: str, tag: str, source_time: int = 5) -> dict:
    return {
        "resourceType": "Patient",
        "id": f"id-{value}",
        "identifier": [{"system": "urn:other", "value": "x"}, {"system": SYSTEM, "value": value}],
        "meta": {
            "versionId": version,
            "tag": [
                {"system": MAPPING_TAG_SYSTEM, "code": tag},
                {"system": SOURCE_TIME_SYSTEM, "code": str(source_time)},
            ],
        },
    }


def _found(*resources: dict) -> list[Stored]:
    return stored(resources, SYSTEM)


def test_the_store_view_reads_the_identifier_version_tag_and_source_time():
    [one] = _found(_resource("a", "3", "m@v1", source_time=42))
    assert one == Stored("a", "id-a", "3", "m@v1", 42)


def test_a_created_pass_wants_every_resource_once_at_version_1_with_the_tag():
    good = _found(_resource("a", "1", "m@v1"), _resource("b", "1", "m@v1"))
    assert store_problems(good, {"a", "b"}, did=CREATED, tag="m@v1") == []
    bad = _found(_resource("a", "1", "m@v1"), _resource("a", "1", "m@v1"), _resource("c", "2", "m@v0"))
    problems = store_problems(bad, {"a", "b"}, did=CREATED, tag="m@v1")
    assert problems == [
        "1 lost (not in the store): b",
        "1 duplicated (more than one resource): a",
        "1 not in the history: c",
    ]


def test_an_updated_pass_wants_one_new_version_each_and_the_new_tag():
    before = by_value(_found(_resource("a", "1", "m@v1"), _resource("b", "1", "m@v1")))
    after = _found(_resource("a", "2", "m@v2"), _resource("b", "3", "m@v1"))
    assert store_problems(after, {"a", "b"}, did=UPDATED, tag="m@v2", before=before) == [
        "1 without the mapping tag m@v2: b",
        "1 not updated once (version): b",
    ]


def test_an_unchanged_pass_wants_the_same_versions_and_resources_a_later_message_wrote_left_alone():
    newer = by_value(_found(_resource("n", "1", "m@v1", source_time=99)))
    before = by_value(_found(_resource("a", "2", "m@v2"))) | newer
    same = _found(_resource("a", "2", "m@v2"), _resource("n", "1", "m@v1", source_time=99))
    assert store_problems(same, {"a", "n"}, did=UNCHANGED, tag="m@v2", before=before, left_alone=newer) == []
    overwritten = _found(_resource("a", "3", "m@v2"), _resource("n", "2", "m@v2", source_time=5))
    assert store_problems(overwritten, {"a", "n"}, did=UNCHANGED, tag="m@v2", before=before, left_alone=newer) == [
        "1 written although a later message wrote them (not left alone): n",
        "1 not unchanged once (version): a",
    ]


def test_summary_problems_name_each_figure_that_differs():
    exact = {"from": "summary object", "accounted": True}
    got = {"written": 4, "unchanged": 0, "failed": {"reprocess.corrupt_archive_line": 1}, **exact}
    assert summary_problems(got, {"written": 4, "failed": {"reprocess.corrupt_archive_line": 1}}) == []
    assert summary_problems(got, {"written": 5, "unchanged": 0}) == ["written: 4, expected 5"]
    # A summary of the job's counters is not exact, even when its figures are right.
    counted = {**got, "from": "counters"}
    assert summary_problems(counted, {"written": 4}) == ["from: 'counters', expected 'summary object'"]
