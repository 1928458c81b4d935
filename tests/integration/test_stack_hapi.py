"""The local HAPI FHIR JPA server is real: it persists, searches, updates conditionally, runs batch and
transaction bundles, and (with HAPI_VALIDATE_US_CORE=true, as `make test` starts it) rejects resources
that fail US Core 6.1.0."""

from __future__ import annotations

import uuid

import httpx
import pytest

from beam_pipeline.us_core.terminology import US_CORE_PATIENT
from dev.local_stack import validation_on

pytestmark = pytest.mark.integration

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module")
def fhir(env):
    with httpx.Client(base_url=env["FHIR_BASE_URL"], headers=FHIR_JSON, timeout=60) as client:
        yield client


@pytest.fixture
def system():
    # A fresh identifier system per test keeps reruns independent of what earlier runs stored.
    return f"urn:k2f-test:{uuid.uuid4().hex}"


def us_core_patient(system: str, value: str, family: str = "Testperson") -> dict:
    return {
        "resourceType": "Patient",
        "meta": {"profile": [US_CORE_PATIENT]},
        "identifier": [{"system": system, "value": value}],
        "name": [{"family": family, "given": ["Synthetic"]}],
        "gender": "female",
        "birthDate": "1980-01-02",
        "address": [{"line": ["1 Test St"], "city": "Boston", "state": "MA", "postalCode": "02115"}],
        "extension": [
            {
                "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                "extension": [
                    {
                        "url": "ombCategory",
                        "valueCoding": {
                            "system": "urn:oid:2.16.840.1.113883.6.238",
                            "code": "2106-3",
                            "display": "White",
                        },
                    },
                    {"url": "text", "valueString": "White"},
                ],
            }
        ],
    }


def count(fhir: httpx.Client, system: str) -> int:
    return fhir.get("Patient", params={"identifier": f"{system}|", "_summary": "count"}).json()["total"]


def test_capability_statement_is_r4(fhir):
    meta = fhir.get("metadata").json()
    assert meta["resourceType"] == "CapabilityStatement" and meta["fhirVersion"] == "4.0.1"


def test_create_read_and_search_by_identifier(fhir, system):
    created = fhir.post("Patient", json=us_core_patient(system, "a"))
    assert created.status_code == 201
    pid = created.json()["id"]
    assert fhir.get(f"Patient/{pid}").json()["identifier"][0]["value"] == "a"
    found = fhir.get("Patient", params={"identifier": f"{system}|a"}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [pid]


def test_conditional_update_twice_keeps_one_resource(fhir, system):
    url = f"Patient?identifier={system}|same"
    first = fhir.put(url, json=us_core_patient(system, "same", family="First"))
    second = fhir.put(url, json=us_core_patient(system, "same", family="Second"))
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"] and second.json()["meta"]["versionId"] == "2"
    assert count(fhir, system) == 1


def test_batch_bundle_lands_every_entry(fhir, system):
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": us_core_patient(system, f"b{i}"),
                "request": {"method": "PUT", "url": f"Patient?identifier={system}|b{i}"},
            }
            for i in range(25)
        ],
    }
    response = fhir.post("", json=bundle).json()
    assert [e["response"]["status"][:3] for e in response["entry"]] == ["201"] * 25
    assert count(fhir, system) == 25


def test_transaction_bundle_is_all_or_nothing(fhir, system):
    good = {"resource": us_core_patient(system, "t1"), "request": {"method": "POST", "url": "Patient"}}
    bad = {
        "resource": {"resourceType": "Patient", "birthDate": "not-a-date"},
        "request": {"method": "POST", "url": "Patient"},
    }
    ok = fhir.post("", json={"resourceType": "Bundle", "type": "transaction", "entry": [good]})
    assert ok.status_code == 200 and ok.json()["type"] == "transaction-response"
    failed = fhir.post(
        "",
        json={
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": us_core_patient(system, "t2"), "request": {"method": "POST", "url": "Patient"}},
                bad,
            ],
        },
    )
    assert failed.status_code >= 400
    assert count(fhir, system) == 1  # t2 rolled back with the bad entry


def test_us_core_validation_rejects_an_invalid_patient(fhir, system):
    if not validation_on(fhir):
        pytest.skip("HAPI runs without US Core validation (start it with HAPI_VALIDATE_US_CORE=true)")
    invalid = {"resourceType": "Patient", "meta": {"profile": [US_CORE_PATIENT]}, "birthDate": "1980-01-02"}
    response = fhir.post("Patient", json=invalid)
    assert response.status_code in (412, 422)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    messages = " ".join(i.get("diagnostics", "") for i in outcome["issue"] if i["severity"] == "error")
    assert "Patient.identifier" in messages and "Patient.name" in messages


def test_validation_failure_in_a_batch_fails_only_that_entry(fhir, system):
    if not validation_on(fhir):
        pytest.skip("HAPI runs without US Core validation (start it with HAPI_VALIDATE_US_CORE=true)")
    entries = [
        {
            "resource": us_core_patient(system, f"v{i}"),
            "request": {"method": "PUT", "url": f"Patient?identifier={system}|v{i}"},
        }
        for i in range(3)
    ]
    entries[1]["resource"].pop("name")  # US Core requires a name
    response = fhir.post("", json={"resourceType": "Bundle", "type": "batch", "entry": entries}).json()
    statuses = [e["response"]["status"][:3] for e in response["entry"]]
    assert statuses[0] == statuses[2] == "201" and statuses[1] in ("412", "422")
    assert response["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert count(fhir, system) == 2


def test_validate_operation_accepts_a_valid_us_core_patient(fhir, system):
    outcome = fhir.post("Patient/$validate", json=us_core_patient(system, "ok")).json()
    errors = [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")]
    assert errors == []
