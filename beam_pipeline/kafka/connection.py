"""The Kafka connection secret (docs/contracts.md, contract 2) and the consumer settings built from it.

Secret payload: {"bootstrap_servers": "...", "apiKey": "...", "apiSecret": "..."}, as in the original
sample. apiKey/apiSecret present means SASL PLAIN over TLS (SASL_SSL), as for Confluent Cloud. The
optional "security_protocol" overrides that, e.g. SASL_PLAINTEXT for the local stack's listener.

The consumer settings never carry apiKey/apiSecret: they become part of the job graph (KafkaIO's
configuration in the pipeline proto, the template, the job's stored pipeline). Instead the SASL login is a
reference that Kafka's own config.providers mechanism resolves when the client starts on the worker,
through the ConfigProvider in java/kafka-config-provider, which reads the same secret from Secret Manager.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

PROTOCOLS = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}
# The ConfigProvider (java/kafka-config-provider) and the one key it serves: one definition each.
CONFIG_PROVIDER = "k2fsm"
CONFIG_PROVIDER_CLASS = "dev.k2f.kafka.SecretManagerConfigProvider"
JAAS_KEY = "sasl.jaas.config"


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
    connection: KafkaConnection, group_id: str, secret_resource_name: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """Java Kafka consumer properties for ReadFromKafka (KafkaIO runs the Java client).

    `secret_resource_name` names the secret `connection` was read from: with apiKey/apiSecret, the workers
    read the login from it when the Kafka client starts.
    """
    config = {
        "bootstrap.servers": connection.bootstrap_servers,
        "security.protocol": connection.security_protocol,
        "group.id": group_id,
        # A new consumer group starts at the beginning: nothing published before the first run is skipped.
        "auto.offset.reset": "earliest",
    }
    if connection.api_key:
        config["sasl.mechanism"] = "PLAIN"
        config["config.providers"] = CONFIG_PROVIDER
        config[f"config.providers.{CONFIG_PROVIDER}.class"] = CONFIG_PROVIDER_CLASS
        config[JAAS_KEY] = jaas_reference(secret_resource_name)
    config.update(extra or {})
    return config


def jaas_reference(secret_resource_name: str) -> str:
    """`${k2fsm:projects/P/secrets/S/versions/V:sasl.jaas.config}`, resolved by the Kafka client on the worker."""
    if ":" in secret_resource_name or "}" in secret_resource_name:
        # Kafka's variable syntax (${provider:path:key}) has no escaping.
        raise KafkaSecretError("the Kafka secret's resource name cannot contain ':' or '}'")
    return f"${{{CONFIG_PROVIDER}:{secret_resource_name}:{JAAS_KEY}}}"
