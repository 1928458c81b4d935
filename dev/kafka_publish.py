"""Kafka on the local stack, as a producer sees it: its two listeners, topics, publishing.

Used by `make demo` (dev/demo.py) and the tests (dev/local_stack.py), so both publish alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def kafka_plain(env: Mapping[str, str]) -> dict[str, str]:
    return {"bootstrap.servers": env["KAFKA_BOOTSTRAP"]}


def kafka_sasl(env: Mapping[str, str]) -> dict[str, str]:
    return {
        "bootstrap.servers": env["KAFKA_SASL_BOOTSTRAP"],
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": env["KAFKA_SASL_USER"],
        "sasl.password": env["KAFKA_SASL_PASSWORD"],
    }


def create_topics(conf: Mapping[str, str], topics: Iterable[str], partitions: int = 2) -> None:
    admin = AdminClient(dict(conf))
    futures = admin.create_topics([NewTopic(t, num_partitions=partitions) for t in topics])
    for future in futures.values():
        future.result(timeout=30)


def publish(conf: Mapping[str, str], topic: str, values: Iterable[bytes]) -> int:
    producer = Producer(dict(conf))
    n = 0
    for value in values:
        producer.produce(topic, value=value)
        producer.poll(0)
        n += 1
    assert producer.flush(60) == 0
    return n
