"""The KafkaIO expansion service for Dataflow: Beam's own, told which Kafka read to use, with the Kafka
ConfigProvider jar added when the login comes from Secret Manager.

The expansion service, not the pipeline, decides how KafkaIO reads (it takes experiments from its own
command line only), so the launch passes KAFKA_READ_EXPERIMENT to it. KafkaIO runs in Dataflow's Java SDK
container with the jars its expansion service stages, and nothing else. Beam's default expansion service for
ReadFromKafka (its beam-sdks-java-io-expansion-service jar) lacks java/kafka-config-provider, so consumer
settings that name the provider would fail on the workers ("Invalid value
dev.k2f.kafka.SecretManagerConfigProvider ... could not be found"). Beam stages the `classpath` jars of a
JavaJarExpansionService together with the expansion jar (--filesToStage), which is how the provider
reaches the Java workers without a custom container.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from apache_beam.transforms.external import BeamJarExpansionService

from beam_pipeline.kafka.connection import CONFIG_PROVIDER_CLASS, KAFKA_READ_EXPERIMENT

PROVIDER_JAR_ENV = "K2F_KAFKA_CONFIG_PROVIDER_JAR"
IO_EXPANSION_SERVICE = "sdks:java:io:expansion-service:shadowJar"  # Beam's target for ReadFromKafka
EXPANSION_SERVICE_ARGS = (f"--experiments={KAFKA_READ_EXPERIMENT}",)


def kafka_expansion_service(
    consumer_config: Mapping[str, str], env: Mapping[str, str] = os.environ
) -> BeamJarExpansionService:
    """The expansion service a launch without --expansion_service needs."""
    classpath = []
    if CONFIG_PROVIDER_CLASS in consumer_config.values():
        jar = env.get(PROVIDER_JAR_ENV)
        if not jar:
            raise ValueError(
                f"the Kafka login is read on the workers by {CONFIG_PROVIDER_CLASS}: set {PROVIDER_JAR_ENV} to "
                "its jar (built by `mvn package` in java/kafka-config-provider; a local path or an https URL), "
                "or pass --expansion_service with an expansion service that has it"
            )
        classpath.append(jar)
    return BeamJarExpansionService(IO_EXPANSION_SERVICE, classpath=classpath, append_args=list(EXPANSION_SERVICE_ARGS))
