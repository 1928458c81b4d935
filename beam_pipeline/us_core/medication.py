"""Synthea medications.csv row -> US Core 6.1.0 MedicationRequest (RxNorm, intent order). Pure functions."""

from __future__ import annotations

from datetime import date
from typing import Any

from beam_pipeline.us_core import clinical as c
from beam_pipeline.us_core import outcome as o
from beam_pipeline.us_core import terminology as t
from beam_pipeline.us_core.config import TransformConfig
from beam_pipeline.us_core.parse import text

TEXT_FIELDS = (
    "START", "STOP", "PATIENT", "PAYER", "ENCOUNTER", "CODE", "DESCRIPTION", "BASE_COST", "PAYER_COVERAGE",
    "DISPENSES", "TOTALCOST", "REASONCODE", "REASONDESCRIPTION",
)  # fmt: skip
REQUIRED = ("PATIENT", "START", "CODE")
KEY = c.NaturalKey("medication", ("PATIENT", "ENCOUNTER", "CODE", "START"))


def validate_medication(record: dict[str, Any], today: date | None = None) -> o.Error | None:
    return c.check_columns(record, TEXT_FIELDS, REQUIRED, ("START", "STOP"))


def map_medication(record: dict[str, Any], config: TransformConfig) -> dict[str, Any]:
    request = c.resource("MedicationRequest", t.US_CORE_MEDICATION_REQUEST, KEY.identifier(record, config))
    # A prescription with a STOP date has been stopped (as Synthea's own FHIR export says); else it is active.
    request["status"] = "stopped" if text(record, "STOP") else "active"
    request["intent"] = "order"
    request["medicationCodeableConcept"] = c.concept(t.RXNORM, text(record, "CODE") or "", text(record, "DESCRIPTION"))
    request["subject"] = c.patient_reference(record, config)
    if encounter := c.encounter_reference(record, config):
        request["encounter"] = encounter
    request["authoredOn"] = c.fhir_datetime(text(record, "START") or "")
    # US Core requires a requester for an order (us-core-21); the row names none, so it is marked absent.
    request["requester"] = c.data_absent()
    if reasons := c.reason(record):
        request["reasonCode"] = reasons
    return request
