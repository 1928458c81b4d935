"""Synthea encounters.csv row -> US Core 6.1.0 Encounter. Pure functions."""

from __future__ import annotations

from datetime import date
from typing import Any

from beam_pipeline.us_core import clinical as c
from beam_pipeline.us_core import outcome as o
from beam_pipeline.us_core import terminology as t
from beam_pipeline.us_core.config import TransformConfig
from beam_pipeline.us_core.parse import text

TEXT_FIELDS = (
    "Id", "START", "STOP", "PATIENT", "ORGANIZATION", "PROVIDER", "PAYER", "ENCOUNTERCLASS", "CODE",
    "DESCRIPTION", "REASONCODE", "REASONDESCRIPTION",
)  # fmt: skip
REQUIRED = ("Id", "PATIENT", "START", "ENCOUNTERCLASS", "CODE")


def validate_encounter(record: dict[str, Any], today: date | None = None) -> o.Error | None:
    error = c.check_columns(record, TEXT_FIELDS, REQUIRED, ("START", "STOP"))
    if error is not None:
        return error
    if (text(record, "ENCOUNTERCLASS") or "").lower() not in t.ENCOUNTER_CLASS:
        # Encounter.class is required; an unknown class is an error, never a guess.
        return o.Error(o.VALIDATE, o.UNKNOWN_CODE, "ENCOUNTERCLASS is not a known encounter class")
    return None


def map_encounter(record: dict[str, Any], config: TransformConfig) -> dict[str, Any]:
    system, value = c.source_identifier(record, config)
    encounter = c.resource("Encounter", t.US_CORE_ENCOUNTER, [{"system": system, "value": value}])
    # A finished encounter has its end; one without STOP is still going on.
    encounter["status"] = "finished" if text(record, "STOP") else "in-progress"
    code, display = t.ENCOUNTER_CLASS[(text(record, "ENCOUNTERCLASS") or "").lower()]
    encounter["class"] = c.coding(t.V3_ACT_CODE, code, display)
    encounter["type"] = [c.concept(t.SNOMED, text(record, "CODE") or "", text(record, "DESCRIPTION"))]
    encounter["subject"] = c.patient_reference(record, config)
    if period := c.period(record):
        encounter["period"] = period
    if reasons := c.reason(record):
        encounter["reasonCode"] = reasons
    return encounter
