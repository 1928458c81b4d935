"""Synthea conditions.csv row -> US Core 6.1.0 Condition: an encounter diagnosis when the row names its
encounter, else a problem-list item. Pure functions."""

from __future__ import annotations

from datetime import date
from typing import Any

from beam_pipeline.us_core import clinical as c
from beam_pipeline.us_core import outcome as o
from beam_pipeline.us_core import terminology as t
from beam_pipeline.us_core.config import TransformConfig
from beam_pipeline.us_core.parse import text

TEXT_FIELDS = ("START", "STOP", "PATIENT", "ENCOUNTER", "SYSTEM", "CODE", "DESCRIPTION")
REQUIRED = ("PATIENT", "START", "CODE")
KEY = c.NaturalKey("condition", ("PATIENT", "ENCOUNTER", "SYSTEM", "CODE", "START"))

# category code -> (profile, category coding display)
_CATEGORIES = {
    "encounter-diagnosis": (t.US_CORE_CONDITION_ENCOUNTER_DIAGNOSIS, "Encounter Diagnosis"),
    "problem-list-item": (t.US_CORE_CONDITION_PROBLEMS, "Problem List Item"),
}


def validate_condition(record: dict[str, Any], today: date | None = None) -> o.Error | None:
    error = c.check_columns(record, TEXT_FIELDS, REQUIRED, ("START", "STOP"))
    if error is None and c.code_system(record, t.SNOMED) is None:
        return c.unknown_system_error()
    return error


def map_condition(record: dict[str, Any], config: TransformConfig) -> dict[str, Any]:
    category = "encounter-diagnosis" if text(record, "ENCOUNTER") else "problem-list-item"
    profile, display = _CATEGORIES[category]
    condition = c.resource("Condition", profile, KEY.identifier(record, config))
    stop = text(record, "STOP")
    status = "resolved" if stop else "active"
    condition["clinicalStatus"] = {"coding": [c.coding(t.CONDITION_CLINICAL, status, status.capitalize())]}
    condition["category"] = [{"coding": [c.coding(t.CONDITION_CATEGORY, category, display)]}]
    system = c.code_system(record, t.SNOMED) or t.SNOMED
    condition["code"] = c.concept(system, text(record, "CODE") or "", text(record, "DESCRIPTION"))
    condition["subject"] = c.patient_reference(record, config)
    if encounter := c.encounter_reference(record, config):
        condition["encounter"] = encounter
    condition["onsetDateTime"] = c.fhir_datetime(text(record, "START") or "")
    if stop:
        condition["abatementDateTime"] = c.fhir_datetime(stop)
    return condition
