"""Poison through Kafka into the running job: every kind ends in exactly one place, the job stays RUNNING,
and valid canaries published after the poison land.

Each message below is one kind of poison (the parse-level kinds of tests/unit/pipeline/test_hostile_input.py
plus what only a real Kafka record carries: tombstones, record timestamps in the year 10000, replay headers
out of range, non-UTF-8 keys, identifiers of any shape). The test prints the figures the README quotes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest
from confluent_kafka import Producer
from google.api_core.exceptions import NotFound
from google.cloud import storage

from beam_pipeline.contracts.error_record import (
    HEADER_ATTEMPT,
    HEADER_FIRST_FAILURE,
    HEADER_OFFSET,
    HEADER_PARTITION,
    HEADER_TIMESTAMP,
    HEADER_TOPIC,
)
from dev.local_stack import (
    cancel_job,
    create_topics,
    job_state,
    kafka_plain,
    launch_local_job,
    ndjson_lines,
    wait_for,
)
from tests.unit.pipeline.test_hostile_input import POISON

pytestmark = pytest.mark.integration

STAGES = ("parse", "validate", "map", "write")
YEAR_10000_MS = 253_402_300_800_000
NOT_JSON = b"{not json"


@dataclass
class Poison:
    """One kind: what to produce, and where it must end ("written", or an error stage and code)."""

    kind: str
    value: bytes | None
    outcome: tuple[str, str | None]  # ("written", None) | (stage, code or None for any code)
    key: bytes | None = None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp_ms: int = 0  # 0: the producer's clock
    # The coordinates its error record names when replay headers say where it first came from.
    replayed_from: tuple[str, int, int, int] | None = None


def _patient(run: str, name: str, **fields: object) -> bytes:
    record = {"Id": f"{run}-{name}", "FIRST": "Poison", "LAST": "Survivor", "COUNTRY": "US"} | fields
    return json.dumps(record).encode()


def _replay(**values: str | bytes) -> list[tuple[str, bytes | None]]:
    base = {HEADER_ATTEMPT: "2", HEADER_TOPIC: "patients", HEADER_PARTITION: "0", HEADER_OFFSET: "5"}
    return [(k, v if isinstance(v, bytes) else v.encode()) for k, v in (base | values).items()]


WRITTEN = ("written", None)
INVALID_JSON = ("parse", "invalid_json")


def _bad_replay(kind: str, **values: str | bytes) -> Poison:
    """Invalid JSON under replay headers one of which is out of range: an error at its own coordinates."""
    return Poison(kind, NOT_JSON, INVALID_JSON, headers=_replay(**values))


def poison_set(run: str, topic: str) -> list[Poison]:
    kinds = [Poison(name, raw, (stage, code)) for name, raw, stage, code in POISON]
    kinds += [
        Poison("tombstone (null value)", None, ("parse", "empty_message")),
        Poison("record timestamp in the year 10000", _patient(run, "y10000"), WRITTEN, timestamp_ms=YEAR_10000_MS),
        Poison("record timestamp at the epoch", _patient(run, "epoch"), WRITTEN, timestamp_ms=1),
        Poison(
            "replay timestamp out of range",
            NOT_JSON,
            INVALID_JSON,
            headers=_replay(**{HEADER_TIMESTAMP: str(YEAR_10000_MS)}),
            replayed_from=("patients", 0, 5, 2),  # the timestamp alone is dropped; the attempt still counts
        ),
        _bad_replay("replay attempt not a number", **{HEADER_ATTEMPT: "two"}),
        _bad_replay("replay partition not a number", **{HEADER_PARTITION: "p"}),
        _bad_replay("replay offset not a number", **{HEADER_OFFSET: "1e3"}),
        _bad_replay("replay topic with a newline", **{HEADER_TOPIC: "a\nb"}),
        _bad_replay("replay topic over 1 KB", **{HEADER_TOPIC: "t" * 1100}),
        _bad_replay("replay header not UTF-8", **{HEADER_OFFSET: b"\xff\xfe"}),
        Poison(
            "replay first failure time as a path",
            NOT_JSON,
            INVALID_JSON,
            headers=_replay(**{HEADER_TOPIC: topic, HEADER_FIRST_FAILURE: "../../x"}),
            replayed_from=(topic, 0, 5, 2),  # the other replay headers are valid, so they name the source
        ),
        Poison("header with no value", _patient(run, "nullheader"), WRITTEN, headers=[("x-empty", None)]),
        Poison("key not UTF-8", _patient(run, "binkey"), WRITTEN, key=b"\xff\x00\xfe"),
        Poison("names Na, Null and None", _patient(run, "na", FIRST="Na", MIDDLE="None", LAST="Null"), WRITTEN),
        Poison("identifier with URL characters", _patient(run, "id |&#?%/ é"), WRITTEN),
        Poison("identifier too long for a URL", _patient(run, "long-" + "x" * 3000), ("write", None)),
        Poison(
            "MESSAGE_TYPE naming no mapper",
            _patient(run, "type", MESSAGE_TYPE="Qzxwvjhn Smythwyck"),
            ("validate", "unknown_message_type"),
        ),
    ]
    return kinds


@dataclass
class Sent:
    poison: Poison
    partition: int
    offset: int


def produce(conf: dict[str, str], topic: str, kinds: list[Poison]) -> list[Sent]:
    # Room for the oversized kind (just over the pipeline's 1,000,000-byte limit, under the broker's).
    producer = Producer(conf | {"message.max.bytes": 2_000_000})
    sent: list[Sent] = []
    failures: list[str] = []

    def delivered(poison: Poison):
        def callback(err, msg) -> None:
            if err is not None:
                failures.append(f"{poison.kind}: {err}")
            else:
                sent.append(Sent(poison, msg.partition(), msg.offset()))

        return callback

    for poison in kinds:
        kwargs = {"timestamp": poison.timestamp_ms} if poison.timestamp_ms else {}
        producer.produce(
            topic,
            value=poison.value,
            key=poison.key,
            headers=poison.headers or None,
            partition=0,
            on_delivery=delivered(poison),
            **kwargs,
        )
        producer.poll(0)
    assert producer.flush(60) == 0
    assert not failures, failures
    return sent


def _archive(env, topic: str) -> list[dict]:
    return ndjson_lines(env["GCS_ARCHIVE_BUCKET"], f"archive/topic={topic}/")


def error_records(env, prefixes: list[str]) -> list[dict]:
    """The error records under errors/<prefix>, wherever they are now: the replay DAG (which may run on a
    shared stack while this test does) copies an errors/ object's lines to its replayed/ and quarantine/
    twins, then deletes it. So each object is read from errors/ while it is there, else from its twins."""
    client = storage.Client(project=env["GCP_PROJECT"])
    found: dict[str, dict[str, list[str]]] = {"errors": {}, "twins": {}}
    for prefix in prefixes:
        for area in ("errors", "replayed", "quarantine"):
            for blob in client.list_blobs(env["GCS_ERROR_BUCKET"], prefix=f"{area}/{prefix}"):
                try:
                    lines = [line for line in blob.download_as_text().splitlines() if line]
                except NotFound:
                    continue  # moved after we listed it: its twins hold the lines
                relative = blob.name.split("/", 1)[1]
                found["errors" if area == "errors" else "twins"].setdefault(relative, []).extend(lines)
    objects = found["twins"] | found["errors"]
    return [json.loads(line) for lines in objects.values() for line in lines]


def _errors(env, topics: list[str], job_name: str) -> list[dict]:
    prefixes = [f"stage={stage}/topic={t}/" for stage in STAGES for t in topics]
    return [r for r in error_records(env, prefixes) if r["job_name"] == job_name]


def _patients(env, system: str, value: str) -> int:
    # FHIR search escapes \\, | , and $ inside a token's value.
    escaped = value.replace("\\", "\\\\").replace("|", "\\|").replace(",", "\\,").replace("$", "\\$")
    response = httpx.get(
        f"{env['FHIR_BASE_URL']}/Patient", params={"identifier": f"{system}|{escaped}", "_summary": "count"}, timeout=60
    )
    response.raise_for_status()
    return int(response.json()["total"])


def test_poison_through_kafka_leaves_the_job_running_and_the_canary_lands(env):
    run = uuid.uuid4().hex[:8]
    topic, job_name, system = f"poison-{run}", f"poison-{run}", f"urn:k2f-poison:{run}"
    create_topics(kafka_plain(env), [topic], partitions=1)
    kinds = poison_set(run, topic)
    assert len({k.kind for k in kinds}) == len(kinds) >= 25

    started = time.monotonic()
    job_id = launch_local_job(
        env,
        job_name,
        [topic],
        f"--kafka_consumer_group={job_name}",
        f"--source_id_system={system}",
        "--archive_window_seconds=2",
    )
    try:
        sent = produce(kafka_plain(env), topic, kinds)
        wait_for(lambda: len(_archive(env, topic)) >= len(sent), 240, "every poison message archived", poll=2)
        # The canaries come after all the poison, so they land only if nothing stalled the job.
        canaries = produce(
            kafka_plain(env),
            topic,
            [Poison(f"canary {i}", _patient(run, f"canary-{i}"), WRITTEN) for i in range(3)],
        )
        wait_for(
            lambda: all(_patients(env, system, f"{run}-canary-{i}") == 1 for i in range(3)), 180, "the canaries", poll=2
        )
        expected_errors = [s for s in sent if s.poison.outcome[0] != "written"]
        topics = [topic, "patients"]
        wait_for(lambda: len(_errors(env, topics, job_name)) >= len(expected_errors), 120, "the error records", poll=2)
        everything = sent + canaries
        wait_for(lambda: len(_archive(env, topic)) >= len(everything), 60, "the canaries archived", poll=2)
        time.sleep(3)  # anything duplicated would show by now
        state = job_state(env, job_id)
        elapsed = time.monotonic() - started

        archive = Counter((line["partition"], line["offset"]) for line in _archive(env, topic))
        errors = _errors(env, topics, job_name)
        by_source: dict[tuple, list[dict]] = {}
        for r in errors:
            source = r["source"]
            by_source.setdefault(
                (source["topic"], source.get("partition"), source.get("offset"), r["attempt"]), []
            ).append(r)

        def error_of(s: Sent) -> tuple:
            return s.poison.replayed_from or (topic, s.partition, s.offset, 1)

        lost, duplicated, wrong = [], [], []
        for s in everything:
            if archive[(s.partition, s.offset)] != 1:
                (lost if archive[(s.partition, s.offset)] == 0 else duplicated).append(f"archive: {s.poison.kind}")
            where, code = s.poison.outcome
            if where == "written":
                found = _patients(env, system, json.loads(s.poison.value)["Id"])
                if found != 1:
                    (lost if found == 0 else duplicated).append(f"store: {s.poison.kind}")
                if by_source.get(error_of(s)):
                    wrong.append(f"{s.poison.kind}: an error record besides the write")
                continue
            records = by_source.get(error_of(s), [])
            if len(records) != 1:
                (lost if not records else duplicated).append(f"errors: {s.poison.kind}")
                continue
            [record] = records
            if record["stage"] != where or (code is not None and record["code"] != code):
                wrong.append(f"{s.poison.kind}: {record['stage']}/{record['code']}, expected {where}/{code}")
        stalls = int(state != "RUNNING")
        print(
            f"\npoison kinds {len(kinds)}, messages {len(everything)}: lost {len(lost)}, duplicated {len(duplicated)}, "
            f"job stalls {stalls} (state {state}); {elapsed:.0f} s from launch to the last check"
        )
        assert (lost, duplicated, wrong, state) == ([], [], [], "RUNNING")
        assert len(errors) == len(expected_errors)
    finally:
        cancel_job(env, job_id)
