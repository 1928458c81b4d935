"""The job graph builds for Dataflow without submitting it: a classic template, with the original flags.

Google cannot be reached here, so the launcher writes a classic template to a local path and stages to
the GCS emulator; the test reads back the staged pipeline proto and checks what Dataflow would run.
The KafkaIO read is expanded by a Java expansion service with Beam's default (Docker) environment, the
one Dataflow uses, started by this test on the local Beam Java classpath.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from apache_beam.portability.api import beam_runner_api_pb2
from google.cloud import storage

from tests.support.local_stack import ROOT, wait_for

pytestmark = pytest.mark.integration

# The command of the original sample, unchanged, plus where to write the template.
ORIGINAL_FLAGS = [
    "--runner", "DataflowRunner", "--project", "k2f-local", "--region", "us-central1",
    "--temp_location", "gs://{archive}/dataflow-tmp", "--no_use_public_ips",
    "--subnet", "regions/us-central1/subnetworks/k2f", "--topics", "patients",
    "--kafka_secret_resource_name", "{secret}", "--hcapi_project_id", "k2f-local",
    "--hcapi_dataset", "k2f-dataset", "--hcapi_version", "v1", "--hcapi_location", "us-central1",
    "--hcapi_get_fhir_store", "k2f-store", "--hcapi_post_fhir_store", "k2f-store",
    "--gcs_archive_bucket", "{archive}", "--gcs_error_bucket", "{errors}", "--max_num_workers", "2",
    "--streaming", "--save_main_session", "--requirements_file", "requirements.txt",
]  # fmt: skip
STEPS = ["ReadFromKafka", "ArchiveRaw", "ParseAndValidate", "MapToFhir", "WriteToFhirStore", "AllFailures"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def docker_env_expansion_service(env, tmp_path_factory):
    port = _free_port()
    libs = Path(env["K2F_CACHE_DIR"]) / "beam-java" / env["BEAM_JAVA_VERSION"] / "libs"
    log = (tmp_path_factory.mktemp("expansion") / "expansion.log").open("w")
    process = subprocess.Popen(
        ["java", "-Xmx512m", "-cp", f"{libs}/*", "org.apache.beam.sdk.expansion.service.ExpansionService",
         str(port), f"--filesToStage={ROOT / 'dev/beam/pom.xml'}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(lambda: _port_open(port), 60, "the expansion service")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_original_flags_build_a_dataflow_streaming_graph(env, tmp_path, docker_env_expansion_service):
    template = tmp_path / "template.json"
    values = {
        "archive": env["GCS_ARCHIVE_BUCKET"],
        "errors": env["GCS_ERROR_BUCKET"],
        "secret": env["KAFKA_SECRET_RESOURCE"],
    }
    flags = [f.format(**values) for f in ORIGINAL_FLAGS]
    command = [sys.executable, "-m", "beam_pipeline.dataflow_kafka_to_fhirstore", *flags,
               f"--template_location={template}", f"--expansion_service={docker_env_expansion_service}"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT, env={**os.environ})
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["template_location"] == str(template)

    job = json.loads(template.read_text())
    assert job["type"] == "JOB_TYPE_STREAMING"
    pool = job["environment"]["workerPools"][0]
    assert pool["autoscalingSettings"]["maxNumWorkers"] == 2
    assert pool["ipConfiguration"] == "WORKER_IP_PRIVATE"  # --no_use_public_ips
    assert pool["subnetwork"] == "regions/us-central1/subnetworks/k2f"  # --subnet, Beam's --subnetwork
    staged = {p["name"] for p in pool["packages"]}
    assert {"workflow.tar.gz", "requirements.txt", "pickled_main_session"} <= staged  # the package, via setup.py
    images = [i["containerImage"] for i in pool["sdkHarnessContainerImages"]]
    assert any("beam_python3.11_sdk" in i for i in images) and any("beam_java" in i for i in images)
    options = job["environment"]["sdkPipelineOptions"]["options"]
    assert options["job_name"] == "kafka-to-fhir" and options["hcapi_post_fhir_store"] == "k2f-store"

    bucket, _, name = options["pipelineUrl"].removeprefix("gs://").partition("/")
    pipeline = beam_runner_api_pb2.Pipeline.FromString(
        storage.Client(project="k2f-local").bucket(bucket).blob(name).download_as_bytes()
    )
    transforms = pipeline.components.transforms
    [root] = pipeline.root_transform_ids
    assert [transforms[t].unique_name for t in transforms[root].subtransforms][:6] == STEPS
    kafka = [t for t in transforms.values() if t.unique_name.startswith("ReadFromKafka/KafkaIO/") and t.environment_id]
    assert kafka, "the KafkaIO read was not expanded into the graph"
    for t in kafka:  # the cross-language read runs in Beam's Java SDK container
        environment = pipeline.components.environments[t.environment_id]
        payload = beam_runner_api_pb2.DockerPayload.FromString(environment.payload)
        assert "beam_java" in payload.container_image
    assert {e.urn for e in pipeline.components.environments.values()} == {"beam:env:docker:v1"}
