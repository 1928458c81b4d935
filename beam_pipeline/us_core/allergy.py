"""Synthea allergies.csv row -> US Core 6.1.0 AllergyIntolerance. Pure functions."""

from __future__ import annotations

from datetime import date
from typing import Any

from beam_pipeline.us_core import clinical as c
from beam_pipeline.us_core import outcome as o
from beam_pipeline.us_core import terminology as t
from beam_pipeline.us_core.config import TransformConfig
from beam_pipeline.us_core.parse import text

REACTIONS = (("REACTION1", "DESCRIPTION1", "SEVERITY1"), ("REACTION2", "DESCRIPTION2", "SEVERITY2"))
TEXT_FIELDS = (
    "START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "SYSTEM", "DESCRIPTION", "TYPE", "CATEGORY",
    *(name for reaction in REACTIONS for name in reaction),
)  # fmt: skip
REQUIRED = ("PATIENT", "START", "CODE")
KEY = c.NaturalKey("allergy", ("PATIENT", "SYSTEM", "CODE", "START"))


def _lower(record: dict[str, Any], name: str) -> str | None:
    value = text(record, name)
    return value.lower() if value else None


def validate_allergy(record: dict[str, Any], today: date | None = None) -> o.Error | None:
    error = c.check_columns(record, TEXT_FIELDS, REQUIRED, ("START", "STOP"))
    if error is not None:
        return error
    # Allergens are RxNorm (medications) or SNOMED CT (substances); no SYSTEM is not a guess we make.
    system = text(record, "SYSTEM")
    if system is None or c.code_system(record, t.SNOMED) not in (t.SNOMED, t.RXNORM):
        return o.Error(o.VALIDATE, o.UNKNOWN_CODE, "SYSTEM is not RxNorm or SNOMED CT")
    checks = (("TYPE", t.ALLERGY_TYPES), ("CATEGORY", t.ALLERGY_CATEGORIES))
    for name, allowed in checks:
        value = _lower(record, name)
        if value is not None and value not in allowed:
            return o.Error(o.VALIDATE, o.UNKNOWN_CODE, f"{name} is not a known allergy {name.lower()}")
    for reaction, _, severity in REACTIONS:
        value = _lower(record, severity)
        if value is not None and value not in t.ALLERGY_SEVERITIES:
            return o.Error(o.VALIDATE, o.UNKNOWN_CODE, f"{severity} is not mild, moderate or severe")
        if value is not None and text(record, reaction) is None:
            return o.Error(o.VALIDATE, o.MISSING_REQUIRED_FIELD, f"{severity} is set but {reaction} is empty")
    return None


def _reactions(record: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for reaction, description, severity in REACTIONS:
        code = text(record, reaction)
        if code is None:
            continue
        entry: dict[str, Any] = {"manifestation": [c.concept(t.SNOMED, code, text(record, description))]}
        if level := _lower(record, severity):
            entry["severity"] = level
        out.append(entry)
    return out


def map_allergy(record: dict[str, Any], config: TransformConfig) -> dict[str, Any]:
    allergy = c.resource("AllergyIntolerance", t.US_CORE_ALLERGY, KEY.identifier(record, config))
    stop = text(record, "STOP")
    status = "resolved" if stop else "active"
    allergy["clinicalStatus"] = {"coding": [c.coding(t.ALLERGY_CLINICAL, status, status.capitalize())]}
    # The source lists the allergy as a recorded fact of the patient's record.
    allergy["verificationStatus"] = {"coding": [c.coding(t.ALLERGY_VERIFICATION, "confirmed", "Confirmed")]}
    if kind := _lower(record, "TYPE"):
        allergy["type"] = kind
    if category := _lower(record, "CATEGORY"):
        allergy["category"] = [category]
    system = c.code_system(record, t.SNOMED) or t.SNOMED
    allergy["code"] = c.concept(system, text(record, "CODE") or "", text(record, "DESCRIPTION"))
    allergy["patient"] = c.patient_reference(record, config)
    if encounter := c.encounter_reference(record, config):
        allergy["encounter"] = encounter
    allergy["onsetDateTime"] = c.fhir_datetime(text(record, "START") or "")
    if reactions := _reactions(record):
        allergy["reaction"] = reactions
    return allergy
