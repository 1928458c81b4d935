"""What the write client sends for a clinical row, to the Healthcare API: the conditional references the
mapping made reach executeBundle unchanged, inside the batch entry that upserts the row by its identifier.

The Healthcare API resolves `Patient?identifier=...` references in executeBundle and rejects the entry when
no resource, or more than one, matches ("FHIR resource references", section "Conditional references").
"""

from __future__ import annotations

import json

import httpx

from beam_pipeline.fhir_store import AuthConfig, FhirStoreClient, FhirStoreConfig, HealthcareApiStore, WriteItem, errors
from beam_pipeline.us_core import TransformConfig, transform
from dev.clinical_rows import clinical_rows

STORE = HealthcareApiStore(project_id="k2f-proj", location="us-central1", dataset="clinical", write_store="post")
BASE = "https://healthcare.googleapis.com/v1/projects/k2f-proj/locations/us-central1/datasets/clinical/fhirStores/post/fhir"


def test_clinical_rows_reach_execute_bundle_with_conditional_references():
    sent: list[httpx.Request] = []

    def healthcare_api(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.url.path.endswith("/_search") or request.method == "GET":
            return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": []})
        entries = json.loads(request.content)["entry"]
        answers = [
            {"response": {"status": "201 Created", "location": f"X/{i}/_history/1"}} for i in range(len(entries))
        ]
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "batch-response", "entry": answers})

    config = TransformConfig()
    rows = clinical_rows("p-1", "e-1")
    items = []
    for n, row in enumerate(rows):
        mapped = transform(json.dumps(row).encode(), config=config).resources[0]
        items.append(WriteItem(mapped.resource, mapped.identifier, key=n))
    fhir = FhirStoreConfig(healthcare_api=STORE, auth=AuthConfig(kind="bearer", token="tok"), bundle_size=500)
    with FhirStoreClient(fhir, transport=httpx.MockTransport(healthcare_api)) as client:
        outcomes = client.write(items)
    assert all(o.ok for o in outcomes)

    bundles = [r for r in sent if r.method == "POST" and str(r.url) == BASE]
    assert len(bundles) == 1
    assert bundles[0].headers["content-type"].startswith("application/fhir+json")
    bundle = json.loads(bundles[0].content)
    assert bundle["type"] == "batch" and len(bundle["entry"]) == len(items)
    for entry, item in zip(bundle["entry"], items, strict=True):
        resource = entry["resource"]
        rtype = resource["resourceType"]
        system, _ = item.identifier
        assert entry["request"]["method"] == "PUT"
        assert entry["request"]["url"].startswith(f"{rtype}?identifier=")  # upsert on the row's own identifier
        subject = resource.get("subject") or resource.get("patient")
        assert subject == {"reference": f"Patient?identifier={config.source_id_system}|p-1"}
        if "encounter" in resource:
            assert resource["encounter"] == {"reference": f"Encounter?identifier={config.source_id_system}|e-1"}
        # No resource id: the store assigns it on create and finds it by identifier afterwards.
        assert "id" not in resource


HAPI_1091 = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "exception",
            "diagnostics": 'HAPI-1091: Invalid match URL "Patient?identifier=urn:x|secret-patient-id" - '
            "No resources match this search",
        }
    ],
}


def test_a_row_before_its_patient_is_a_retryable_reference_not_found():
    def hapi(request: httpx.Request) -> httpx.Response:
        entries = json.loads(request.content)["entry"]
        answers = [{"response": {"status": "404 Not Found", "outcome": HAPI_1091}} for _ in entries]
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "batch-response", "entry": answers})

    row = next(r for r in clinical_rows("secret-patient-id", "e-1") if r["MESSAGE_TYPE"] == "condition")
    mapped = transform(json.dumps(row).encode()).resources[0]
    with FhirStoreClient(FhirStoreConfig(base_url="http://fhir.test/fhir"), transport=httpx.MockTransport(hapi)) as c:
        (outcome,) = c.write([WriteItem(mapped.resource, mapped.identifier)])
    assert not outcome.ok and outcome.status == 404
    assert outcome.error.code == "reference_not_found"
    assert outcome.error.retryable  # the error record goes to replay, not to quarantine
    assert outcome.attempts == 1  # not resent at once: the patient needs time to land
    assert "secret-patient-id" not in outcome.error.detail and "secret-patient-id" not in str(outcome.error)


def test_other_refusals_stay_what_they_were():
    other = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}
    assert errors.unresolved_reference(404, other, what="batch entry") is None
    assert errors.unresolved_reference(500, HAPI_1091, what="batch entry") is None
    assert errors.unresolved_reference(404, None, what="batch entry") is None
    assert errors.unresolved_reference(404, HAPI_1091, what="batch entry").code == errors.REFERENCE_NOT_FOUND
