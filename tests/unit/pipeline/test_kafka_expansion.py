from __future__ import annotations

import json

import pytest

from beam_pipeline.contracts.kafka_secret import parse_kafka_secret
from beam_pipeline.kafka.connection import KAFKA_READ_EXPERIMENT, consumer_config
from beam_pipeline.kafka.expansion import PROVIDER_JAR_ENV, kafka_expansion_service

NAME = "projects/p/secrets/kafka/versions/latest"


def _config(**secret: str) -> dict[str, str]:
    return consumer_config(parse_kafka_secret(json.dumps(secret)), "g", NAME)


def test_without_credentials_beam_io_expansion_service_is_told_which_kafka_read_to_use():
    service = kafka_expansion_service(_config(bootstrap_servers="b:9092"), env={})
    args = service._default_args() + service._append_args  # noqa: SLF001
    assert f"--experiments={KAFKA_READ_EXPERIMENT}" in args
    assert "beam-sdks-java-io-expansion-service" in service.path_to_jar
    assert not service._classpath  # noqa: SLF001


def test_with_credentials_the_experiment_is_passed_beside_the_provider_jar(tmp_path):
    jar = tmp_path / "kafka-config-provider.jar"
    jar.write_bytes(b"PK")
    service = kafka_expansion_service(
        _config(bootstrap_servers="b", apiKey="k", apiSecret="s"), env={PROVIDER_JAR_ENV: str(jar)}
    )
    assert service._append_args == [f"--experiments={KAFKA_READ_EXPERIMENT}"]  # noqa: SLF001


def test_the_provider_jar_is_staged_with_beam_io_expansion_service(tmp_path):
    jar = tmp_path / "kafka-config-provider.jar"
    jar.write_bytes(b"PK")
    service = kafka_expansion_service(
        _config(bootstrap_servers="b", apiKey="k", apiSecret="s"), env={PROVIDER_JAR_ENV: str(jar)}
    )
    [files_to_stage] = [a for a in service._default_args() if a.startswith("--filesToStage=")]  # noqa: SLF001
    staged = files_to_stage.removeprefix("--filesToStage=").split(",")
    assert "beam-sdks-java-io-expansion-service" in staged[0] and staged[1:] == [str(jar)]


def test_credentials_without_the_provider_jar_fail_before_launch_naming_the_fix():
    with pytest.raises(ValueError, match=PROVIDER_JAR_ENV):
        kafka_expansion_service(_config(bootstrap_servers="b", apiKey="k", apiSecret="s"), env={})
