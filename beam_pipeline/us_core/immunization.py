"""Synthea immunizations.csv row -> US Core 6.1.0 Immunization (CVX, completed). Pure functions."""

from __future__ import annotations

from datetime import date
from typing import Any

from beam_pipeline.us_core import clinical as c
from beam_pipeline.us_core import outcome as o
from beam_pipeline.us_core import terminology as t
from beam_pipeline.us_core.config import TransformConfig
from beam_pipeline.us_core.parse import text

TEXT_FIELDS = ("DATE", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "BASE_COST")
REQUIRED = ("PATIENT", "DATE", "CODE")
KEY = c.NaturalKey("immunization", ("PATIENT", "ENCOUNTER", "CODE", "DATE"))


def validate_immunization(record: dict[str, Any], today: date | None = None) -> o.Error | None:
    return c.check_columns(record, TEXT_FIELDS, REQUIRED, ("DATE",))


def map_immunization(record: dict[str, Any], config: TransformConfig) -> dict[str, Any]:
    immunization = c.resource("Immunization", t.US_CORE_IMMUNIZATION, KEY.identifier(record, config))
    # A row in the immunizations file records a vaccine given, by the system that gave it.
    immunization["status"] = "completed"
    immunization["vaccineCode"] = c.concept(t.CVX, text(record, "CODE") or "", text(record, "DESCRIPTION"))
    immunization["patient"] = c.patient_reference(record, config)
    if encounter := c.encounter_reference(record, config):
        immunization["encounter"] = encounter
    immunization["occurrenceDateTime"] = c.fhir_datetime(text(record, "DATE") or "")
    immunization["primarySource"] = True
    return immunization
