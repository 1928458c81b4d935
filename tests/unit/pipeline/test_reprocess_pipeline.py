"""The reprocess graph on Beam's in-process runner, over an archive and raw files in a local folder: what it
reads, what it writes (the FHIR store: the write step's FakeStore; the error bucket: in memory), what a dry
run counts, and the summary made of the job's counters."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from beam_pipeline.contracts.error_record import from_json
from beam_pipeline.contracts.outcome import CORRUPT_ARCHIVE_LINE, REPROCESS
from beam_pipeline.contracts.reprocess_source import ReprocessSource
from beam_pipeline.contracts.reprocess_summary import counter_totals, counts_of, summary
from beam_pipeline.dataflow_kafka_to_fhirstore import JobSettings
from beam_pipeline.fhir_store import FhirStoreConfig
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.reprocess import build_reprocess, job_counters
from beam_pipeline.transforms.read_history import file_partition
from beam_pipeline.us_core import TransformConfig

SYSTEM = "urn:k2f-reprocess-unit:id"
PHI = "Qwertyuiop"
# Objects written through the in-memory storage client, by bucket then name.
OBJECTS: dict[str, dict[str, bytes]] = defaultdict(dict)


class _Blob:
    def __init__(self, bucket: str, name: str) -> None:
        self._bucket, self._name = bucket, name

    def upload_from_string(self, body: bytes, **_kwargs: object) -> None:
        OBJECTS[self._bucket][self._name] = body

    def download_as_bytes(self) -> bytes:
        from google.api_core.exceptions import NotFound

        if self._name not in OBJECTS[self._bucket]:
            raise NotFound(self._name)
        return OBJECTS[self._bucket][self._name]


class _Bucket:
    def __init__(self, name: str) -> None:
        self._name = name

    def blob(self, name: str) -> _Blob:
        return _Blob(self._name, name)


class _Client:
    def bucket(self, name: str) -> _Bucket:
        return _Bucket(name)


def memory_storage() -> _Client:
    return _Client()


@pytest.fixture(autouse=True)
def _empty_buckets():
    OBJECTS.clear()


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def _patient(i: int, country: str = "US") -> bytes:
    return json.dumps({"Id": f"p-{i}", "FIRST": "Ann", "LAST": f"Lee{i}", "COUNTRY": country}).encode()


def _archive(root: Path, topic: str, day: str, name: str, lines: list[str]) -> None:
    folder = root / "archive" / f"topic={topic}" / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(line + "\n" for line in lines))


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """Two days of topic `patients` and one of `other`: 4 Patients in range (one archived twice), one a day
    before the range, one after it on the last day, one invalid, one filtered, one corrupt line."""
    day1, day2 = _ms("2026-12-01T10:00:00"), _ms("2026-12-02T10:00:00")
    msg = [RawMessage("patients", 0, i, day1 + i, None, _patient(i)) for i in range(3)]
    late = RawMessage("patients", 1, 10, day2, b"key", _patient(3))
    after = RawMessage("patients", 1, 11, _ms("2026-12-02T13:00:00"), None, _patient(4))
    before = RawMessage("patients", 1, 12, _ms("2026-11-30T10:00:00"), None, _patient(5))
    invalid = RawMessage("patients", 0, 20, day1, None, json.dumps({"FIRST": PHI, "COUNTRY": "US"}).encode())
    filtered = RawMessage("patients", 0, 21, day1, None, _patient(6, country="CA"))
    other = RawMessage("other", 0, 1, day1, None, _patient(7))
    _archive(tmp_path, "patients", "2026-12-01", "w1.ndjson", [m.archive_line() for m in [*msg, invalid, filtered]])
    corrupt = '{"topic": "patients", "partition": 0, "offset": 30, "payload": "' + PHI
    _archive(tmp_path, "patients", "2026-12-01", "w2.ndjson", [msg[0].archive_line(), corrupt, ""])
    _archive(tmp_path, "patients", "2026-12-02", "w1.ndjson", [late.archive_line(), after.archive_line()])
    _archive(tmp_path, "patients", "2026-11-30", "w1.ndjson", [before.archive_line()])
    _archive(tmp_path, "other", "2026-12-01", "w1.ndjson", [other.archive_line()])
    return tmp_path


RANGE = ReprocessSource(("patients",), _ms("2026-12-01T00:00:00"), _ms("2026-12-02T12:00:00"))


def _settings(archive_root: str, bundle_size: int = 10) -> JobSettings:
    return JobSettings(
        job_name="reprocess-unit",
        archive_bucket=archive_root,
        error_bucket="errors",
        window_seconds=60,
        fhir=FhirStoreConfig(base_url="http://fhir.invalid/fhir", bundle_size=bundle_size),
        mapping=TransformConfig(source_id_system=SYSTEM, filter_country="US"),
        storage_client=memory_storage,
    )


def _run(source: ReprocessSource, root: str, *, dry_run: bool, check=None, bundle_size: int = 10) -> dict:  # noqa: ANN001
    p = beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"]))
    outputs = build_reprocess(p, source, _settings(root, bundle_size), dry_run=dry_run)
    if check is not None:
        check(outputs)
    result = p.run()
    result.wait_until_finish()
    counted = summary(job_counters(result), dry_run=dry_run)
    # The job's summary object says what its counters say (the direct runner keeps every counter).
    (body,) = [body for name, body in OBJECTS["errors"].items() if name.startswith("reprocess/job=reprocess-unit/")]
    assert summary(counts_of(body), dry_run=dry_run) == counted
    return counted


def _objects(prefix: str) -> dict[str, bytes]:
    return {name: body for name, body in OBJECTS["errors"].items() if name.startswith(prefix)}


def _error_records() -> list:
    return [from_json(line) for body in _objects("errors/").values() for line in body.decode().splitlines()]


def test_a_reprocess_writes_the_range_once_each_and_dead_letters_the_rest(archive, store):
    def check(outputs):  # noqa: ANN001, ANN202
        written = outputs["written"] | beam.Map(lambda m: (m.topic, m.partition, m.offset, m.timestamp_ms, m.key))
        assert_that(
            written,
            equal_to(
                [("patients", 0, i, _ms("2026-12-01T10:00:00") + i, None) for i in range(3)]
                + [("patients", 1, 10, _ms("2026-12-02T10:00:00"), b"key")]
            ),
        )

    got = _run(RANGE, str(archive), dry_run=False, check=check)
    assert got["objects_read"] == 3  # the range's two days of one topic; not 2026-11-30, not `other`
    assert got["messages"] == 6  # 4 Patients (one archived twice), the invalid and the filtered one
    assert (got["written"], got["unchanged"], got["superseded"]) == (4, 0, 0)
    assert got["resources"] == {"created": 4, "updated": 0, "unchanged": 0, "superseded": 0}
    assert got["filtered"] == 1 and got["outside_range"] == 1 and got["duplicate_lines"] == 1
    assert got["failed"] == {f"{REPROCESS}.{CORRUPT_ARCHIVE_LINE}": 1, "validate.missing_source_id": 1}
    assert got["failed_messages"] == 2
    assert sum(len(types) for types in store.bundles) == 4

    records = {r.code: r for r in _error_records()}
    corrupt = records[CORRUPT_ARCHIVE_LINE]
    assert (corrupt.stage, corrupt.retryable, corrupt.job_name, corrupt.source.topic) == (
        REPROCESS,
        False,
        "reprocess-unit",
        "patients",
    )
    assert "line 2 of " in corrupt.detail and "date=2026-12-01/w2.ndjson" in corrupt.detail
    assert PHI not in corrupt.detail and PHI in corrupt.payload  # the line is kept, where patient data may be
    # Nothing is archived again: the only objects written are error records.
    assert set(OBJECTS) == {"errors"}
    assert {name.split("/")[1] for name in _objects("errors/")} == {f"stage={REPROCESS}", "stage=validate"}
    assert len(OBJECTS["errors"]) == len(_objects("errors/")) + 1  # and the summary


def test_a_dry_run_counts_per_type_and_code_and_writes_nothing(archive, store):
    got = _run(RANGE, str(archive), dry_run=True)
    assert got["would_write"] == {"Patient": 4}
    assert got["would_write_messages"] == 4
    assert got["would_fail"] == {f"{REPROCESS}.{CORRUPT_ARCHIVE_LINE}": 1, "validate.missing_source_id": 1}
    assert got["filtered"] == 1 and got["messages"] == 6 and got["objects_read"] == 3
    assert store.batches == 0 and not store.authorizations  # the FHIR store was never asked anything
    assert not _objects("errors/") and set(OBJECTS) == {"errors"}  # its summary only


def test_raw_files_are_messages_with_their_file_and_line_as_coordinates(tmp_path, store):
    path = tmp_path / "history.ndjson"
    path.write_bytes(b"\n".join([_patient(1), b"", _patient(2), b"not json"]) + b"\n")
    source = ReprocessSource(("legacy",), input_pattern=str(tmp_path / "*.ndjson"))

    def check(outputs):  # noqa: ANN001, ANN202
        coordinates = outputs["written"] | beam.Map(lambda m: (m.topic, m.partition, m.offset, m.timestamp_ms))
        partition = file_partition(str(path))
        assert_that(coordinates, equal_to([("legacy", partition, 1, 0), ("legacy", partition, 3, 0)]))

    got = _run(source, "", dry_run=False, check=check)
    assert (got["objects_read"], got["messages"], got["written"]) == (1, 3, 2)
    assert got["failed"] == {"parse.invalid_json": 1}
    assert [(r.source.topic, r.source.offset) for r in _error_records()] == [("legacy", 4)]


def test_the_summary_has_one_outcome_per_message_and_what_the_store_did_per_resource():
    counters = {
        "reprocess/objects_read": 2,
        "reprocess/messages": 12,
        "write_to_fhir_store/messages_written": 4,
        "write_to_fhir_store/messages_unchanged": 2,
        "write_to_fhir_store/messages_superseded": 1,
        "write_to_fhir_store/resources_written": 9,
        "write_to_fhir_store/resources_created": 3,
        "write_to_fhir_store/unchanged": 2,
        "write_to_fhir_store/superseded": 1,
        "parse_and_validate/filtered": 2,
        "dead_letter/write.conflict": 1,
        "dead_letter/parse.invalid_json": 2,
        "dead_letter/map.us_core_rules": 0,
    }
    got = summary(counters)
    assert got["failed"] == {"parse.invalid_json": 2, "write.conflict": 1}
    assert (got["written"], got["unchanged"], got["superseded"], got["failed_messages"]) == (4, 2, 1, 3)
    assert got["resources"] == {"created": 3, "updated": 3, "unchanged": 2, "superseded": 1}
    # Every message read has one outcome.
    outcomes = ("written", "unchanged", "superseded", "filtered", "failed_messages")
    assert sum(got[k] for k in outcomes) == got["messages"]


def test_a_resource_a_later_message_wrote_is_left_alone_and_counted_superseded(archive, store):
    # The store holds every Patient from a source time after the archive's: older never overwrites newer.
    store.stored_source_time = _ms("2026-12-03T00:00:00")
    # One Patient a bundle: the fake store answers a search for one identifier.
    got = _run(RANGE, str(archive), dry_run=False, bundle_size=1)
    assert (got["written"], got["unchanged"], got["superseded"]) == (0, 0, 4)  # settled, not written over
    assert got["resources"]["superseded"] == 4
    assert store.batches == 0


@pytest.mark.parametrize(("keeps_version", "written", "unchanged"), [(True, 0, 4), (False, 4, 0)])
def test_a_resource_the_store_already_held_as_written_is_counted_unchanged(
    archive, store, keeps_version, written, unchanged
):
    # The store holds every Patient from a source time before the archive's, so each is updated at the
    # version read; whether the store made a new version decides written or unchanged.
    store.stored_source_time = _ms("2026-11-01T00:00:00")
    store.keeps_version = keeps_version
    got = _run(RANGE, str(archive), dry_run=False, bundle_size=1)
    assert (got["written"], got["unchanged"], got["superseded"]) == (written, unchanged, 0)
    assert got["resources"] == {"created": 0, "updated": written, "unchanged": unchanged, "superseded": 0}
    assert store.batches == 4  # the update was sent either way: the store's answer tells


def test_a_running_reprocess_logs_its_progress_from_its_counters(caplog):
    import logging
    import time

    from beam_pipeline import reprocess

    class Running:
        def __init__(self) -> None:
            self.looks = 0

        def metrics(self):  # noqa: ANN202
            self.looks += 1
            if self.looks == 1:
                raise RuntimeError("no metrics yet")
            done = SimpleNamespace(key=SimpleNamespace(metric=SimpleNamespace(namespace="reprocess", name="messages")))
            # Prism, while the bundle that counts runs: nothing committed yet, 7 attempted.
            counted = SimpleNamespace(**vars(done), committed=0, attempted=7)
            return SimpleNamespace(query=lambda: {"counters": [counted]})

    caplog.set_level(logging.INFO, logger="kafka_to_fhir.reprocess")
    with reprocess.Progress(Running(), seconds=0.01):
        time.sleep(0.2)
    assert "no counters yet (RuntimeError)" in caplog.text
    assert "reprocess progress: 0 messages done of 7 read, 0.0/s over the last 0 s, 0 failed" in caplog.text


def test_detached_the_command_prints_the_job_and_returns(tmp_path, capsys):
    from beam_pipeline.reprocess import main

    (tmp_path / "h.ndjson").write_bytes(_patient(1) + b"\n")
    argv = ["--input_pattern", str(tmp_path / "*.ndjson"), "--dry_run", "--detach", "--runner=DirectRunner"]
    argv.append("--fhir_base_url=http://fhir.invalid/fhir")  # named, never asked: a dry run writes nothing
    assert main([*argv, "--job_name=reprocess-detached"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["job_name"] == "reprocess-detached" and "state" in printed and "messages" not in printed


def _counters(messages: int, written: int, corrupt: int = 1) -> dict[str, int]:
    return {
        "reprocess/messages": messages,
        "write_to_fhir_store/messages_written": written,
        "dead_letter/reprocess.corrupt_archive_line": corrupt,
        "parse_and_validate/filtered": 2,
        "dead_letter/validate.missing_source_id": 3,
    }


def test_a_summary_read_before_the_runner_merged_its_last_counters_is_waited_out():
    from beam_pipeline.contracts.reprocess_summary import accounted, final_summary, summary

    # Prism reported a 5,000-message reprocess DONE with 1,597 written: its last bundles' counters came later.
    reads = iter([_counters(100, 40), _counters(100, 95), _counters(100, 95)])
    slept: list[float] = []
    report = final_summary(lambda: next(reads), sleep=slept.append)
    assert report["written"] == 95 and report["accounted"] is True and slept == [1.0, 1.0]
    assert not accounted(summary(_counters(100, 94)))  # one message without an outcome
    assert not accounted(summary(_counters(100, 96)))  # one outcome too many


def test_counters_that_never_add_up_are_reported_after_the_timeout_marked_so():
    from beam_pipeline.contracts.reprocess_summary import final_summary

    slept: list[float] = []
    report = final_summary(lambda: _counters(100, 50), timeout=5, sleep=slept.append)
    assert report["accounted"] is False and report["written"] == 50 and sum(slept) == 5
    failed = final_summary(lambda: _counters(100, 50), ended_done=False, sleep=slept.append)
    assert failed["accounted"] is False and sum(slept) == 5  # a failed job: one read, no wait


class _Deadline(Exception):
    def code(self) -> object:
        import grpc

        return grpc.StatusCode.DEADLINE_EXCEEDED


class _LongJob:
    """A portable runner's result on a job longer than its job service timeout."""

    def __init__(self, states: list[str], error: Exception) -> None:
        self._states, self._error = iter(states), error

    def wait_until_finish(self) -> str:
        raise self._error

    @property
    def state(self) -> str:
        return next(self._states)


def test_a_job_longer_than_the_runners_wait_is_waited_for_by_its_state():
    from beam_pipeline.reprocess import wait_for_end

    slept: list[float] = []
    job = _LongJob(["RUNNING", "RUNNING", "DONE"], _Deadline())
    assert wait_for_end(job, poll=2, sleep=slept.append) == "DONE" and slept == [2, 2]
    with pytest.raises(ValueError, match="not a deadline"):
        wait_for_end(_LongJob(["DONE"], ValueError("not a deadline")), sleep=slept.append)


def test_the_command_waits_for_the_jobs_summary_object_and_reads_its_counts(tmp_path):
    from beam_pipeline.contracts.reprocess_summary import from_counts, summary_object
    from beam_pipeline.reprocess import wait_for_summary_object

    settings = _settings(str(tmp_path))
    name = "reprocess/job=reprocess-unit/launch=000000000000001/summary.json"
    counts = _counters(100, 95)
    slept: list[float] = []

    def appear_on_third_look(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:  # the runner said DONE before its last bundles ran (Prism)
            OBJECTS["errors"][name] = summary_object("reprocess-unit", 1, counts)

    assert wait_for_summary_object(settings, name, sleep=appear_on_third_look) == counts
    assert slept == [1.0, 1.0]
    report = from_counts(counts)
    assert (report["written"], report["accounted"], report["from"]) == (95, True, "summary object")
    assert from_counts(_counters(100, 94))["accounted"] is False  # one message without an outcome


def test_without_a_summary_object_the_command_gives_up_after_its_wait(tmp_path, caplog):
    from beam_pipeline.reprocess import wait_for_summary_object

    settings = _settings(str(tmp_path))
    slept: list[float] = []
    assert wait_for_summary_object(settings, "reprocess/none.json", timeout=3, sleep=slept.append) is None
    assert sum(slept) == 3 and "no reprocess summary object reprocess/none.json after 3 s" in caplog.text
    OBJECTS["errors"]["reprocess/odd.json"] = b'{"counts": {"reprocess/messages": "many"}}'
    assert wait_for_summary_object(settings, "reprocess/odd.json", sleep=slept.append) is None
    assert sum(slept) == 3  # a malformed object is not waited for


@pytest.mark.parametrize(
    ("source", "reshuffles_before_the_write"),
    [
        # GroupCopies (the archive's copies of one Kafka message grouped) already spread and checkpointed them.
        (RANGE, 0),
        # A raw file is read by one worker: its lines are spread before the write.
        (ReprocessSource(("legacy",), input_pattern="/history/*.ndjson"), 1),
    ],
)
def test_the_write_is_spread_over_workers_only_when_no_shuffle_did_it(source, reshuffles_before_the_write):  # noqa: ANN001
    p = beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"]))
    build_reprocess(p, source, _settings("gs://archive"), dry_run=False)
    labels = [t.unique_name for t in p.to_runner_api().components.transforms.values()]
    assert len([label for label in labels if label.endswith("WriteToFhirStore/SpreadOverWorkers")]) == (
        reshuffles_before_the_write
    )
    assert any(label.endswith("WriteToFhirStore/WriteBundles") for label in labels)


def _counter(namespace: str, name: str, committed: int | None, attempted: int | None) -> SimpleNamespace:
    key = SimpleNamespace(metric=SimpleNamespace(namespace=namespace, name=name))
    return SimpleNamespace(key=key, committed=committed, attempted=attempted)


def test_counters_are_committed_at_the_end_and_include_bundles_in_progress_while_running():
    results = [
        _counter("reprocess", "messages", 0, 2400),  # one step, its bundle still running (Prism)
        _counter("reprocess", "messages", 5, 5),  # another step, done
        _counter("write_to_fhir_store", "messages_written", None, 3),  # a runner without committed values
    ]
    assert counter_totals(results) == {"reprocess/messages": 5, "write_to_fhir_store/messages_written": 3}
    assert counter_totals(results, running=True) == {
        "reprocess/messages": 2405,
        "write_to_fhir_store/messages_written": 3,
    }
