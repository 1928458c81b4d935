"""The local Kafka broker is real: messages go through both listeners, and SASL checks the password."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.integration


def _plain(env: dict[str, str]) -> dict[str, str]:
    return {"bootstrap.servers": env["KAFKA_BOOTSTRAP"]}


def _sasl(env: dict[str, str], password: str | None = None) -> dict[str, str]:
    return {
        "bootstrap.servers": env["KAFKA_SASL_BOOTSTRAP"],
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": env["KAFKA_SASL_USER"],
        "sasl.password": password or env["KAFKA_SASL_PASSWORD"],
    }


def _round_trip(producer_conf: dict[str, str], consumer_conf: dict[str, str], topic: str) -> list[bytes]:
    admin = AdminClient(producer_conf)  # kept alive until the future resolves
    admin.create_topics([NewTopic(topic, num_partitions=1)])[topic].result(timeout=30)
    sent = [f"message-{i}".encode() for i in range(5)]
    producer = Producer(producer_conf)
    for value in sent:
        producer.produce(topic, value=value, key=b"k")
    assert producer.flush(30) == 0
    consumer = Consumer({**consumer_conf, "group.id": f"smoke-{uuid.uuid4()}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    received: list[bytes] = []
    try:
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is None:
                if len(received) == len(sent):
                    break
                continue
            assert msg.error() is None, msg.error()
            received.append(msg.value())
    finally:
        consumer.close()
    assert received == sent
    return received


def test_plaintext_listener_round_trip(env):
    _round_trip(_plain(env), _plain(env), f"smoke-plain-{uuid.uuid4().hex[:8]}")


def test_sasl_listener_round_trip(env):
    _round_trip(_sasl(env), _sasl(env), f"smoke-sasl-{uuid.uuid4().hex[:8]}")


def test_produced_on_plaintext_is_read_through_sasl(env):
    # One broker, two doors: the SASL path reads what the plaintext path wrote.
    _round_trip(_plain(env), _sasl(env), f"smoke-both-{uuid.uuid4().hex[:8]}")


def test_sasl_listener_rejects_a_wrong_password(env):
    errors: list[KafkaError] = []
    producer = Producer({**_sasl(env, password="not-the-password"), "error_cb": errors.append, "log_level": 0})
    for _ in range(20):
        producer.poll(0.5)
        if errors:
            break
    # The broker answers with an authentication failure, not a timeout: SASL really checks the password.
    assert errors and errors[0].code() == KafkaError._AUTHENTICATION
