from __future__ import annotations

import json

import pytest

from beam_pipeline.contracts.kafka_secret import KafkaSecretError, parse_kafka_secret
from beam_pipeline.kafka.connection import consumer_config

NAME = "projects/p/secrets/kafka/versions/latest"


def _secret(**kw) -> bytes:
    return json.dumps(kw).encode()


def test_api_key_means_sasl_ssl_plain_as_for_confluent_cloud():
    conn = parse_kafka_secret(_secret(bootstrap_servers="b:9092", apiKey="KEY", apiSecret="s3cret"))
    config = consumer_config(conn, "group-1", NAME)
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "PLAIN"
    assert config["group.id"] == "group-1" and config["bootstrap.servers"] == "b:9092"


def test_the_login_is_a_reference_the_worker_resolves_never_the_credentials():
    conn = parse_kafka_secret(_secret(bootstrap_servers="b:9092", apiKey="KEY", apiSecret="s3cret"))
    config = consumer_config(conn, "g", NAME)
    assert config["sasl.jaas.config"] == "${k2fsm:projects/p/secrets/kafka/versions/latest:sasl.jaas.config}"
    assert config["config.providers"] == "k2fsm"
    assert config["config.providers.k2fsm.class"] == "dev.k2f.kafka.SecretManagerConfigProvider"
    assert "s3cret" not in json.dumps(config) and "KEY" not in json.dumps(config)


def test_a_secret_name_kafka_cannot_reference_is_refused():
    conn = parse_kafka_secret(_secret(bootstrap_servers="b", apiKey="k", apiSecret="s"))
    with pytest.raises(KafkaSecretError, match="cannot contain"):
        consumer_config(conn, "g", "projects/p/secrets/a:b/versions/1")


def test_local_listener_overrides_the_protocol():
    conn = parse_kafka_secret(
        _secret(bootstrap_servers="b:9094", apiKey="u", apiSecret="p", security_protocol="SASL_PLAINTEXT")
    )
    assert consumer_config(conn, "g", NAME)["security.protocol"] == "SASL_PLAINTEXT"


def test_no_credentials_is_plaintext_without_sasl():
    config = consumer_config(parse_kafka_secret(_secret(bootstrap_servers="b:9092")), "g", NAME)
    assert config["security.protocol"] == "PLAINTEXT" and "sasl.jaas.config" not in config
    assert "config.providers" not in config


def test_offsets_move_only_when_beam_finalizes_the_read_not_on_the_consumers_own_timer():
    config = consumer_config(parse_kafka_secret(_secret(bootstrap_servers="b:9092")), "g", NAME)
    assert config["enable.auto.commit"] == "false"


def test_extra_properties_win():
    conn = parse_kafka_secret(_secret(bootstrap_servers="b:9092"))
    assert consumer_config(conn, "g", NAME, {"auto.offset.reset": "latest"})["auto.offset.reset"] == "latest"


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
