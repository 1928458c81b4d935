"""What the integration tests and the benchmarks do to the local stack: publish, launch jobs, read buckets,
restart HAPI, ask whether it validates US Core."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, TopicPartition
from google.cloud import storage

from dev.fhir_samples import US_CORE_PATIENT
from dev.kafka_publish import create_topics as create_topics
from dev.kafka_publish import kafka_plain as kafka_plain
from dev.kafka_publish import kafka_sasl as kafka_sasl
from dev.kafka_publish import publish as publish
from launcher.job_service import JobServiceClient
from launcher.local_stack_flags import LocalStack, as_argv, local_expansion_service, local_runner_options

ROOT = Path(__file__).resolve().parents[1]


def wait_for(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


def validation_on(fhir: httpx.Client) -> bool:
    """Does HAPI enforce US Core (HAPI_VALIDATE_US_CORE=true)? A bare Patient claiming the profile is
    refused only then. `fhir` has the FHIR base URL as its base_url."""
    probe = {"resourceType": "Patient", "meta": {"profile": [US_CORE_PATIENT]}}
    return fhir.post("Patient", json=probe).status_code in (400, 412, 422)


def group_offsets(
    conf: Mapping[str, str], group: str, topics: Iterable[str], partitions: int = 2
) -> dict[tuple[str, int], tuple[int, int]]:
    """{(topic, partition): (the consumer group's committed offset, the partition's end offset)}.

    A partition the group never committed reads as a negative offset (librdkafka's OFFSET_INVALID).
    """
    consumer = Consumer({**conf, "group.id": group, "enable.auto.commit": False})
    try:
        wanted = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        return {
            (tp.topic, tp.partition): (tp.offset, consumer.get_watermark_offsets(tp, timeout=10)[1])
            for tp in consumer.committed(wanted, timeout=10)
        }
    finally:
        consumer.close()


def fhir_count(env: Mapping[str, str], system: str, resource: str = "Patient") -> int:
    response = httpx.get(
        f"{env['FHIR_BASE_URL']}/{resource}",
        params={"identifier": f"{system}|", "_summary": "count"},
        # HAPI answers a repeated search from its result cache for up to 60 s; a poll must see writes now.
        headers={"Cache-Control": "no-cache"},
        timeout=60,
    )
    response.raise_for_status()
    return int(response.json()["total"])


def stored_resources(
    env: Mapping[str, str], system: str, resource: str = "Patient", elements: str = "identifier,meta"
) -> list[dict[str, Any]]:
    """Every stored resource of the type with an identifier of `system` (only `elements`), page after page."""
    out: list[dict[str, Any]] = []
    url: str | None = f"{env['FHIR_BASE_URL']}/{resource}"
    params: dict | None = {"identifier": f"{system}|", "_elements": elements, "_count": 1000}
    # HAPI answers a repeated search from its result cache for up to 60 s: a second reading would see the first.
    with httpx.Client(timeout=120, headers={"Cache-Control": "no-cache"}) as http:
        while url:
            response = http.get(url, params=params)
            response.raise_for_status()
            page = response.json()
            params = None
            out.extend(entry["resource"] for entry in page.get("entry", []))
            url = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), None)
    return out


def write_patients(env: Mapping[str, str], rows: Sequence[bytes], system: str, source_time_ms: int | None) -> None:
    """The rows' resources (shipped mappings) written straight to the store with the FHIR store client, as
    messages from `source_time_ms` would write them (None: unguarded, as the benchmarks' ceiling)."""
    from beam_pipeline.fhir_store import FhirStoreClient, FhirStoreConfig, WriteItem
    from beam_pipeline.us_core import Ok, TransformConfig, transform

    config = TransformConfig(source_id_system=system, structural_validation=False)
    items = []
    for row in rows:
        result = transform(row, config=config)
        assert isinstance(result, Ok), result
        items.extend(WriteItem(r.resource, r.identifier, source_time_ms=source_time_ms) for r in result.resources)
    with FhirStoreClient(FhirStoreConfig(base_url=env["FHIR_BASE_URL"])) as client:
        failed = [o.error for o in client.write(items) if not o.ok]
    assert not failed, failed[:3]


def run_reprocess(
    env: Mapping[str, str], job_name: str, *flags: str, loopback: bool = False, timeout: float = 1800
) -> tuple[dict[str, Any], float]:
    """Run `python -m beam_pipeline.reprocess` on the local runner until its job ends: its summary (the last
    line it prints) and the seconds the command took. `loopback` runs the job's Python steps in the command's
    own process (this checkout's code) instead of on the stack's worker pool."""
    options = LocalStack.from_env(env).runner_options()
    if loopback:
        options.pop("environment_config")
        options["environment_type"] = "LOOPBACK"
    command = [
        sys.executable,
        "-m",
        "beam_pipeline.reprocess",
        *as_argv(options),
        f"--job_name={job_name}",
        f"--gcs_archive_bucket={env['GCS_ARCHIVE_BUCKET']}",
        f"--gcs_error_bucket={env['GCS_ERROR_BUCKET']}",
        f"--fhir_base_url={env['FHIR_BASE_URL']}",
        *flags,
    ]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **env})
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), seconds


def ndjson_lines(bucket: str, prefix: str) -> list[dict[str, Any]]:
    """Every line of every object under gs://bucket/prefix (the local GCS emulator)."""
    client = storage.Client(project="k2f-local")
    lines = []
    for blob in client.list_blobs(bucket, prefix=prefix):
        lines.extend(json.loads(line) for line in blob.download_as_text().splitlines() if line)
    return lines


def launch_local_job(env: Mapping[str, str], job_name: str, topics: list[str], *flags: str) -> str:
    """Start the streaming job on the local runner through its command line; returns the job id."""
    command = [
        sys.executable,
        "-m",
        "beam_pipeline.dataflow_kafka_to_fhirstore",
        *local_runner_options(env, streaming=True),
        f"--expansion_service={local_expansion_service(env)}",
        f"--job_name={job_name}",
        f"--topics={','.join(topics)}",
        f"--kafka_secret_resource_name={env['KAFKA_SECRET_RESOURCE']}",
        f"--fhir_base_url={env['FHIR_BASE_URL']}",
        f"--gcs_archive_bucket={env['GCS_ARCHIVE_BUCKET']}",
        f"--gcs_error_bucket={env['GCS_ERROR_BUCKET']}",
        *flags,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["job_id"]


def cancel_job(env: Mapping[str, str], job_id: str, timeout: float = 60) -> str:
    with JobServiceClient(env["PRISM_ENDPOINT"]) as jobs:
        if jobs.state(job_id) not in ("CANCELLED", "DONE", "FAILED"):
            jobs.cancel(job_id)
        return jobs.wait_for(job_id, {"CANCELLED"}, timeout)


def job_state(env: Mapping[str, str], job_id: str) -> str:
    with JobServiceClient(env["PRISM_ENDPOINT"]) as jobs:
        return jobs.state(job_id)
