"""The job's own retry of rows whose reference target has not arrived: the schedule, what is published to the
retry topic (the exact producer calls), what settles and what is dead-lettered, and the wait on read-back."""

from __future__ import annotations

import json
import time
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from beam_pipeline import failed_message
from beam_pipeline.contracts.error_record import HEADER_ATTEMPT, HEADER_TOPIC, replay_headers, replay_origin
from beam_pipeline.contracts.reference_retry import (
    DEFAULT_DELAYS,
    HEADER_JOB_RETRIES,
    HEADER_NOT_BEFORE,
    MAX_DELAY_SECONDS,
    RetrySchedule,
    RetryScheduleError,
    job_retries,
    wait_seconds,
)
from beam_pipeline.delivery.ledger import Delivery
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms.reference_retry import AwaitRetryDue, RetryUnresolvedReferences

RETRY_TOPIC = "k2f-retry"


def _message(offset: int, *, topic: str = "rows", headers: tuple = (), key: bytes | None = b"key") -> RawMessage:
    return RawMessage(topic, 0, offset, 1_700_000_000_000, key, b'{"row": %d}' % offset, headers)


def _record(message: RawMessage, code: str = "reference_not_found", *, retryable: bool = True) -> Any:  # noqa: ANN401
    return failed_message.error_record(
        message, stage="write", code=code, retryable=retryable, detail="Patient?identifier: no match", job_name="j"
    )


# -- the schedule -------------------------------------------------------------------------------------


def test_the_schedule_gives_each_retry_its_delay_then_stops():
    schedule = RetrySchedule.parse(" 10, 60 ,300")
    assert [schedule.delay_for(done) for done in (0, 1, 2, 3, -1)] == [10, 60, 300, None, None]
    assert [RetrySchedule.partition_for(done, 3) for done in (0, 1, 2)] == [0, 1, 2]
    assert [RetrySchedule.partition_for(done, 2) for done in (0, 1, 2)] == [0, 1, 0]
    assert RetrySchedule.partition_for(0, 0) == 0
    assert RetrySchedule.parse(DEFAULT_DELAYS).delays == (10, 30, 60, 120, 300, 600)


@pytest.mark.parametrize(
    "text", ["", "ten", "10,,60", "10;60", "-5", "0", f"{MAX_DELAY_SECONDS + 1}", "1.5", ",".join(["1"] * 101)]
)
def test_a_schedule_that_cannot_be_read_names_the_flag(text):
    with pytest.raises(RetryScheduleError, match="--reference_retry_delays"):
        RetrySchedule.parse(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"1000", 0.0),  # long past
        (b"61000", 1.0),
        (b"not a time", 0.0),
        (b"\xff\xfe", 0.0),
        (str(10**15).encode(), float(MAX_DELAY_SECONDS)),  # a header is input: never a longer wait
    ],
)
def test_the_wait_comes_from_the_header_and_is_bounded(value, expected):
    assert wait_seconds([("other", b"x"), (HEADER_NOT_BEFORE, value)], now_ms=60_000) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(b"3", 3), (b"0", 0), (b"-1", 0), (b"101", 0), (b"x", 0), (b"\xff", 0)]
)
def test_the_job_retries_come_from_their_header_and_a_bad_one_counts_none(value, expected):
    assert job_retries([("other", b"7"), (HEADER_JOB_RETRIES, value)]) == expected
    assert job_retries([]) == 0


def test_a_message_without_the_header_does_not_wait():
    assert wait_seconds([], now_ms=0) == 0.0
    assert wait_seconds([(HEADER_ATTEMPT, b"2")], now_ms=0) == 0.0


# -- publishing to the retry topic --------------------------------------------------------------------

PRODUCED: list[dict[str, Any]] = []


class FakeProducer:
    """confluent-kafka's Producer as the step uses it; `refuse` lists the payloads whose delivery fails,
    `partitions` is the retry topic's partition count, `unflushed` what flush() reports left."""

    refuse: frozenset[bytes] = frozenset()
    partitions = 3
    unflushed = 0
    unreachable = False

    def __init__(self) -> None:
        self._callbacks: list[tuple[Any, bytes]] = []

    def list_topics(self, topic: str, timeout: float) -> Any:  # noqa: ANN401
        if FakeProducer.unreachable:
            raise RuntimeError("KafkaException")
        parts = dict.fromkeys(range(FakeProducer.partitions))
        return type("Meta", (), {"topics": {topic: type("T", (), {"partitions": parts})()}})()

    def produce(
        self, topic: str, *, value: bytes, key: bytes | None, headers: list, partition: int, on_delivery: Any
    ) -> None:  # noqa: ANN401, E501
        PRODUCED.append({"topic": topic, "value": value, "key": key, "headers": dict(headers), "partition": partition})
        self._callbacks.append((on_delivery, value))

    def poll(self, _timeout: float) -> int:
        return 0

    def flush(self, _timeout: float) -> int:
        for callback, value in self._callbacks:
            callback("_MSG_TIMED_OUT" if value in FakeProducer.refuse else None, None)
        self._callbacks = []
        return FakeProducer.unflushed


@pytest.fixture(autouse=True)
def _fresh_producer():
    PRODUCED.clear()
    FakeProducer.refuse, FakeProducer.partitions, FakeProducer.unflushed, FakeProducer.unreachable = (
        frozenset(), 3, 0, False
    )  # fmt: skip


FAILED: list[Any] = []
DEFERRED: list[Delivery] = []


def _keep_failed(record: Any) -> None:  # noqa: ANN401
    FAILED.append(record)


def _keep_deferred(delivery: Delivery) -> None:
    DEFERRED.append(delivery)


def _run(records: list[Any]) -> tuple[list[Any], list[Delivery]]:
    """The step on the direct runner (which pickles its functions: they write to module lists)."""
    FAILED.clear()
    DEFERRED.clear()
    with TestPipeline() as p:
        result = (
            p
            | beam.Create(records)
            | RetryUnresolvedReferences(RETRY_TOPIC, RetrySchedule.parse("10,60,300"), FakeProducer)
        )
        result.failed | "F" >> beam.Map(_keep_failed)
        result.deferred | "D" >> beam.Map(_keep_deferred)
    return list(FAILED), list(DEFERRED)


def _replayed(record: Any, attempt: int) -> RawMessage:
    """The retry topic's message for `record`, as the job reads it back (offset 100 + its own)."""
    produced = next(p for p in reversed(PRODUCED) if p["value"] == record.raw_payload())
    headers = tuple((k, v) for k, v in produced["headers"].items())
    return RawMessage(RETRY_TOPIC, produced["partition"], 100 + attempt, 1, produced["key"], produced["value"], headers)


def test_unresolved_rows_go_to_the_retry_topic_with_replay_headers_and_settle_there():
    unresolved = _record(_message(7))
    other = _record(_message(8), "http_error")
    permanent = _record(_message(9), retryable=False)
    failed, deferred = _run([unresolved, other, permanent])

    assert sorted(r.source.offset for r in failed) == [8, 9]
    assert deferred == [Delivery("rows", 0, 7)]
    (produced,) = PRODUCED
    assert produced["topic"] == RETRY_TOPIC
    assert produced["partition"] == 0  # the first delay's partition
    assert produced["value"] == b'{"row": 7}'
    assert produced["key"] == b"key"
    headers = produced["headers"]
    assert headers[HEADER_ATTEMPT] == b"1"  # the job's retries are not attempts of the replay's count
    assert headers[HEADER_JOB_RETRIES] == b"1"
    assert headers[HEADER_TOPIC] == b"rows"
    assert 9_000 < int(headers[HEADER_NOT_BEFORE]) - time.time() * 1000 <= 10_000


def test_each_retry_waits_the_next_delay_then_the_record_is_dead_lettered_with_its_origin():
    first = _record(_message(7, key=b"\xff\x00"))
    _run([first])
    again = _record(_replayed(first, 2))  # read back from the retry topic, failed again
    assert again.attempt == 1 and again.job_retries == 1
    assert again.source.offset == 7 and again.source.topic == "rows"
    _, deferred = _run([again])
    assert deferred == [Delivery(RETRY_TOPIC, 0, 102)]  # settles where this delivery was read
    assert [p["partition"] for p in PRODUCED] == [0, 1]
    assert PRODUCED[1]["key"] == b"\xff\x00"  # the key byte for byte
    third = _record(_replayed(again, 3))
    _run([third])
    last = _record(_replayed(third, 4))
    assert (last.attempt, last.job_retries) == (1, 3)
    failed, deferred = _run([last])
    assert deferred == [] and [r.attempt for r in failed] == [1]
    assert failed[0].source.offset == 7 and failed[0].first_failure_time == first.first_failure_time
    assert '"job_retries"' not in failed[0].to_json()  # carried through the job, never written
    # The replay DAG's next delivery of it starts the job's retries again.
    replayed = _record(_message(50, headers=tuple(replay_headers(failed[0]))))
    assert (replayed.attempt, replayed.job_retries) == (2, 0)
    assert [p["partition"] for p in PRODUCED] == [0, 1, 2]


def test_a_record_the_retry_topic_refuses_is_dead_lettered():
    refused, taken = _record(_message(1)), _record(_message(2))
    FakeProducer.refuse = frozenset({refused.raw_payload()})
    failed, deferred = _run([refused, taken])
    assert [r.source.offset for r in failed] == [1]
    assert deferred == [Delivery("rows", 0, 2)]


@pytest.mark.parametrize("trouble", ["unflushed", "unreachable"])
def test_when_kafka_does_not_confirm_the_bundle_every_record_is_dead_lettered(trouble):
    setattr(FakeProducer, trouble, 1 if trouble == "unflushed" else True)
    records = [_record(_message(n)) for n in range(3)]
    failed, deferred = _run(records)
    assert sorted(r.source.offset for r in failed) == [0, 1, 2]
    assert deferred == []


# -- reading back ---------------------------------------------------------------------------------------


SLEPT: list[float] = []


def _sleep(seconds: float) -> None:
    SLEPT.append(seconds)


def test_a_message_read_back_waits_until_its_time_and_a_bad_header_waits_not_at_all():
    SLEPT.clear()
    later = str(int(time.time() * 1000) + 30_000).encode()
    messages = [
        _message(1, topic=RETRY_TOPIC, headers=((HEADER_NOT_BEFORE, later),)),
        _message(2, topic=RETRY_TOPIC, headers=((HEADER_NOT_BEFORE, b"soon"),)),
        _message(3, topic=RETRY_TOPIC),
    ]
    with TestPipeline() as p:
        out = p | beam.Create(messages) | AwaitRetryDue(sleep=_sleep)
        assert_that(out | beam.Map(lambda m: m.offset), equal_to([1, 2, 3]))
    assert 25 < sum(SLEPT) <= 30 and max(SLEPT) <= 2.0  # in slices, to hear a drain


class _Drain:
    """A drain asked for once the message has waited `after` looks."""

    def __init__(self, after: int) -> None:
        self.looks, self.after = 0, after

    def requested(self) -> bool:
        self.looks += 1
        return self.looks > self.after


@pytest.mark.parametrize(("after", "passed"), [(1_000, [1]), (3, [])])
def test_a_drain_stops_the_wait_and_leaves_the_message_in_the_retry_topic(after, passed):
    SLEPT.clear()
    later = str(int(time.time() * 1000) + 10_000).encode()
    with TestPipeline() as p:
        out = (
            p
            | beam.Create([_message(1, topic=RETRY_TOPIC, headers=((HEADER_NOT_BEFORE, later),))])
            | AwaitRetryDue(_Drain(after), sleep=_sleep)
        )
        assert_that(out | beam.Map(lambda m: m.offset), equal_to(passed))
    assert sum(SLEPT) <= 10 if passed else sum(SLEPT) <= 3 * 2.0


def test_a_message_read_back_is_recognised_by_the_topic_it_was_first_published_to():
    first = _record(_message(7, topic="patients"))
    _run([first])
    read_back = _replayed(first, 2)
    assert read_back.topic == RETRY_TOPIC
    assert read_back.source_topic == "patients"
    assert replay_origin(read_back.headers).source.offset == 7
    assert _message(1, topic="rows").source_topic == "rows"
    garbled = _message(1, topic=RETRY_TOPIC, headers=((HEADER_ATTEMPT, b"x"), (HEADER_TOPIC, b"bad topic!")))
    assert garbled.source_topic == RETRY_TOPIC  # unreadable headers: where it was read stands


# -- the steps after the read, with the retry topic ------------------------------------------------------


def _store_without_patients(request: Any) -> Any:  # noqa: ANN401
    """A FHIR server holding no Patient: every entry referring to one is refused as HAPI refuses it."""
    import httpx

    if request.url.path.endswith("/_search"):
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": []})
    unresolved = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": (
            'HAPI-1091: Invalid match URL "Patient?identifier=x" - No resources match this search'
        )}],
    }  # fmt: skip
    answers = []
    for entry in json.loads(request.content)["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            answers.append({"response": {"status": "201 Created", "location": "Patient/1/_history/1"}})
        else:
            answers.append({"response": {"status": "404 Not Found", "outcome": unresolved}})
    return httpx.Response(200, json={"resourceType": "Bundle", "type": "batch-response", "entry": answers})


def test_the_steps_send_an_unresolved_row_to_the_retry_topic_instead_of_the_error_bucket(monkeypatch):
    import httpx

    from beam_pipeline.dataflow_kafka_to_fhirstore import JobSettings, process_steps
    from beam_pipeline.fhir_store import FhirStoreClient, FhirStoreConfig
    from beam_pipeline.transforms import write
    from beam_pipeline.us_core import TransformConfig
    from dev.clinical_rows import encounter_row, patient_row
    from tests.unit.pipeline.test_reprocess_pipeline import OBJECTS, memory_storage

    class LocalClient(FhirStoreClient):
        def __init__(self, config, **kwargs):  # noqa: ANN001, ANN003
            super().__init__(config, transport=httpx.MockTransport(_store_without_patients), **kwargs)

    monkeypatch.setattr(write, "FhirStoreClient", LocalClient)
    OBJECTS.clear()
    FAILED.clear()
    DEFERRED.clear()
    encounter = _message(1, topic="rows")
    encounter = RawMessage("rows", 0, 1, encounter.timestamp_ms, None, json.dumps(encounter_row("p-1", "e-1")).encode())
    patient = RawMessage("rows", 0, 2, encounter.timestamp_ms, None, json.dumps(patient_row("p-2")).encode())
    settings = JobSettings(
        "job", "archive", "errors", 5, FhirStoreConfig(base_url="http://fhir.test/fhir"), TransformConfig(),
        storage_client=memory_storage, retry_topic=RETRY_TOPIC, retry_producer=FakeProducer,
    )  # fmt: skip
    with TestPipeline() as p:
        stamped = beam.Map(lambda m: TimestampedValue(m, m.timestamp_ms / 1000)).with_output_types(RawMessage)
        steps = process_steps(p | beam.Create([encounter, patient]) | stamped, settings)
        steps["deferred"] | "D" >> beam.Map(_keep_deferred)
        steps["dead_lettered"] | "F" >> beam.Map(_keep_failed)
    assert DEFERRED == [Delivery("rows", 0, 1)]
    assert FAILED == []  # nothing dead-lettered
    (produced,) = PRODUCED
    assert produced["topic"] == RETRY_TOPIC and json.loads(produced["value"])["Id"] == "e-1"
    assert not [name for name in OBJECTS.get("errors", {}) if name.startswith("errors/")]
