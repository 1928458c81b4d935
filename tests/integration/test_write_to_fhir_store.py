"""WriteToFhirStore in a Beam pipeline against the local HAPI: each message its own outcome, idempotent."""

from __future__ import annotations

import json
import uuid

import apache_beam as beam
import httpx
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from beam_pipeline.contracts.error_record import make_error_record, replay_headers
from beam_pipeline.contracts.outcome import MappedResource
from beam_pipeline.fhir_store import FhirStoreConfig
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms.parse_and_map import MappedMessage
from beam_pipeline.transforms.write import FAILED, WRITTEN, WriteToFhirStore
from launcher.local_stack_flags import local_runner_options
from tests.integration.test_stack_hapi import us_core_patient, validation_on

pytestmark = pytest.mark.integration


def _messages(system: str, n: int, invalid: set[int]) -> list[MappedMessage]:
    out = []
    for i in range(n):
        patient = us_core_patient(system, f"w{i}")
        if i in invalid:
            patient.pop("name")  # US Core requires a name: HAPI rejects it with validation on
        raw = RawMessage("patients", 0, i, 1_795_000_000_000, None, json.dumps({"Id": f"w{i}"}).encode())
        out.append(MappedMessage(raw, (MappedResource(patient, (system, f"w{i}")),)))
    return out


def test_every_message_is_written_or_failed_once_and_replays_do_not_duplicate(env):
    with httpx.Client(base_url=env["FHIR_BASE_URL"], timeout=60) as fhir:
        if not validation_on(fhir):
            pytest.skip("needs HAPI with HAPI_VALIDATE_US_CORE=true")
    system = f"urn:k2f-test:{uuid.uuid4().hex}"
    invalid = {3, 17}
    messages = _messages(system, 40, invalid)
    config = FhirStoreConfig(base_url=env["FHIR_BASE_URL"], bundle_size=16)

    for _ in range(2):  # the second run is a redelivery of the same 40 messages
        # On Prism, the runner local jobs use, so its handling of the Reshuffle and bundles is covered.
        with beam.Pipeline(options=PipelineOptions(local_runner_options(env))) as p:
            results = p | beam.Create(messages) | WriteToFhirStore(config, job_name="test-job")
            assert_that(
                results[WRITTEN] | beam.Map(lambda m: m.offset),
                equal_to([i for i in range(40) if i not in invalid]),
                label="written",
            )
            # Flattened with another step's failures, as the job does: both must be in the global window.
            other = p | "OtherFailures" >> beam.Create([(-1, "parse", "not_json", False)])
            failed = results[FAILED] | beam.Map(
                lambda r: (r.source.offset, r.stage, r.code, r.http_status in (412, 422))
            )
            assert_that(
                (failed, other) | beam.Flatten(),
                equal_to(
                    [(i, "write", "http_error", True) for i in sorted(invalid)] + [(-1, "parse", "not_json", False)]
                ),
                label="failed",
            )

    total = httpx.get(
        f"{env['FHIR_BASE_URL']}/Patient", params={"identifier": f"{system}|", "_summary": "count"}, timeout=60
    ).json()["total"]
    assert total == 38


def _run_write(env, config, messages):
    with beam.Pipeline(options=PipelineOptions(local_runner_options(env))) as p:
        results = p | beam.Create(messages) | WriteToFhirStore(config, job_name="test-job")
        assert_that(results[WRITTEN] | beam.Map(lambda m: m.offset), equal_to([m.message.offset for m in messages]))


def test_a_replayed_older_record_after_a_newer_update_leaves_the_newer_data(env):
    system = f"urn:k2f-test:{uuid.uuid4().hex}"
    config = FhirStoreConfig(base_url=env["FHIR_BASE_URL"], bundle_size=16)
    t0 = 1_795_000_000_000

    def mapped(offset, family, timestamp_ms, headers=()):
        raw = RawMessage("patients", 0, offset, timestamp_ms, None, json.dumps({"Id": "r1"}).encode(), headers)
        return MappedMessage(raw, (MappedResource(us_core_patient(system, "r1", family=family), (system, "r1")),))

    older = mapped(1, "Older", t0)
    _run_write(env, config, [older])
    _run_write(env, config, [mapped(2, "Newer", t0 + 60_000)])
    # The older message comes back through the replay DAG: a new offset and Kafka timestamp, its original
    # coordinates and timestamp in the replay headers.
    record = make_error_record(
        stage="write", code="http_error", retryable=True, detail="synthetic", raw=older.message.value,
        **older.message.error_fields(),
    )  # fmt: skip
    replayed = mapped(3, "Older", t0 + 120_000, tuple(replay_headers(record)))
    _run_write(env, config, [replayed, mapped(4, "Newer", t0 + 60_000)])  # and a redelivery of the newer one

    found = httpx.get(
        f"{env['FHIR_BASE_URL']}/Patient", params={"identifier": f"{system}|r1"}, headers={"Cache-Control": "no-cache"}
    ).json()
    [entry] = found["entry"]
    assert entry["resource"]["name"][0]["family"] == "Newer"
    assert entry["resource"]["meta"]["versionId"] == "2"  # the replay was skipped, the redelivery changed nothing


def test_a_resource_that_cannot_be_encoded_fails_alone_on_prism(env):
    # A `\ud800` escape in a message passes parsing and mapping; encoding the bundle used to fail the
    # runner's bundle, and with it every valid message beside it.
    system = f"urn:k2f-test:{uuid.uuid4().hex}"
    messages = _messages(system, 6, invalid=set())
    poisoned = us_core_patient(system, "w2", family="Lone\ud800Surrogate")
    messages[2] = MappedMessage(messages[2].message, (MappedResource(poisoned, (system, "w2")),))
    config = FhirStoreConfig(base_url=env["FHIR_BASE_URL"], bundle_size=16)
    with beam.Pipeline(options=PipelineOptions(local_runner_options(env))) as p:
        results = p | beam.Create(messages) | WriteToFhirStore(config, job_name="test-job")
        assert_that(results[WRITTEN] | beam.Map(lambda m: m.offset), equal_to([0, 1, 3, 4, 5]), label="written")
        assert_that(
            results[FAILED] | beam.Map(lambda r: (r.source.offset, r.code, r.retryable, "\ud800" in r.detail)),
            equal_to([(2, "invalid_item", False, False)]),
            label="failed",
        )


def test_workers_read_the_fhir_auth_secret_themselves(env):
    # The step carries the secret's name only; the worker pool's SDK harness reads it from Secret Manager
    # (the local stand-in) in setup(). HAPI ignores the bearer token, so the writes landing show the read.
    from beam_pipeline.secret_manager import secret_manager_client

    sm = secret_manager_client()
    secret = sm.create_secret(parent="projects/k2f-local", secret_id=f"fhir-auth-{uuid.uuid4().hex[:12]}", secret={})
    sm.add_secret_version(parent=secret.name, payload={"data": json.dumps({"token": "synthetic-bearer"}).encode()})
    system = f"urn:k2f-test:{uuid.uuid4().hex}"
    flags = {
        "fhir_base_url": env["FHIR_BASE_URL"],
        "fhir_auth": "bearer",
        "fhir_auth_secret_resource_name": f"{secret.name}/versions/latest",
    }
    config = FhirStoreConfig.from_flags(flags)
    assert config.auth.unresolved  # nothing secret in what is pickled
    _run_write(env, config, _messages(system, 3, invalid=set()))
    count = httpx.get(
        f"{env['FHIR_BASE_URL']}/Patient", params={"identifier": f"{system}|", "_summary": "count"}, timeout=60
    ).json()["total"]
    assert count == 3
