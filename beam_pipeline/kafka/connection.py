"""The Kafka connection secret (docs/contracts.md, contract 2) and the consumer settings built from it.

Secret payload: {"bootstrap_servers": "...", "apiKey": "...", "apiSecret": "..."}, as in the original
sample. apiKey/apiSecret present means SASL PLAIN over TLS (SASL_SSL), as for Confluent Cloud. The
optional "security_protocol" overrides that, e.g. SASL_PLAINTEXT for the local stack's listener.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

PROTOCOLS = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}


class KafkaSecretError(ValueError):
    """The secret is unusable; the message names the problem, never a secret value."""


@dataclass(frozen=True)
class KafkaConnection:
    bootstrap_servers: str
    api_key: str | None = None
    api_secret: str | None = field(default=None, repr=False)
    security_protocol: str = "PLAINTEXT"


def parse_kafka_secret(payload: bytes | str) -> KafkaConnection:
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KafkaSecretError('the Kafka secret is not JSON; expected {"bootstrap_servers": ...}') from None
    if not isinstance(data, dict):
        raise KafkaSecretError("the Kafka secret must be a JSON object")
    servers = data.get("bootstrap_servers")
    if not isinstance(servers, str) or not servers.strip():
        raise KafkaSecretError("the Kafka secret has no bootstrap_servers")
    key, secret = data.get("apiKey"), data.get("apiSecret")
    if bool(key) != bool(secret):
        raise KafkaSecretError("the Kafka secret has only one of apiKey and apiSecret; set both or neither")
    protocol = data.get("security_protocol") or ("SASL_SSL" if key else "PLAINTEXT")
    if protocol not in PROTOCOLS:
        raise KafkaSecretError(f"security_protocol must be one of {sorted(PROTOCOLS)}")
    if key and not protocol.startswith("SASL_"):
        raise KafkaSecretError("apiKey/apiSecret need a SASL_* security_protocol")
    return KafkaConnection(servers.strip(), key or None, secret or None, protocol)


def consumer_config(
    connection: KafkaConnection, group_id: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """Java Kafka consumer properties for ReadFromKafka (KafkaIO runs the Java client)."""
    config = {
        "bootstrap.servers": connection.bootstrap_servers,
        "security.protocol": connection.security_protocol,
        "group.id": group_id,
        # A new consumer group starts at the beginning: nothing published before the first run is skipped.
        "auto.offset.reset": "earliest",
    }
    if connection.api_key:
        config["sasl.mechanism"] = "PLAIN"
        user, password = _jaas_escape(connection.api_key), _jaas_escape(connection.api_secret or "")
        config["sasl.jaas.config"] = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{user}" password="{password}";'
        )
    config.update(extra or {})
    return config


def _jaas_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
