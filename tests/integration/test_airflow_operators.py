"""The Airflow hooks, checks and replay against the local stack: real Kafka (SASL), GCS emulator, Secret
Manager stand-in, HAPI and Prism. Each test uses its own topic / object prefix, so runs never collide."""

from __future__ import annotations

import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))

from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from k2f_airflow import health, prerequisites  # noqa: E402
from k2f_airflow.config import K2fConfig  # noqa: E402
from k2f_airflow.hooks.gcs import StorageHook  # noqa: E402
from k2f_airflow.hooks.jobs import LocalJobsClient  # noqa: E402
from k2f_airflow.kafka_client import KafkaClient  # noqa: E402
from k2f_airflow.replay import ErrorReplayer  # noqa: E402

from beam_pipeline.contracts.error_record import (  # noqa: E402
    HEADER_ATTEMPT,
    HEADER_OFFSET,
    HEADER_TOPIC,
    KafkaCoordinates,
    make_error_record,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def topic(env):
    name = f"k2f-airflow-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": env["KAFKA_BOOTSTRAP"]})
    admin.create_topics([NewTopic(name, num_partitions=1)])[name].result(timeout=30)
    yield name
    admin.delete_topics([name])[name].result(timeout=30)


@pytest.fixture
def cfg(env, topic):
    return K2fConfig(
        runner="local",
        job_name=f"k2f-airflow-test-{uuid.uuid4().hex[:8]}",
        topics=topic,
        kafka_secret_resource_name=f"projects/{env['GCP_PROJECT']}/secrets/{env['KAFKA_SECRET_ID']}/versions/latest",
        kafka_consumer_group=f"k2f-airflow-{uuid.uuid4().hex[:8]}",
        archive_bucket=env["GCS_ARCHIVE_BUCKET"],
        error_bucket=env["GCS_ERROR_BUCKET"],
        fhir_base_url=env["FHIR_BASE_URL"],
        local_job_endpoint=env["PRISM_ENDPOINT"],
        local_worker_pool_port=env["PY_WORKER_POOL_PORT"],
        local_expansion_service=f"127.0.0.1:{env['EXPANSION_SERVICE_PORT']}",
    )


def test_every_prerequisite_passes_on_the_local_stack(cfg):
    for name, check in prerequisites.CHECKS.items():
        assert check(cfg), name


def test_prerequisites_name_the_fix_when_something_is_missing(cfg):
    with pytest.raises(prerequisites.PrerequisiteFailed, match="does not exist: create it"):
        prerequisites.buckets(cfg.with_overrides({"archive_bucket": f"no-such-{uuid.uuid4().hex[:8]}"}))
    missing_secret = cfg.kafka_secret_resource_name.replace("kafka-connection", "no-such-secret")
    with pytest.raises(prerequisites.PrerequisiteFailed, match="does not exist"):
        prerequisites.kafka_secret(cfg.with_overrides({"kafka_secret_resource_name": missing_secret}))
    with pytest.raises(prerequisites.PrerequisiteFailed, match="no topic.s. k2f-no-such-topic"):
        prerequisites.kafka_topics(cfg.with_overrides({"topics": f"{cfg.topics},k2f-no-such-topic"}))
    with pytest.raises(prerequisites.PrerequisiteFailed, match="FHIR store not usable"):
        prerequisites.fhir_store(cfg.with_overrides({"fhir_base_url": "http://127.0.0.1:9/fhir"}))


def test_consumer_lag_is_read_from_the_broker(env, cfg, topic):
    producer = Producer({"bootstrap.servers": env["KAFKA_BOOTSTRAP"]})
    for i in range(3):
        producer.produce(topic, value=b"{}", key=str(i).encode())
    assert producer.flush(30) == 0
    kafka = KafkaClient(cfg.kafka_secret_resource_name)
    assert [p.lag for p in kafka.consumer_lag(cfg.kafka_consumer_group, [topic])] == [3]
    with pytest.raises(health.Unhealthy, match="3 message.s. behind"):
        health.consumer_lag(cfg.with_overrides({"health_max_consumer_lag": 2}), datetime.now(UTC), kafka)


def test_fhir_progress_counts_on_hapi_and_no_job_runs_under_a_new_name(cfg):
    assert "Patient resource(s) written" in health.fhir_progress(cfg, datetime.now(UTC) - timedelta(minutes=5))
    assert LocalJobsClient(cfg.local_job_endpoint).active_jobs(cfg.job_name) == []
    with pytest.raises(health.Unhealthy, match="not running"):
        health.job_state(cfg, datetime.now(UTC))


def error_object(topic: str) -> tuple[str, list]:
    records = [
        make_error_record(
            stage="write",
            code="http_503",
            retryable=True,
            detail="server unavailable",
            raw=b'{"Id": "synthetic-%d"}' % i,
            source=KafkaCoordinates(topic, 0, 100 + i, 1735689600000, f"key-{i}"),
            attempt=1,
        )
        for i in range(2)
    ]
    records.append(
        make_error_record(
            stage="write",
            code="http_400",
            retryable=False,
            detail="rejected",
            raw=b'{"Id": "synthetic-bad"}',
            source=KafkaCoordinates(topic, 0, 102, 1735689600000, "key-bad"),
        )
    )
    name = f"errors/stage=write/topic={topic}/date=2025-01-01/20250101T000000-000100-pane000-shard00.ndjson"
    return name, records


def consume(env, topic: str, expected: int, seconds: float = 30.0) -> list:
    consumer = Consumer(
        {"bootstrap.servers": env["KAFKA_BOOTSTRAP"], "group.id": uuid.uuid4().hex, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    got, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline and len(got) < expected:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            got.append(message)
    # A moment more: nothing beyond `expected` may arrive.
    extra = consumer.poll(2.0)
    consumer.close()
    return got + ([extra] if extra is not None and extra.error() is None else [])


def test_replay_publishes_with_headers_moves_objects_and_never_twice(env, cfg, topic):
    bucket = StorageHook().bucket(cfg.error_bucket)
    name, records = error_object(topic)
    bucket.blob(name).upload_from_string("\n".join(r.to_json() for r in records) + "\n")
    prefix = f"errors/stage=write/topic={topic}/"
    producer = KafkaClient(cfg.kafka_secret_resource_name).producer()

    counts = ErrorReplayer(bucket, producer, max_attempts=5).run(prefix)
    assert (counts.objects, counts.replayed, counts.quarantined) == (1, 2, 1)

    messages = consume(env, topic, expected=2)
    assert sorted(m.value() for m in messages) == [b'{"Id": "synthetic-0"}', b'{"Id": "synthetic-1"}']
    headers = dict(sorted(messages, key=lambda m: m.value())[0].headers())
    assert headers[HEADER_ATTEMPT] == b"2" and headers[HEADER_TOPIC] == topic.encode()
    assert headers[HEADER_OFFSET] == b"100"
    assert not bucket.blob(name).exists()
    assert bucket.blob(name.replace("errors/", "replayed/", 1)).exists()
    assert bucket.blob(name.replace("errors/", "quarantine/", 1)).exists()

    # The pipeline rewriting the same object (a retried bundle) must not replay its records again.
    bucket.blob(name).upload_from_string("\n".join(r.to_json() for r in records) + "\n")
    again = ErrorReplayer(bucket, producer, max_attempts=5).run(prefix)
    assert (again.replayed, again.already_replayed) == (0, 2)
    assert len(consume(env, topic, expected=2)) == 2
    for twin in ("replayed", "quarantine"):
        bucket.blob(name.replace("errors/", f"{twin}/", 1)).delete()
