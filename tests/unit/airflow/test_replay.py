"""Error replay against an in-memory bucket and producer: what moves where, and what a rerun does."""

from __future__ import annotations

import json

import pytest
from google.api_core import exceptions
from k2f_airflow.replay import ErrorReplayer, ReplayError

from beam_pipeline.contracts.error_record import (
    HEADER_ATTEMPT,
    HEADER_OFFSET,
    HEADER_TOPIC,
    KafkaCoordinates,
    make_error_record,
)
from beam_pipeline.raw_message import RawMessage

NAME = "errors/stage=write/topic=patients/date=2025-01-01/20250101T000000-000100-pane000-shard00.ndjson"


class Blob:
    def __init__(self, bucket, name):
        self.bucket, self.name = bucket, name
        self.generation = None

    def reload(self):
        self.generation = self.bucket.objects[self.name][1]

    def download_as_bytes(self):
        if self.name not in self.bucket.objects:
            raise exceptions.NotFound("no")
        return self.bucket.objects[self.name][0]

    def upload_from_string(self, data, content_type=None):
        self.bucket.put(self.name, data.encode() if isinstance(data, str) else data)

    def delete(self, if_generation_match=None):
        if if_generation_match is not None and self.bucket.objects[self.name][1] != if_generation_match:
            raise exceptions.PreconditionFailed("changed")
        del self.bucket.objects[self.name]


class Bucket:
    def __init__(self):
        self.objects, self.gen = {}, 0

    def put(self, name, data):
        self.gen += 1
        self.objects[name] = (data, self.gen)

    def blob(self, name):
        return Blob(self, name)

    def list_blobs(self, prefix):
        return [Blob(self, n) for n in sorted(self.objects) if n.startswith(prefix)]

    def lines(self, name):
        return self.objects[name][0].decode().splitlines()


class Producer:
    def __init__(self, fail=False):
        self.sent, self.fail, self.pending = [], fail, []

    def produce(self, topic, value, key, headers, on_delivery):
        self.pending.append(on_delivery)
        self.sent.append({"topic": topic, "value": value, "key": key, "headers": dict(headers)})

    def poll(self, _timeout):
        return 0

    def flush(self, _timeout):
        for callback in self.pending:
            callback(type("E", (), {"name": lambda self: "_MSG_TIMED_OUT"})() if self.fail else None, None)
        self.pending = []
        return 0


def record(offset, *, retryable=True, attempt=1, code="http_503"):
    return make_error_record(
        stage="write",
        code=code,
        retryable=retryable,
        detail="server unavailable",
        raw=b'{"Id": "%d"}' % offset,
        source=KafkaCoordinates("patients", 0, offset, 1735689600000, f"k{offset}"),
        attempt=attempt,
    )


@pytest.fixture
def bucket():
    b = Bucket()
    lines = [record(1), record(2, retryable=False, code="invalid"), record(3, attempt=5), record(4, attempt=2)]
    b.put(NAME, ("\n".join(r.to_json() for r in lines) + "\n").encode())
    return b


def test_retryable_records_are_republished_with_headers_and_objects_move(bucket):
    producer = Producer()
    counts = ErrorReplayer(bucket, producer, max_attempts=5).run()
    assert [m["value"] for m in producer.sent] == [b'{"Id": "1"}', b'{"Id": "4"}']
    first = producer.sent[0]
    assert first["topic"] == "patients" and first["key"] == b"k1"
    assert first["headers"][HEADER_ATTEMPT] == b"2"
    assert first["headers"][HEADER_TOPIC] == b"patients" and first["headers"][HEADER_OFFSET] == b"1"
    assert producer.sent[1]["headers"][HEADER_ATTEMPT] == b"3"
    assert NAME not in bucket.objects
    assert len(bucket.lines(NAME.replace("errors/", "replayed/", 1))) == 2
    assert len(bucket.lines(NAME.replace("errors/", "quarantine/", 1))) == 2
    assert (counts.replayed, counts.quarantined, counts.capped, counts.objects) == (2, 2, 1, 1)
    assert "2 record(s) replayed (patients: 2)" in counts.summary()


def test_a_rerun_replays_nothing(bucket):
    ErrorReplayer(bucket, Producer(), max_attempts=5).run()
    producer = Producer()
    counts = ErrorReplayer(bucket, producer, max_attempts=5).run()
    assert producer.sent == [] and counts.objects == 0


def test_an_object_rewritten_after_its_replay_is_not_replayed_again(bucket):
    original = bucket.objects[NAME][0]
    ErrorReplayer(bucket, Producer(), max_attempts=5).run()
    bucket.put(NAME, original)  # the pipeline retried the bundle that wrote it
    producer = Producer()
    counts = ErrorReplayer(bucket, producer, max_attempts=5).run()
    assert producer.sent == [] and counts.already_replayed == 2
    assert NAME not in bucket.objects


def test_a_retry_topic_takes_every_replay(bucket):
    producer = Producer()
    ErrorReplayer(bucket, producer, max_attempts=5, retry_topic="retries").run()
    assert {m["topic"] for m in producer.sent} == {"retries"}


def test_a_failed_delivery_leaves_the_object_for_the_next_run(bucket):
    with pytest.raises(ReplayError, match="_MSG_TIMED_OUT") as info:
        ErrorReplayer(bucket, Producer(fail=True), max_attempts=5).run()
    assert '"Id"' not in str(info.value)
    assert NAME in bucket.objects and not any(n.startswith("replayed/") for n in bucket.objects)


def test_unreadable_lines_go_to_quarantine():
    b = Bucket()
    b.put(NAME, b"not json\n")
    counts = ErrorReplayer(b, Producer(), max_attempts=5).run()
    assert counts.unreadable == 1 and b.lines(NAME.replace("errors/", "quarantine/", 1)) == ["not json"]


# -- one object never stops the others; keys byte for byte --------------------------------------------

OTHER = NAME.replace("shard00", "shard01")


class RefusingProducer(Producer):
    """A broker that refuses one record for good (too large) and takes the rest."""

    def __init__(self, refuse_value):
        super().__init__()
        self.refuse_value = refuse_value

    def produce(self, topic, value, key, headers, on_delivery):
        super().produce(topic, value, key, headers, on_delivery)
        self.pending[-1] = (on_delivery, value == self.refuse_value)

    def flush(self, _timeout):
        too_large = type("E", (), {"name": lambda self: "MSG_SIZE_TOO_LARGE"})()
        for callback, refused in self.pending:
            callback(too_large if refused else None, None)
        self.pending = []
        return 0


def test_an_unreadable_object_is_quarantined_whole_with_its_reason_and_the_run_moves_on(bucket):
    bucket.put(OTHER, b"\xff\xfe not UTF-8 \x00")
    order = sorted([NAME, OTHER])
    assert order[-1] == OTHER  # the bad object comes last: the good one was handled before, and after it too
    counts = ErrorReplayer(bucket, Producer(), max_attempts=5).run()
    quarantined = bucket.objects[OTHER.replace("errors/", "quarantine/")][0]
    assert quarantined == b"\xff\xfe not UTF-8 \x00"  # byte for byte
    assert counts.objects_unreadable == 1 and counts.replayed == 2
    assert OTHER not in bucket.objects and NAME not in bucket.objects


def test_a_record_the_broker_refuses_for_good_is_quarantined_with_the_reason(bucket):
    producer = RefusingProducer(b'{"Id": "4"}')
    counts = ErrorReplayer(bucket, producer, max_attempts=5).run()
    assert counts.replayed == 1 and counts.unpublishable == 1
    quarantine = [json.loads(line) for line in bucket.lines(NAME.replace("errors/", "quarantine/"))]
    reasons = {r["source"]["offset"]: r.get("quarantine_reason") for r in quarantine}
    assert reasons[4] == "unpublishable: MSG_SIZE_TOO_LARGE"
    assert reasons[2] == "not retryable" and reasons[3] == "attempt cap"
    replayed = [json.loads(line)["source"]["offset"] for line in bucket.lines(NAME.replace("errors/", "replayed/"))]
    assert replayed == [1]


def test_a_passing_publish_failure_keeps_that_object_and_still_handles_the_others(bucket):
    bucket.put(OTHER, (record(9).to_json() + "\n").encode())

    class FailsOnce(Producer):
        def flush(self, _timeout):
            self.fail = any(m["value"] == b'{"Id": "1"}' for m in self.sent[-len(self.pending) :])
            return super().flush(_timeout)

    producer = FailsOnce()
    with pytest.raises(ReplayError, match="1 object.s. stay for the next run"):
        ErrorReplayer(bucket, producer, max_attempts=5).run()
    assert NAME in bucket.objects  # kept for the next run
    assert OTHER not in bucket.objects  # handled
    assert [json.loads(x)["source"]["offset"] for x in bucket.lines(OTHER.replace("errors/", "replayed/"))] == [9]


def test_a_key_that_is_not_utf8_is_replayed_byte_for_byte():
    key = b"\xff\x00key\x80"
    message = RawMessage("patients", 0, 7, 1735689600000, key, b'{"Id": "7"}')
    failed = make_error_record(
        stage="write", code="http_error", retryable=True, detail="503", raw=message.value, source=message.coordinates
    )
    line = failed.to_json()
    assert json.loads(line)["source"]["key_base64"]
    b = Bucket()
    b.put(NAME, (line + "\n").encode())
    producer = Producer()
    ErrorReplayer(b, producer, max_attempts=5).run()
    assert producer.sent[0]["key"] == key
    assert "key" in json.loads(message.archive_line()) and json.loads(message.archive_line())["key_base64"]


def test_a_record_written_twice_is_replayed_once(bucket):
    # A job stopped before committing past a failed message; the next job read it again and wrote its error
    # record a second time, into an object of its own.
    twice = record(7)
    bucket.put(NAME, (twice.to_json() + "\n").encode())
    bucket.put(OTHER, (twice.to_json() + "\n" + twice.to_json() + "\n").encode())
    producer = Producer()
    counts = ErrorReplayer(bucket, producer, max_attempts=5).run()
    assert [m["value"] for m in producer.sent] == [b'{"Id": "7"}']
    assert counts.replayed == 1 and counts.already_replayed == 2
