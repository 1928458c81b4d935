"""A patient and its clinical records go through the FHIR store client to the local HAPI, and the conditional
references (`Patient?identifier=...`, `Encounter?identifier=...`) resolve to the stored resources.

Every test maps under its own source and natural-key identifier systems (UUIDs in them), so reruns never
see each other's resources.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter

import pytest

from beam_pipeline.fhir_store import FhirStoreClient, FhirStoreConfig, RetryPolicy, WriteItem
from beam_pipeline.us_core import Ok, TransformConfig, transform
from dev.clinical_rows import clinical_rows, patient_row
from dev.fhir_samples import unique_system

pytestmark = pytest.mark.integration

# The search parameter naming the patient, per resource type.
PATIENT_PARAM = {"Immunization": "patient", "AllergyIntolerance": "patient"}


@pytest.fixture(scope="module")
def client(env):
    config = FhirStoreConfig(
        base_url=env["FHIR_BASE_URL"], bundle_size=50, retry=RetryPolicy(max_attempts=2, total_timeout=60)
    )
    with FhirStoreClient(config) as c:
        if not c.check(retry=RetryPolicy(max_attempts=3, total_timeout=20)).reachable:
            pytest.fail("HAPI is not reachable: run `make up`")
        yield c


@pytest.fixture
def config() -> TransformConfig:
    return TransformConfig(source_id_system=unique_system("clinical-src"), natural_key_system=unique_system("nk"))


def items(rows: list[dict], config: TransformConfig) -> list[WriteItem]:
    out = []
    for n, row in enumerate(rows):
        result = transform(json.dumps(row).encode(), config=config)
        assert isinstance(result, Ok), (row.get("MESSAGE_TYPE"), result)
        out += [WriteItem(m.resource, m.identifier, key=n) for m in result.resources]
    return out


def stored_id(client: FhirStoreClient, rtype: str, system: str, value: str) -> str:
    found = client.search_by_identifier(rtype, system, value)
    assert len(found) == 1, (rtype, len(found))
    return found[0]["id"]


def failures(outcomes) -> list[str]:
    return [f"{o.key}: {o.status} {o.error}" for o in outcomes if not o.ok]


def test_clinical_records_reference_their_patient_and_encounter(client, config):
    patient, encounter = f"p-{uuid.uuid4()}", f"e-{uuid.uuid4()}"
    rows = clinical_rows(patient, encounter)
    assert failures(client.write(items([patient_row(patient)], config))) == []
    written = client.write(items(rows, config))  # the encounter first, then the rows that refer to it
    assert failures(written) == []

    patient_id = stored_id(client, "Patient", config.source_id_system, patient)
    encounter_id = stored_id(client, "Encounter", config.source_id_system, encounter)
    expected = Counter(i.resource["resourceType"] for i in items(rows, config))
    for rtype, count in expected.items():
        bundle = client.search(rtype, {PATIENT_PARAM.get(rtype, "subject"): f"Patient/{patient_id}", "_count": "100"})
        found = [e["resource"] for e in bundle.get("entry", [])]
        assert len(found) == count, rtype
        for resource in found:
            subject = resource.get("subject") or resource.get("patient")
            assert subject["reference"] == f"Patient/{patient_id}", rtype
            if "encounter" in resource:
                assert resource["encounter"]["reference"] == f"Encounter/{encounter_id}", rtype

    # A redelivery of every row updates what is there: same resources, nothing new.
    again = client.write(items(rows, config))
    assert failures(again) == []
    assert [o.resource_id for o in again] == [o.resource_id for o in written]
    for rtype, count in expected.items():
        assert client.count(rtype, {PATIENT_PARAM.get(rtype, "subject"): f"Patient/{patient_id}"}) == count


def test_a_row_before_its_patient_fails_and_lands_once_the_patient_is_there(client, config):
    patient, encounter = f"p-{uuid.uuid4()}", f"e-{uuid.uuid4()}"
    condition = next(r for r in clinical_rows(patient, encounter) if r["MESSAGE_TYPE"] == "condition")
    early = items([condition | {"ENCOUNTER": ""}], config)
    (outcome,) = client.write(early)
    # Nothing may be stored pointing nowhere: the store refuses the unresolved conditional reference.
    assert not outcome.ok
    assert outcome.status == 404, outcome.status
    # Retryable with its own code: the error record goes back to Kafka on replay instead of to quarantine.
    assert (outcome.error.code, outcome.error.retryable) == ("reference_not_found", True)
    system, value = early[0].identifier
    assert client.search_by_identifier("Condition", system, value) == []

    assert failures(client.write(items([patient_row(patient)], config))) == []
    (replayed,) = client.write(early)  # what the replay DAG does with the error record
    assert replayed.ok, replayed.error
    assert len(client.search_by_identifier("Condition", system, value)) == 1


def test_a_row_before_its_encounter_fails_the_same_way(client, config):
    patient, encounter = f"p-{uuid.uuid4()}", f"e-{uuid.uuid4()}"
    rows = clinical_rows(patient, encounter)
    assert failures(client.write(items([patient_row(patient)], config))) == []
    immunization = items([r for r in rows if r["MESSAGE_TYPE"] == "immunization"], config)
    (early,) = client.write(immunization)
    assert not early.ok and early.error.code == "reference_not_found" and early.error.retryable
    assert failures(client.write(items([rows[0]], config))) == []  # the encounter
    assert client.write(immunization)[0].ok


def test_a_patient_and_its_rows_in_one_write(client, config):
    # One batch bundle: HAPI applies batch entries in order, so the rows after their patient resolve.
    patient, encounter = f"p-{uuid.uuid4()}", f"e-{uuid.uuid4()}"
    outcomes = client.write(items([patient_row(patient), *clinical_rows(patient, encounter)], config))
    assert failures(outcomes) == []
