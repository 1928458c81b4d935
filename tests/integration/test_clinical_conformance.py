"""Every clinical profile the mappers choose passes the local HAPI's US Core 6.1.0 $validate with zero
errors: each vital-sign profile and both blood-pressure parts, lab, smoking status, the other observation
categories, both condition categories, every encounter class, immunization, allergies, procedures and
medication requests."""

from __future__ import annotations

import json

import httpx
import pytest

from beam_pipeline.us_core import Ok, TransformConfig, transform
from beam_pipeline.us_core import terminology as t
from dev import terminology_tables as tt
from dev.clinical_rows import clinical_rows, encounter_row

pytestmark = pytest.mark.integration

ROWS = clinical_rows("synthetic-patient-1", "synthetic-encounter-1") + [
    encounter_row("synthetic-patient-1", f"synthetic-encounter-{cls}", cls) for cls in tt.ENCOUNTER_CLASS
]


def _label(row: dict) -> str:
    return "-".join(str(row.get(k)) for k in ("MESSAGE_TYPE", "CATEGORY", "CODE", "ENCOUNTERCLASS") if row.get(k))


def validation_errors(base_url: str, resource: dict) -> list[str]:
    response = httpx.post(
        f"{base_url}/{resource['resourceType']}/$validate",
        params={"profile": resource["meta"]["profile"][0]},
        content=json.dumps(resource),
        headers={"Content-Type": "application/fhir+json"},
        timeout=120,
    )
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    return [
        f"{i.get('severity')}: {i.get('diagnostics')} @ {i.get('expression') or i.get('location')}"
        for i in outcome.get("issue", [])
        if i["severity"] in ("error", "fatal")
    ]


def test_every_profile_is_covered():
    profiles = {transform(json.dumps(r).encode()).resources[0].resource["meta"]["profile"][0] for r in ROWS}
    expected = {p for p, _, _ in tt.VITAL_SIGNS.values()} | set(tt.OBSERVATION_CATEGORY_PROFILES.values())
    expected |= {t.US_CORE_SMOKING_STATUS, t.US_CORE_ENCOUNTER, t.US_CORE_CONDITION_ENCOUNTER_DIAGNOSIS}
    expected |= {t.US_CORE_CONDITION_PROBLEMS, t.US_CORE_IMMUNIZATION, t.US_CORE_ALLERGY, t.US_CORE_PROCEDURE}
    expected |= {t.US_CORE_MEDICATION_REQUEST}
    assert profiles == expected


@pytest.mark.parametrize("row", ROWS, ids=_label)
def test_clinical_resource_is_valid_us_core(env, row):
    result = transform(json.dumps(row).encode(), config=TransformConfig())
    assert isinstance(result, Ok), result
    for mapped in result.resources:
        assert validation_errors(env["FHIR_BASE_URL"], mapped.resource) == []
