"""The Kafka consumer settings built from the connection secret (beam_pipeline/contracts/kafka_secret.py).

The consumer settings never carry apiKey/apiSecret: they become part of the job graph (KafkaIO's
configuration in the pipeline proto, the template, the job's stored pipeline). Instead the SASL login is a
reference that Kafka's own config.providers mechanism resolves when the client starts on the worker,
through the ConfigProvider in java/kafka-config-provider, which reads the same secret from Secret Manager.
"""

from __future__ import annotations

from beam_pipeline.contracts.kafka_secret import KafkaConnection, KafkaSecretError

# The ConfigProvider (java/kafka-config-provider) and the one key it serves: one definition each.
CONFIG_PROVIDER = "k2fsm"
CONFIG_PROVIDER_CLASS = "dev.k2f.kafka.SecretManagerConfigProvider"
JAAS_KEY = "sasl.jaas.config"
# KafkaIO's consumer polling timeout, whole seconds (Beam's default is 2): a partition's records reach the
# next step only when its poll loop ends, so this bounds the latency from below.
DEFAULT_POLL_TIMEOUT_SECONDS = 1


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
