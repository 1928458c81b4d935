"""Synthea observations.csv row -> US Core 6.1.0 Observation. Pure functions.

The profile follows the row: smoking status (LOINC 72166-2) -> us-core-smokingstatus; a vital sign with its
own profile (height, weight, BMI, heart rate, ...) -> that profile; any other vital sign -> us-core-vital-signs;
laboratory -> us-core-observation-lab; survey -> screening-assessment; social-history -> simple-observation;
exam, imaging, procedure, therapy, activity -> clinical-result.

Blood pressure: Synthea writes systolic (8480-6) and diastolic (8462-4) as two rows. Each becomes a vital sign
of its own (us-core-vital-signs, valueQuantity in mm[Hg]); the 85354-9 panel profile needs both values in one
resource, which would mean holding one row until its partner arrives, so it is not built here.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from beam_pipeline.us_core import clinical as c
from beam_pipeline.us_core import outcome as o
from beam_pipeline.us_core import terminology as t
from beam_pipeline.us_core.config import TransformConfig
from beam_pipeline.us_core.parse import text

TEXT_FIELDS = ("DATE", "PATIENT", "ENCOUNTER", "CATEGORY", "CODE", "DESCRIPTION", "VALUE", "UNITS", "TYPE")
REQUIRED = ("PATIENT", "DATE", "CODE", "VALUE")
KEY = c.NaturalKey("observation", ("PATIENT", "ENCOUNTER", "CODE", "DATE"))


def _number(value: str) -> float | int | None:
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number


def _category(record: dict[str, Any]) -> str | None:
    category = text(record, "CATEGORY")
    return category.lower() if category else None


def _value_kind(record: dict[str, Any]) -> str | None:
    kind = text(record, "TYPE")
    if kind is None:
        # Without TYPE, a number with units is a quantity and anything else is text.
        value, units = text(record, "VALUE") or "", text(record, "UNITS")
        return "numeric" if units and _number(value) is not None else "text"
    return t.OBSERVATION_VALUE_TYPES.get(kind.lower())


def profile_of(record: dict[str, Any]) -> str | None:
    code = text(record, "CODE")
    if code == t.SMOKING_STATUS_CODE:
        return t.US_CORE_SMOKING_STATUS
    category = _category(record)
    if category == "vital-signs" and code in t.VITAL_SIGNS:
        return t.VITAL_SIGNS[code][0]
    return t.OBSERVATION_CATEGORY_PROFILES.get(category or "")


def validate_observation(record: dict[str, Any], today: date | None = None) -> o.Error | None:
    error = c.check_columns(record, TEXT_FIELDS, REQUIRED, ("DATE",))
    if error is not None:
        return error
    if profile_of(record) is None:
        return o.Error(o.VALIDATE, o.UNKNOWN_CODE, "CATEGORY is not an observation category")
    kind = _value_kind(record)
    if kind is None:
        return o.Error(o.VALIDATE, o.UNKNOWN_CODE, "TYPE is neither numeric nor text")
    if kind == "numeric" and _number(text(record, "VALUE") or "") is None:
        return o.Error(o.VALIDATE, o.NON_NUMERIC_VALUE, "VALUE is not a number and TYPE is numeric")
    code = text(record, "CODE") or ""
    if _category(record) == "vital-signs" and code in t.VITAL_SIGNS:
        if kind != "numeric":
            return o.Error(o.VALIDATE, o.NON_NUMERIC_VALUE, "VALUE of a vital sign must be numeric")
        if text(record, "UNITS") not in t.VITAL_SIGNS[code][1]:
            return o.Error(o.VALIDATE, o.UNKNOWN_CODE, "UNITS is not a unit the vital sign's profile allows")
    return None


def _categories(record: dict[str, Any], profile: str) -> list[dict[str, Any]]:
    codes = [_category(record) or ""]
    if profile == t.US_CORE_SMOKING_STATUS and "social-history" not in codes:
        # The smoking status profile requires social-history; Synthea files it under survey.
        codes.insert(0, "social-history")
    return [
        {"coding": [c.coding(t.OBSERVATION_CATEGORY, code, t.OBSERVATION_CATEGORY_DISPLAY[code])]}
        for code in codes
        if code in t.OBSERVATION_CATEGORY_DISPLAY
    ]


def _code(record: dict[str, Any]) -> dict[str, Any]:
    code, display = text(record, "CODE") or "", text(record, "DESCRIPTION")
    codings = [c.coding(t.LOINC, code, display)]
    if _category(record) == "vital-signs" and code in t.VITAL_SIGNS:
        codings += [c.coding(t.LOINC, extra, extra_display) for extra, extra_display in t.VITAL_SIGNS[code][2]]
    out: dict[str, Any] = {"coding": codings}
    if display:
        out["text"] = display
    return out


def _value(record: dict[str, Any], profile: str) -> dict[str, Any]:
    value = text(record, "VALUE") or ""
    if _value_kind(record) == "numeric":
        quantity: dict[str, Any] = {"value": _number(value)}
        if units := text(record, "UNITS"):
            quantity |= {"unit": units, "system": t.UCUM, "code": units}
        return {"valueQuantity": quantity}
    if profile == t.US_CORE_SMOKING_STATUS:
        key = value.lower().removesuffix("(finding)").strip()
        if coded := t.SMOKING_STATUS.get(key):
            return {"valueCodeableConcept": {"coding": [c.coding(t.SNOMED, *coded)], "text": value}}
        return {"valueCodeableConcept": {"text": value}}
    return {"valueString": value}


def map_observation(record: dict[str, Any], config: TransformConfig) -> dict[str, Any]:
    profile = profile_of(record) or t.US_CORE_CLINICAL_RESULT
    observation = c.resource("Observation", profile, KEY.identifier(record, config))
    observation["status"] = "final"
    observation["category"] = _categories(record, profile)
    observation["code"] = _code(record)
    observation["subject"] = c.patient_reference(record, config)
    if encounter := c.encounter_reference(record, config):
        observation["encounter"] = encounter
    observation["effectiveDateTime"] = c.fhir_datetime(text(record, "DATE") or "")
    observation |= _value(record, profile)
    return observation
