"""The job graph builds for Dataflow without submitting it: a classic template, with the original flags.

Google cannot be reached here, so the launcher writes a classic template to a local path and stages to
the GCS emulator; the tests read back the staged pipeline proto and check what Dataflow would run.
The KafkaIO read is expanded by a Java expansion service with Beam's default (Docker) environment, the
one Dataflow uses, started by this module on the local Beam Java classpath with the arguments the launch
gives Beam's own (EXPANSION_SERVICE_ARGS), staging the Kafka ConfigProvider jar (java/kafka-config-provider)
as the Java workers on Dataflow need it. One build serves every test: it also has FHIR credentials in
Secret Manager and the retry topic, and the credential tests search every byte the launcher wrote (the
template, the staged pipeline proto, every staged file) for the FHIR store's and the Kafka secret's
credentials, in any form.
"""

from __future__ import annotations

import base64
import bz2
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import uuid
import zlib
from pathlib import Path

import pytest
from apache_beam.internal import pickler
from apache_beam.portability.api import beam_runner_api_pb2
from google.cloud import storage

from beam_pipeline.kafka.connection import jaas_reference
from beam_pipeline.kafka.expansion import EXPANSION_SERVICE_ARGS
from dev.local_stack import ROOT, wait_for

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
def docker_env_expansion_service(env, tmp_path_factory, provider_jar):
    """KafkaIO's expansion service (on 127.0.0.1) with Beam's default (Docker) environment, staging the
    provider jar."""
    port = _free_port()
    libs = Path(env["K2F_CACHE_DIR"]) / "beam-java" / env["BEAM_JAVA_VERSION"] / "libs"
    classpath = f"{libs}/*:{_jar('beam_java_launchers')}:{provider_jar}"
    log = (tmp_path_factory.mktemp("expansion") / "expansion.log").open("w")
    process = subprocess.Popen(
        ["java", "-Xmx512m", "-cp", classpath, "dev.k2f.beam.LoopbackExpansionService", str(port),
         f"--filesToStage={provider_jar}", *EXPANSION_SERVICE_ARGS],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(lambda: _port_open(port), 60, "the expansion service")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def template_build(env, tmp_path_factory, docker_env_expansion_service):
    """One build for both tests: the original command, plus a FHIR server whose credentials are in Secret
    Manager and the job's retry topic. Returns (the launcher's run, the template's path, the secret's name)."""
    secret_name = _fhir_auth_secret()
    template = tmp_path_factory.mktemp("template") / "template.json"
    values = {
        "archive": env["GCS_ARCHIVE_BUCKET"],
        "errors": env["GCS_ERROR_BUCKET"],
        "secret": env["KAFKA_SECRET_RESOURCE"],
    }
    flags = [f.format(**values) for f in ORIGINAL_FLAGS]
    flags += ["--fhir_base_url", "https://fhir.k2f.test/fhir", "--fhir_auth", "oauth2",
              "--fhir_auth_secret_resource_name", secret_name, "--reference_retry_topic", "patients-retry"]  # fmt: skip
    command = [sys.executable, "-m", "beam_pipeline.dataflow_kafka_to_fhirstore", *flags,
               f"--template_location={template}", f"--expansion_service={docker_env_expansion_service}"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT, env={**os.environ})
    assert done.returncode == 0, done.stderr[-3000:]
    return done, template, secret_name


def test_original_flags_build_a_dataflow_streaming_graph(template_build):
    done, template, _ = template_build
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
    steps = [transforms[t].unique_name for t in transforms[root].subtransforms]
    assert [t for t in steps if t in STEPS] == STEPS
    # The retry topic's own read, its wait, and the step that sends unresolved rows to it.
    assert steps.index("ReadRetryTopic") < steps.index("AwaitRetryDue") < steps.index("ArchiveRaw")
    assert steps.index("AllFailures") < steps.index("RetryUnresolvedReferences") < steps.index("DeadLetter")
    kafka = [t for t in transforms.values() if t.unique_name.startswith("ReadFromKafka/KafkaIO/") and t.environment_id]
    assert kafka, "the KafkaIO read was not expanded into the graph"
    # The arguments a launch without --expansion_service gives Beam's own: KafkaIO's UnboundedSource reader.
    assert any("ReadFromKafkaViaUnbounded" in t.unique_name for t in kafka)
    for t in kafka:  # the cross-language read runs in Beam's Java SDK container
        environment = pipeline.components.environments[t.environment_id]
        payload = beam_runner_api_pb2.DockerPayload.FromString(environment.payload)
        assert "beam_java" in payload.container_image
    assert {e.urn for e in pipeline.components.environments.values()} == {"beam:env:docker:v1"}


# Synthetic credentials that must appear nowhere in what Dataflow stores: the template, the pipeline proto,
# the staged files, the pickled DoFns.
FHIR_CREDENTIALS = {
    "token_url": "https://idp.k2f.test/oauth2/token",
    "client_id": "k2f-graph-test-client",
    "client_secret": "cs-5b8e0c3a-graph-test-secret",
    "token": "tok-91d4e7f2-graph-test-bearer",
    "username": "k2f-graph-test-user",
    "password": "pw-c0ffee42-graph-test-password",
}
SECRET_VALUES = ("client_secret", "token", "password")


def _forms(secret: str) -> list[bytes]:
    """The secret as plain text and in every base64 alignment (a base64 of a larger string contains one of
    these), plus the HTTP Basic header value."""
    forms = [secret.encode()]
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * pad + secret.encode())[4 if pad else 0 :]
            forms.append(encoded[: len(encoded) - 4])  # drop the edges the neighbouring bytes would change
    basic = f"{FHIR_CREDENTIALS['username']}:{FHIR_CREDENTIALS['password']}".encode()
    forms.append(base64.b64encode(basic))
    return forms


def _leaks(blob: bytes) -> list[str]:
    found = []
    for name in SECRET_VALUES:
        if any(form in blob for form in _forms(FHIR_CREDENTIALS[name])):
            found.append(name)
    return found


def _unpickled_strings(obj: object, seen: set[int] | None = None, depth: int = 0) -> list[str]:
    """Every str reachable from an unpickled object (attributes, containers), to search the DoFns' state."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 40:
        return []
    seen.add(id(obj))
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, bytes):
        return [obj.decode("latin-1")]
    children: list[object] = []
    if isinstance(obj, dict):
        children = [*obj.keys(), *obj.values()]
    elif isinstance(obj, list | tuple | set | frozenset):
        children = list(obj)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        children = list(vars(obj).values())
    elif hasattr(obj, "__dataclass_fields__"):
        children = [getattr(obj, f, None) for f in obj.__dataclass_fields__]
    strings: list[str] = []
    for child in children:
        strings.extend(_unpickled_strings(child, seen, depth + 1))
    return strings


def _decompress(data: bytes) -> bytes:
    """A pickled DoFn's bytes: Beam's pickler compresses with bz2 (zlib in older releases)."""
    return bz2.decompress(data) if data.startswith(b"BZh") else zlib.decompress(data)


def _fhir_auth_secret() -> str:
    from beam_pipeline.secret_manager import secret_manager_client

    client = secret_manager_client()
    created = client.create_secret(
        parent="projects/k2f-local", secret_id=f"fhir-auth-graph-{uuid.uuid4().hex[:12]}", secret={}
    )
    client.add_secret_version(parent=created.name, payload={"data": json.dumps(FHIR_CREDENTIALS).encode()})
    return f"{created.name}/versions/latest"


def test_no_fhir_credential_is_in_the_dataflow_template_in_any_form(template_build):
    done, template, secret_name = template_build
    assert not _leaks((done.stdout + done.stderr).encode())

    text = template.read_bytes()
    assert not _leaks(text), "a FHIR credential is in the template"
    job = json.loads(text)
    options = job["environment"]["sdkPipelineOptions"]["options"]
    assert options["fhir_auth_secret_resource_name"] == secret_name  # the name travels, nothing else

    gcs = storage.Client(project="k2f-local")
    bucket, _, name = options["pipelineUrl"].removeprefix("gs://").partition("/")
    proto_bytes = gcs.bucket(bucket).blob(name).download_as_bytes()
    assert not _leaks(proto_bytes), "a FHIR credential is in the pipeline proto"
    for package in job["environment"]["workerPools"][0]["packages"]:  # pickled_main_session, the package...
        location = package["location"].removeprefix("storage.googleapis.com/").removeprefix("gs://")
        pkg_bucket, _, pkg_name = location.partition("/")
        blob = gcs.bucket(pkg_bucket).blob(pkg_name).download_as_bytes()
        assert not _leaks(blob), f"a FHIR credential is in the staged {package['name']}"
        if package["name"].endswith((".tar.gz", ".tgz")):
            with tarfile.open(fileobj=io.BytesIO(blob)) as archive:
                for member in archive.getmembers():
                    data = archive.extractfile(member)
                    assert data is None or not _leaks(data.read()), f"a FHIR credential is in {member.name}"

    pipeline = beam_runner_api_pb2.Pipeline.FromString(proto_bytes)
    write_fns = 0
    for transform in pipeline.components.transforms.values():
        if transform.spec.urn != "beam:transform:pardo:v1":
            continue
        payload = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload)
        if not payload.do_fn.payload:
            continue
        try:
            raw = _decompress(base64.b64decode(payload.do_fn.payload))
            fn = pickler.loads(payload.do_fn.payload)
        except Exception:  # noqa: BLE001  (a Java DoFn: its bytes are in the proto, searched above)
            assert "WriteToFhirStore" not in transform.unique_name
            continue
        assert not _leaks(raw), f"a FHIR credential is pickled in {transform.unique_name}"
        strings = "\n".join(_unpickled_strings(fn)).encode("utf-8", "surrogatepass")
        assert not _leaks(strings), f"a FHIR credential is inside the unpickled DoFn of {transform.unique_name}"
        write_fns += "WriteToFhirStore/WriteBundles" in transform.unique_name
        if "WriteToFhirStore/WriteBundles" in transform.unique_name:
            assert secret_name in strings.decode("utf-8", "surrogatepass")
    assert write_fns == 1, "the write step's DoFn was not found in the graph"


def _kafka_forms(secret: str) -> list[bytes]:
    """The secret as it could sit in a file: plain, base64 (at each alignment), JSON-escaped."""
    raw = secret.encode()
    forms = [raw, json.dumps(secret)[1:-1].encode()]
    for shift in range(3):
        # Base64 of the secret at each offset modulo 3, without the first and last 4-character groups,
        # which also depend on the bytes around it.
        encoded = base64.b64encode(b"\0" * shift + raw)
        forms.append(encoded[4 if shift else 0 : -4])
    return forms


def test_the_template_names_the_kafka_secret_without_its_credentials(env, template_build, provider_jar):
    done, template, _ = template_build
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
    everything = {"launcher output": (done.stdout + done.stderr).encode(), "template.json": template.read_bytes()}
    everything.update(staged)
    for credential in (env["KAFKA_SASL_PASSWORD"], f'password="{env["KAFKA_SASL_PASSWORD"]}"'):
        for form in _kafka_forms(credential):
            leaks = [path for path, data in everything.items() if form in data]
            assert not leaks, f"a form of the Kafka apiSecret is in {leaks}"

    # KafkaIO's configuration holds the reference the worker resolves, so the read can still log in.
    assert jaas_reference(env["KAFKA_SECRET_RESOURCE"]).encode() in proto_bytes

    # The provider jar travels with the job: an artifact of the Java environment, staged for the workers.
    java_envs = [e for e in pipeline.components.environments.values() if b"beam_java" in e.payload]
    assert java_envs, "no Java environment in the graph"
    for environment in java_envs:
        staged_names = [
            beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(a.role_payload).staged_name
            for a in environment.dependencies
        ]
        assert any(n.startswith("kafka-config-provider") for n in staged_names), staged_names
