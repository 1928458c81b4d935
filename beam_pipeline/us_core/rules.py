"""The US Core 6.1.0 Patient rules that matter, checked on every mapped resource in microseconds.

Each violation is a short rule code naming the element, never its value. Full profile validation is the
FHIR server's job (HAPI with US Core loaded); this check keeps a broken mapper from sending junk.
"""

from __future__ import annotations

import re
from typing import Any

from beam_pipeline.us_core import terminology as t

_ABSOLUTE_URI = re.compile(r"^(https?://|urn:(oid|uuid|[a-z0-9-]+):)\S+$")
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


# The original sample's filler for missing data. "Na", "Null" and "None" are real names (only empty values
# mean absent), so they are not placeholders.
_PLACEHOLDERS = frozenset({"N/A"})


def _is_blank(text: str) -> bool:
    return not text or text.isspace() or (len(text) <= 4 and text.strip().upper() in _PLACEHOLDERS)


def is_clean(value: Any) -> bool:  # noqa: ANN401  (any JSON)
    """No empty or placeholder value anywhere: the fast path of `empty_values`, run on every resource."""
    kind = type(value)
    if kind is str:  # _is_blank, inlined: this runs ~60 times per Patient
        if not value or value.isspace():
            return False
        return len(value) > 4 or value.strip().upper() not in _PLACEHOLDERS
    if kind is dict or kind is list:
        if not value:
            return False
        for item in value.values() if kind is dict else value:
            if not is_clean(item):
                return False
        return True
    return value is not None


def empty_values(value: Any, path: str = "") -> list[str]:  # noqa: ANN401  (any JSON)
    """Paths of empty strings, nulls, empty arrays or objects, and "N/A" placeholders."""
    if value is None or value == "" or value == [] or value == {}:
        return [path or "$"]
    if isinstance(value, str) and _is_blank(value):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in empty_values(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in empty_values(v, f"{path}[{i}]")]
    return []


def _extension(resource: dict[str, Any], url: str) -> dict[str, Any] | None:
    return next((e for e in resource.get("extension", []) if e.get("url") == url), None)


def _omb_problems(ext: dict[str, Any] | None, name: str, codes: frozenset[str]) -> list[str]:
    if ext is None:
        return []
    inner = ext.get("extension", [])
    problems = []
    if sum(1 for e in inner if e.get("url") == "text") != 1:
        problems.append(f"{name}.text: exactly one required")
    for e in inner:
        if e.get("url") == "ombCategory":
            coding = e.get("valueCoding", {})
            if coding.get("system") != t.CDC_RACE_ETHNICITY or coding.get("code") not in codes:
                problems.append(f"{name}.ombCategory: not an OMB category code")
    return problems


def check_patient(patient: dict[str, Any]) -> list[str]:
    problems = [] if is_clean(patient) else [f"{p}: empty or placeholder" for p in empty_values(patient)]
    if t.US_CORE_PATIENT not in patient.get("meta", {}).get("profile", []):
        problems.append("meta.profile: US Core Patient missing")
    idents = patient.get("identifier") or []
    if not idents:
        problems.append("identifier: at least one required")
    for i, ident in enumerate(idents):
        if not _ABSOLUTE_URI.match(str(ident.get("system", ""))):
            problems.append(f"identifier[{i}].system: absolute URI required")
        if not ident.get("value"):
            problems.append(f"identifier[{i}].value: required")
    names = patient.get("name") or []
    if not names:
        problems.append("name: at least one required")
    if any(not (n.get("family") or n.get("given")) for n in names):
        problems.append("name: us-core-6 needs family or given")
    if patient.get("gender") not in t.GENDER_CODES:
        problems.append("gender: required, from AdministrativeGender")
    if "birthDate" in patient and not _DATE.match(patient["birthDate"]):
        problems.append("birthDate: not a FHIR date")
    for i, addr in enumerate(patient.get("address", [])):
        state, country = addr.get("state"), addr.get("country", "US")
        if state is not None and country == "US" and state not in t.STATES:
            problems.append(f"address[{i}].state: USPS code required for US addresses")
    marital = patient.get("maritalStatus", {}).get("coding", [])
    if any(c.get("system") != t.MARITAL_STATUS or c.get("code") not in t.MARITAL_CODES for c in marital):
        problems.append("maritalStatus: code outside v3-MaritalStatus")
    for i, telecom in enumerate(patient.get("telecom", [])):
        if telecom.get("system") not in ("phone", "fax", "email", "pager", "url", "sms", "other"):
            problems.append(f"telecom[{i}].system: required, from ContactPointSystem")
    problems += _omb_problems(_extension(patient, t.US_CORE_RACE), "race", t.OMB_RACE_CODES)
    problems += _omb_problems(_extension(patient, t.US_CORE_ETHNICITY), "ethnicity", t.OMB_ETHNICITY_CODES)
    return problems


# resourceType -> (elements US Core requires, element -> the codes its required binding allows)
_CLINICAL_RULES: dict[str, tuple[tuple[str, ...], dict[str, frozenset[str]]]] = {
    "Encounter": (("status", "class", "type", "subject"), {"status": frozenset({"finished", "in-progress"})}),
    "Condition": (("clinicalStatus", "category", "code", "subject"), {}),
    "Observation": (("status", "category", "code", "subject"), {"status": frozenset({"final"})}),
    "Immunization": (("status", "vaccineCode", "patient", "occurrenceDateTime"), {"status": frozenset({"completed"})}),
    "AllergyIntolerance": (("clinicalStatus", "verificationStatus", "code", "patient"), {}),
    "Procedure": (("status", "code", "subject", "performedPeriod"), {"status": frozenset({"completed"})}),
    "MedicationRequest": (
        ("status", "intent", "medicationCodeableConcept", "subject", "requester"),
        {"status": frozenset({"active", "stopped"}), "intent": frozenset({"order"})},
    ),
}
# A reference the store resolves: a conditional reference by identifier, or Type/id.
_REFERENCE = re.compile(r"^[A-Z][A-Za-z]+(\?identifier=\S+|/[A-Za-z0-9\-.]{1,64})$")
_SUBJECT = {"Immunization": "patient", "AllergyIntolerance": "patient"}


def check_clinical(resource: dict[str, Any]) -> list[str]:
    """The US Core rules every clinical resource keeps: no empties, a US Core profile, an identifier with an
    absolute system, the required elements and codes of its type, and a resolvable patient reference."""
    problems = [] if is_clean(resource) else [f"{p}: empty or placeholder" for p in empty_values(resource)]
    rtype = resource.get("resourceType", "")
    if rtype not in _CLINICAL_RULES:
        return [*problems, "resourceType: not a clinical type this mapping writes"]
    required, codes = _CLINICAL_RULES[rtype]
    if not any(str(p).startswith(t.US_CORE) for p in resource.get("meta", {}).get("profile", [])):
        problems.append("meta.profile: a US Core profile is required")
    idents = resource.get("identifier") or []
    if len(idents) != 1 or not _ABSOLUTE_URI.match(str(idents[0].get("system", ""))) or not idents[0].get("value"):
        problems.append("identifier: one with an absolute system and a value required")
    problems += [f"{name}: required" for name in required if name not in resource]
    problems += [f"{name}: code outside its required binding" for name, allowed in codes.items()
                 if name in resource and resource[name] not in allowed]  # fmt: skip
    subject = resource.get(_SUBJECT.get(rtype, "subject"), {})
    if not (isinstance(subject, dict) and _REFERENCE.match(str(subject.get("reference", ""))) and
            str(subject.get("reference")).startswith("Patient")):  # fmt: skip
        problems.append("subject: a Patient reference is required")
    return problems
