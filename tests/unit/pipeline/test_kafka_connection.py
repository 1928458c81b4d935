from __future__ import annotations

import json

import pytest

from beam_pipeline.kafka.connection import KafkaSecretError, consumer_config, parse_kafka_secret


def _secret(**kw) -> bytes:
    return json.dumps(kw).encode()


def test_api_key_means_sasl_ssl_plain_as_for_confluent_cloud():
    conn = parse_kafka_secret(_secret(bootstrap_servers="b:9092", apiKey="KEY", apiSecret="s3cret"))
    config = consumer_config(conn, "group-1")
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "PLAIN"
    assert 'username="KEY" password="s3cret";' in config["sasl.jaas.config"]
    assert config["group.id"] == "group-1" and config["bootstrap.servers"] == "b:9092"


def test_local_listener_overrides_the_protocol():
    conn = parse_kafka_secret(
        _secret(bootstrap_servers="b:9094", apiKey="u", apiSecret="p", security_protocol="SASL_PLAINTEXT")
    )
    assert consumer_config(conn, "g")["security.protocol"] == "SASL_PLAINTEXT"


def test_no_credentials_is_plaintext_without_sasl():
    config = consumer_config(parse_kafka_secret(_secret(bootstrap_servers="b:9092")), "g")
    assert config["security.protocol"] == "PLAINTEXT" and "sasl.jaas.config" not in config


def test_extra_properties_win():
    conn = parse_kafka_secret(_secret(bootstrap_servers="b:9092"))
    assert consumer_config(conn, "g", {"auto.offset.reset": "latest"})["auto.offset.reset"] == "latest"


def test_quotes_in_credentials_cannot_break_the_jaas_line():
    conn = parse_kafka_secret(_secret(bootstrap_servers="b", apiKey='a"b', apiSecret="c\\d"))
    assert 'username="a\\"b" password="c\\\\d";' in consumer_config(conn, "g")["sasl.jaas.config"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "JSON object"),
        (_secret(apiKey="k", apiSecret="s"), "bootstrap_servers"),
        (_secret(bootstrap_servers="b", apiKey="k"), "only one of apiKey and apiSecret"),
        (_secret(bootstrap_servers="b", security_protocol="TLS"), "security_protocol"),
    ],
)
def test_bad_secrets_fail_clearly_without_echoing_values(payload, message):
    with pytest.raises(KafkaSecretError, match=message) as excinfo:
        parse_kafka_secret(payload)
    assert "s3cret" not in str(excinfo.value)


def test_the_secret_never_shows_in_repr():
    conn = parse_kafka_secret(_secret(bootstrap_servers="b", apiKey="k", apiSecret="s3cret"))
    assert "s3cret" not in repr(conn)
