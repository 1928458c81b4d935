"""The Kafka connection secret (docs/contracts.md, contract 2): its shape, parsed into a KafkaConnection.

Secret payload: {"bootstrap_servers": "...", "apiKey": "...", "apiSecret": "..."}, as in the original
sample. apiKey/apiSecret present means SASL PLAIN over TLS (SASL_SSL), as for Confluent Cloud. The
optional "security_protocol" overrides that, e.g. SASL_PLAINTEXT for the local stack's listener.

The launcher turns it into KafkaIO's consumer settings (beam_pipeline/kafka/connection.py); the Airflow
side into confluent-kafka's (plugins/k2f_airflow/kafka_client.py).
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
