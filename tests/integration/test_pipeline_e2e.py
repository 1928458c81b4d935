"""The streaming job end to end on the local stack: Kafka (both listeners) -> Prism -> HAPI, GCS.

One job, one story, in the order a user lives it: a first load with bad and filtered messages, a
redelivery of the same messages, a steady feed of 10
messages a second (its latency, produce to readable in HAPI, p99 at most 3 s: a generous bound against
noise, bench/bench_pipeline.py holds the real target), and a FHIR store outage of 30 s under load. After
each step every message is in HAPI or in the error bucket, exactly once in the archive.

The job reaches HAPI through dev/fault_proxy.py, which stands in for the outage: the store unreachable,
every connection dropped unanswered, as a stopped server's port is to the job's client. (A real HAPI stop
and start costs a minute and more with US Core validation on; the delivery test restarts Kafka and GCS for
real.)
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import Producer

from dev.fault_proxy import FaultProxy
from dev.latency import latencies, percentile, produce, stored_at
from dev.local_stack import (
    cancel_job,
    create_topics,
    fhir_count,
    group_offsets,
    kafka_plain,
    kafka_sasl,
    launch_local_job,
    ndjson_lines,
    publish,
    wait_for,
)
from dev.synthetic import synthetic_rows
from launcher.job_service import JobServiceClient

pytestmark = pytest.mark.integration

STAGES = ("parse", "validate", "map", "write")
# Produce to readable in HAPI at a steady 10 messages/s; the benchmark measures about 1 s on this stack.
LATENCY_P99_BOUND_S = 3.0


def _with(row: bytes, **fields: object) -> bytes:
    return json.dumps({**json.loads(row), **fields}).encode()


def _valid(run: str, start: int, n: int) -> list[bytes]:
    rows = synthetic_rows(start + n, seed=11, id_prefix=f"e2e-{run}-")[start:]
    return [_with(r, COUNTRY="US") for r in rows]


def _invalid(run: str) -> tuple[list[bytes], Counter]:
    base = json.loads(_valid(run, 5000, 1)[0])
    bad: list[bytes] = []
    for i in range(10):
        bad.append(b"{not json " + str(i).encode())
        bad.append(json.dumps([f"array-{i}"]).encode())
        bad.append(json.dumps({**base, "Id": ""}).encode())
        bad.append(json.dumps({**base, "Id": f"e2e-{run}-noname-{i}", "FIRST": "", "LAST": ""}).encode())
        bad.append(json.dumps({**base, "Id": f"e2e-{run}-baddate-{i}", "BIRTHDATE": "2021-02-30"}).encode())
    expected = Counter(
        {
            ("parse", "invalid_json"): 10,
            ("parse", "not_an_object"): 10,
            ("validate", "missing_source_id"): 10,
            ("validate", "no_usable_name"): 10,
            ("validate", "invalid_date"): 10,
        }
    )
    return bad, expected


def _filtered(run: str) -> list[bytes]:
    return [_with(r, COUNTRY="CA") for r in synthetic_rows(20, seed=12, id_prefix=f"e2e-{run}-ca-")]


def _archive(env, topics: list[str]) -> list[dict]:
    return [line for t in topics for line in ndjson_lines(env["GCS_ARCHIVE_BUCKET"], f"archive/topic={t}/")]


def _all_committed(env, group: str, topics: list[str]) -> bool:
    return all(committed == end for committed, end in group_offsets(kafka_plain(env), group, topics).values())


def _errors(env, topics: list[str]) -> list[dict]:
    return [
        line
        for stage in STAGES
        for t in topics
        for line in ndjson_lines(env["GCS_ERROR_BUCKET"], f"errors/stage={stage}/topic={t}/")
    ]


def _coordinates(lines: list[dict]) -> Counter:
    return Counter((line["topic"], line["partition"], line["offset"]) for line in lines)


def _error_coordinates(records: list[dict]) -> Counter:
    return Counter((r["source"]["topic"], r["source"]["partition"], r["source"]["offset"]) for r in records)


def test_kafka_to_hapi_end_to_end_with_redelivery_restart_and_outage(env):
    run = uuid.uuid4().hex[:8]
    system = f"urn:k2f-e2e:{run}"
    plain_topic, sasl_topic = f"e2e-{run}-plain", f"e2e-{run}-sasl"
    topics = [plain_topic, sasl_topic]
    job_name, group = f"e2e-{run}", f"e2e-{run}"
    flags = (
        f"--kafka_consumer_group={group}",
        f"--source_id_system={system}",
        "--filter_country=US",
        "--archive_window_seconds=5",
    )
    create_topics(kafka_plain(env), topics)
    proxy = FaultProxy(env["FHIR_BASE_URL"].rsplit("/fhir", 1)[0]).start()
    flags += (f"--fhir_base_url={proxy.url}/fhir",)  # the last one given is the one the job takes

    valid = _valid(run, 0, 1000)
    invalid, expected_errors = _invalid(run)
    filtered = _filtered(run)
    sent = publish(kafka_plain(env), plain_topic, valid[:500] + invalid[:25] + filtered[:10])
    sent += publish(kafka_sasl(env), sasl_topic, valid[500:] + invalid[25:] + filtered[10:])
    assert sent == 1070

    job_id = launch_local_job(env, job_name, topics, *flags)
    jobs = JobServiceClient(env["PRISM_ENDPOINT"])
    try:
        # 1. First load: every message in exactly one place, each raw message archived once.
        wait_for(lambda: fhir_count(env, system) >= 1000, 300, "1,000 Patients in HAPI", poll=2)
        wait_for(lambda: len(_archive(env, topics)) >= 1070, 120, "1,070 archived messages", poll=2)
        wait_for(lambda: len(_errors(env, topics)) >= 50, 120, "50 error records", poll=2)
        assert fhir_count(env, system) == 1000
        archive = _archive(env, topics)
        assert len(archive) == 1070 and max(_coordinates(archive).values()) == 1
        assert Counter(line["payload"].encode() for line in archive) == Counter(valid + invalid + filtered)
        errors = _errors(env, topics)
        assert Counter((r["stage"], r["code"]) for r in errors) == expected_errors
        assert max(_error_coordinates(errors).values()) == 1
        assert not any(r["retryable"] for r in errors)
        counters = jobs.counters(job_id)
        assert counters["parse_and_validate/filtered"] == 20
        assert counters["write_to_fhir_store/resources_written"] == 1000

        # 2. Redelivery: the same 1,000 again update the same Patients.
        publish(kafka_plain(env), plain_topic, valid)
        wait_for(
            lambda: jobs.counters(job_id)["write_to_fhir_store/resources_written"] >= 2000,
            300,
            "the redelivered messages to be written",
            poll=2,
        )
        assert fhir_count(env, system) == 1000

        # 3. A steady feed of 10 messages a second is in HAPI within seconds of being produced.
        steady = _valid(run, 1300, 100)
        producer = Producer({**kafka_plain(env), "linger.ms": 0})
        produced = produce(producer, plain_topic, steady, per_second=10)
        wait_for(lambda: fhir_count(env, system) >= 1100, 120, "the steady feed in HAPI", poll=1)
        waited = latencies(produced, stored_at(env, system))
        p99 = percentile(waited, 0.99)
        assert p99 <= LATENCY_P99_BOUND_S, f"p99 {p99:.2f} s from produce to readable at 10 messages/s"

        # 4. The store is unreachable for 30 s under load: each message still ends in HAPI or the error bucket.
        outage = _valid(run, 1100, 200)
        proxy.go_down(applied_first=False)
        try:
            publish(kafka_plain(env), plain_topic, outage)
            time.sleep(30)
        finally:
            proxy.come_back()

        def settled() -> bool:
            in_errors = sum(1 for r in _errors(env, topics) if r["stage"] == "write")
            return fhir_count(env, system) + in_errors >= 1300

        wait_for(settled, 600, "every outage message in HAPI or the error bucket", poll=3)
        write_errors = [r for r in _errors(env, topics) if r["stage"] == "write"]
        assert all(r["retryable"] and r["code"] in ("connection_error", "timeout", "http_error") for r in write_errors)
        assert fhir_count(env, system) + len(write_errors) == 1300
        archive = _archive(env, topics)
        assert len(archive) == 2370 and max(_coordinates(archive).values()) == 1
    finally:
        cancel_job(env, job_id)
        jobs.close()
        proxy.stop()
