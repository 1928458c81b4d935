"""The Kafka consumer settings built from the connection secret (beam_pipeline/contracts/kafka_secret.py).

The consumer settings never carry apiKey/apiSecret: they become part of the job graph (KafkaIO's
configuration in the pipeline proto, the template, the job's stored pipeline). Instead the SASL login is a
reference that Kafka's own config.providers mechanism resolves when the client starts on the worker,
through the ConfigProvider in java/kafka-config-provider, which reads the same secret from Secret Manager.
"""

from __future__ import annotations

from typing import Any

from beam_pipeline.contracts.kafka_secret import KafkaConnection, KafkaSecretError

# The ConfigProvider (java/kafka-config-provider) and the one key it serves: one definition each.
CONFIG_PROVIDER = "k2fsm"
CONFIG_PROVIDER_CLASS = "dev.k2f.kafka.SecretManagerConfigProvider"
JAAS_KEY = "sasl.jaas.config"
# The expansion-service experiment that makes KafkaIO read through its UnboundedSource reader wrapped as a
# splittable DoFn (Beam's option for runners without the legacy Read, such as Dataflow Runner v2) instead
# of its SDF read. The SDF read hands a partition's records to the next step only when its polling loop
# of whole seconds (2 by default, 1 at least) ends, so a message waited half a second on average and a
# second at worst; the wrapped reader hands them on as soon as none is waiting (docs/local-runner.md).
KAFKA_READ_EXPERIMENT = "use_unbounded_sdf_wrapper"


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
        # KafkaIO commits nothing: the job commits once messages have settled (transforms/commit_offsets.py). KafkaIO
        # sets this itself, but a cross-language expansion replaces its consumer config, and the consumer's
        # own auto-commit would commit records read but not yet handed on, which a cancel then loses.
        "enable.auto.commit": "false",
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


def librdkafka_config(connection: KafkaConnection, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """confluent-kafka (librdkafka) settings for the same connection: what Python speaks to Kafka with, on
    workers (the offset commit) and in Airflow. Built where the secret was read; never part of a job graph."""
    config: dict[str, Any] = {
        "bootstrap.servers": connection.bootstrap_servers,
        "security.protocol": connection.security_protocol,
    }
    if connection.api_key:
        config.update(
            {"sasl.mechanisms": "PLAIN", "sasl.username": connection.api_key, "sasl.password": connection.api_secret}
        )
    config.update(extra or {})
    return config
