"""Synthea procedures.csv row -> US Core 6.1.0 Procedure. Pure functions."""

from __future__ import annotations

from datetime import date
from typing import Any

from beam_pipeline.us_core import clinical as c
from beam_pipeline.us_core import outcome as o
from beam_pipeline.us_core import terminology as t
from beam_pipeline.us_core.config import TransformConfig
from beam_pipeline.us_core.parse import text

TEXT_FIELDS = (
    "START", "STOP", "PATIENT", "ENCOUNTER", "SYSTEM", "CODE", "DESCRIPTION", "BASE_COST", "REASONCODE",
    "REASONDESCRIPTION",
)  # fmt: skip
REQUIRED = ("PATIENT", "START", "CODE")
KEY = c.NaturalKey("procedure", ("PATIENT", "ENCOUNTER", "SYSTEM", "CODE", "START"))


def validate_procedure(record: dict[str, Any], today: date | None = None) -> o.Error | None:
    error = c.check_columns(record, TEXT_FIELDS, REQUIRED, ("START", "STOP"))
    if error is None and c.code_system(record, t.SNOMED) is None:
        return c.unknown_system_error()
    return error


def map_procedure(record: dict[str, Any], config: TransformConfig) -> dict[str, Any]:
    procedure = c.resource("Procedure", t.US_CORE_PROCEDURE, KEY.identifier(record, config))
    # A row in the procedures file records a procedure performed (START is when).
    procedure["status"] = "completed"
    system = c.code_system(record, t.SNOMED) or t.SNOMED
    procedure["code"] = c.concept(system, text(record, "CODE") or "", text(record, "DESCRIPTION"))
    procedure["subject"] = c.patient_reference(record, config)
    if encounter := c.encounter_reference(record, config):
        procedure["encounter"] = encounter
    procedure["performedPeriod"] = c.period(record) or {}
    if reasons := c.reason(record):
        procedure["reasonCode"] = reasons
    return procedure
