"""The US Core 6.1.0 Patient rules that matter, checked on every mapped resource in microseconds.

Each violation is a short rule code naming the element, never its value. Full profile validation is the
FHIR server's job (HAPI with US Core loaded); this check keeps a broken mapper from sending junk.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from beam_pipeline.mapping.elements import required_elements
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


@functools.cache
def codes(concept_map: str) -> frozenset[str]:
    """The target codes of one of the shipped ConceptMaps (USPS states, OMB categories, marital status): the
    codes the required bindings these rules check allow."""
    from beam_pipeline.mapping.mapping_set import compiled

    targets = compiled().terminology.maps[concept_map].values()
    return frozenset(coding["code"] for found in targets for coding in found)


def _extension(resource: dict[str, Any], url: str) -> dict[str, Any] | None:
    for e in resource.get("extension", ()):
        if e.get("url") == url:
            return e
    return None


def _omb_problems(ext: dict[str, Any] | None, name: str, codes: frozenset[str]) -> list[str]:
    if ext is None:
        return []
    problems = []
    texts = 0
    for e in ext.get("extension", ()):
        url = e.get("url")
        if url == "text":
            texts += 1
        elif url == "ombCategory":
            coding = e.get("valueCoding", {})
            if coding.get("system") != t.CDC_RACE_ETHNICITY or coding.get("code") not in codes:
                problems.append(f"{name}.ombCategory: not an OMB category code")
    if texts != 1:
        problems.insert(0, f"{name}.text: exactly one required")
    return problems


def check_patient(patient: dict[str, Any], *, clean: bool = False) -> list[str]:
    problems = [] if clean or is_clean(patient) else [f"{p}: empty or placeholder" for p in empty_values(patient)]
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
        if state is not None and country == "US" and state not in codes("us-state"):
            problems.append(f"address[{i}].state: USPS code required for US addresses")
    marital = patient.get("maritalStatus", {}).get("coding", [])
    if any(c.get("system") != t.MARITAL_STATUS or c.get("code") not in codes("marital-status") for c in marital):
        problems.append("maritalStatus: code outside v3-MaritalStatus")
    for i, telecom in enumerate(patient.get("telecom", [])):
        if telecom.get("system") not in ("phone", "fax", "email", "pager", "url", "sms", "other"):
            problems.append(f"telecom[{i}].system: required, from ContactPointSystem")
    problems += _omb_problems(_extension(patient, t.US_CORE_RACE), "race", codes("omb-race"))
    problems += _omb_problems(_extension(patient, t.US_CORE_ETHNICITY), "ethnicity", codes("omb-ethnicity"))
    return problems


# A reference the store resolves: a conditional reference by identifier, or Type/id.
_REFERENCE = re.compile(r"^[A-Z][A-Za-z]+(\?identifier=\S+|/[A-Za-z0-9\-.]{1,64})$")


def _has(resource: dict[str, Any], name: str) -> bool:
    if name.endswith("[x]"):
        stem = name[:-3]
        return any(key.startswith(stem) and key[len(stem) : len(stem) + 1].isupper() for key in resource)
    return name in resource


@functools.cache
def _split_required(required: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    """A profile's required elements as the plain names (a set) and the choice elements (`value[x]`)."""
    return frozenset(n for n in required if not n.endswith("[x]")), tuple(n for n in required if n.endswith("[x]"))


def check_resource(resource: dict[str, Any], profiles: Iterable[str], *, clean: bool = False) -> list[str]:
    """The rules a mapped resource keeps before it is written: its profile is one its mapping declares, and
    the rules of its type (a Patient's, or those every other resource keeps). `clean`: the mapping engine
    built it, which writes no empty value and refuses placeholders as it writes, so that scan is skipped."""
    claimed = resource.get("meta", {}).get("profile", []) if isinstance(resource.get("meta"), dict) else []
    allowed = frozenset(profiles)
    stray = [p for p in claimed if p not in allowed]
    problems = ["meta.profile: not a profile the mapping declares"] if stray or not claimed else []
    if resource.get("resourceType") == "Patient":
        return problems + check_patient(resource, clean=clean)
    return problems + check_clinical(resource, clean=clean)


def check_clinical(resource: dict[str, Any], *, clean: bool = False) -> list[str]:
    """The US Core rules every other resource keeps: no empties, a US Core profile, an identifier with an
    absolute system, the elements its profile requires (min >= 1, read from the profile itself), and a
    resolvable reference to its patient."""
    problems = [] if clean or is_clean(resource) else [f"{p}: empty or placeholder" for p in empty_values(resource)]
    profiles = [str(p) for p in resource.get("meta", {}).get("profile", [])]
    us_core = [p for p in profiles if p.startswith(t.US_CORE)]
    if not us_core:
        return [*problems, "meta.profile: a US Core profile is required"]
    idents = resource.get("identifier") or []
    if len(idents) != 1 or not _ABSOLUTE_URI.match(str(idents[0].get("system", ""))) or not idents[0].get("value"):
        problems.append("identifier: one with an absolute system and a value required")
    try:
        required, patient = required_elements(us_core[0])
    except KeyError:
        return [*problems, "meta.profile: not a US Core 6.1.0 profile"]
    plain, choices = _split_required(required)
    # Nearly always all there: one C-level subset test, the names in order only when one is missing.
    if not (resource.keys() >= plain and all(_has(resource, name) for name in choices)):
        problems += [f"{name}: required" for name in required if not _has(resource, name)]
    if patient is not None:
        subject = resource.get(patient, {})
        if not (isinstance(subject, dict) and _REFERENCE.match(str(subject.get("reference", ""))) and
                str(subject.get("reference")).startswith("Patient")):  # fmt: skip
            problems.append(f"{patient}: a Patient reference is required")
    return problems
