"""The Dataflow job graph names the Kafka secret but never carries its apiKey/apiSecret.

Built as tests/integration/test_dataflow_graph.py builds it (the original sample's command, a classic
template, staging to the GCS emulator), with an expansion service whose Java environment stages the
Kafka ConfigProvider jar (java/kafka-config-provider), as the Java workers on Dataflow need it. Then
every byte the launcher wrote (the template, the staged pipeline proto, every staged file) is searched
for the secret's credentials, plain and base64.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from apache_beam.portability.api import beam_runner_api_pb2
from google.cloud import storage

from beam_pipeline.kafka.connection import jaas_reference
from dev.local_stack import ROOT, wait_for
from tests.integration.test_dataflow_graph import ORIGINAL_FLAGS, _free_port, _port_open

pytestmark = pytest.mark.integration


def _jar(function: str) -> str:
    """A jar that dev/beam/java.sh builds (cached), by the name of its function there."""
    done = subprocess.run(
        ["bash", "-c", f"source dev/lib.sh && source dev/beam/java.sh && {function}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def provider_jar() -> str:
    return _jar("kafka_config_provider_jar")


@pytest.fixture(scope="module")
def expansion_service(env, provider_jar, tmp_path_factory):
    """KafkaIO's expansion service with Beam's default (Docker) environment, staging the provider jar."""
    port = _free_port()
    libs = Path(env["K2F_CACHE_DIR"]) / "beam-java" / env["BEAM_JAVA_VERSION"] / "libs"
    classpath = f"{libs}/*:{_jar('beam_java_launchers')}:{provider_jar}"
    log = (tmp_path_factory.mktemp("expansion") / "expansion.log").open("w")
    process = subprocess.Popen(
        ["java", "-Xmx512m", "-cp", classpath, "dev.k2f.beam.LoopbackExpansionService", str(port),
         f"--filesToStage={provider_jar}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(lambda: _port_open(port), 60, "the expansion service")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _forms(secret: str) -> list[bytes]:
    """The secret as it could sit in a file: plain, base64 (at each alignment), JSON-escaped."""
    raw = secret.encode()
    forms = [raw, json.dumps(secret)[1:-1].encode()]
    for shift in range(3):
        # Base64 of the secret at each offset modulo 3, without the first and last 4-character groups,
        # which also depend on the bytes around it.
        encoded = base64.b64encode(b"\0" * shift + raw)
        forms.append(encoded[4 if shift else 0 : -4])
    return forms


def test_the_template_names_the_kafka_secret_without_its_credentials(env, tmp_path, expansion_service, provider_jar):
    template = tmp_path / "template.json"
    secret = env["KAFKA_SECRET_RESOURCE"]
    values = {"archive": env["GCS_ARCHIVE_BUCKET"], "errors": env["GCS_ERROR_BUCKET"], "secret": secret}
    flags = [f.format(**values) for f in ORIGINAL_FLAGS]
    command = [sys.executable, "-m", "beam_pipeline.dataflow_kafka_to_fhirstore", *flags,
               f"--template_location={template}", f"--expansion_service={expansion_service}"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT, env={**os.environ})
    assert done.returncode == 0, done.stderr[-3000:]

    job = json.loads(template.read_text())
    options = job["environment"]["sdkPipelineOptions"]["options"]
    bucket, _, name = options["pipelineUrl"].removeprefix("gs://").partition("/")
    client = storage.Client(project="k2f-local")
    proto_bytes = client.bucket(bucket).blob(name).download_as_bytes()
    pipeline = beam_runner_api_pb2.Pipeline.FromString(proto_bytes)
    staging_prefix = name.rsplit("/", 1)[0] + "/"
    staged = {b.name: b.download_as_bytes() for b in client.list_blobs(bucket, prefix=staging_prefix)}
    assert name in staged

    # No form of the credentials anywhere the launcher wrote.
    everything = {"template.json": template.read_bytes(), **staged}
    for credential in (env["KAFKA_SASL_PASSWORD"], f'password="{env["KAFKA_SASL_PASSWORD"]}"'):
        for form in _forms(credential):
            leaks = [path for path, data in everything.items() if form in data]
            assert not leaks, f"a form of the Kafka apiSecret is in {leaks}"

    # KafkaIO's configuration holds the reference the worker resolves, so the read can still log in.
    assert jaas_reference(secret).encode() in proto_bytes

    # The provider jar travels with the job: an artifact of the Java environment, staged for the workers.
    jar_bytes = Path(provider_jar).read_bytes()
    java_envs = [e for e in pipeline.components.environments.values() if b"beam_java" in e.payload]
    assert java_envs, "no Java environment in the graph"
    for environment in java_envs:
        staged_names = [
            beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(a.role_payload).staged_name
            for a in environment.dependencies
        ]
        assert any(n.startswith("kafka-config-provider") for n in staged_names), staged_names
    assert jar_bytes in staged.values(), sorted(staged)
