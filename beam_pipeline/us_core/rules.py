"""The rules a mapped resource keeps that no profile states, checked on every mapped resource in
microseconds, whatever --profile_validation says.

What a profile says (cardinalities, required bindings, invariants, formats, extension slices) is the
profile validator's (beam_pipeline/us_core/conformance.py); what stays here is the project's own: no empty
or placeholder value, the profiles a mapping declares, a business identifier the write can key on, a
Patient reference the store resolves, and the original sample's code checks that are stricter than US Core
(USPS states, v3 marital status, OMB race and ethnicity categories, whose value set the validator cannot
expand). docs/validation.md lists each rule that went and why. Each violation names the element, never its
value.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from beam_pipeline.mapping.elements import required_elements
from beam_pipeline.us_core import terminology as t

_ABSOLUTE_URI = re.compile(r"^(https?://|urn:(oid|uuid|[a-z0-9-]+):)\S+$")


@functools.lru_cache(maxsize=1024)  # a mapping writes a handful of systems, on every resource
def _absolute(system: str) -> bool:
    return _ABSOLUTE_URI.match(system) is not None


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


def _omb_problems(ext: dict[str, Any] | None, name: str, codes: frozenset[str]) -> list[str]:
    if ext is None:
        return []
    inner = ext.get("extension", [])
    problems = []
    for e in inner:
        if e.get("url") == "ombCategory":
            coding = e.get("valueCoding", {})
            if coding.get("system") != t.CDC_RACE_ETHNICITY or coding.get("code") not in codes:
                problems.append(f"{name}.ombCategory: not an OMB category code")
    return problems


def check_patient(patient: dict[str, Any], *, clean: bool = False) -> list[str]:
    problems = [] if clean or is_clean(patient) else [f"{p}: empty or placeholder" for p in empty_values(patient)]
    if t.US_CORE_PATIENT not in patient.get("meta", {}).get("profile", []):
        problems.append("meta.profile: US Core Patient missing")
    for i, ident in enumerate(patient.get("identifier") or []):
        # Present is the profile's rule; absolute is the write's (a conditional update keys on it).
        system = ident.get("system")
        if system is not None and not _absolute(str(system)):
            problems.append(f"identifier[{i}].system: absolute URI required")
    for i, addr in enumerate(patient.get("address", [])):
        state, country = addr.get("state"), addr.get("country", "US")
        if state is not None and country == "US" and state not in codes("us-state"):
            problems.append(f"address[{i}].state: USPS code required for US addresses")
    marital = patient.get("maritalStatus", {}).get("coding", [])
    if any(c.get("system") != t.MARITAL_STATUS or c.get("code") not in codes("marital-status") for c in marital):
        problems.append("maritalStatus: code outside v3-MaritalStatus")
    race = ethnicity = None
    for e in patient.get("extension", ()):  # the first of each, in one pass
        url = e.get("url")
        if url == t.US_CORE_RACE and race is None:
            race = e
        elif url == t.US_CORE_ETHNICITY and ethnicity is None:
            ethnicity = e
    problems += _omb_problems(race, "race", codes("omb-race"))
    problems += _omb_problems(ethnicity, "ethnicity", codes("omb-ethnicity"))
    return problems


# A reference the store resolves: a conditional reference by identifier, or Type/id.
_REFERENCE = re.compile(r"^[A-Z][A-Za-z]+(\?identifier=\S+|/[A-Za-z0-9\-.]{1,64})$")


def check_resource(resource: dict[str, Any], profiles: Iterable[str], *, clean: bool = False) -> list[str]:
    """The rules a mapped resource keeps before it is written: its profile is one its mapping declares, and
    the rules of its type (a Patient's, or those every other resource keeps). `clean`: the mapping engine
    built it, which writes no empty value and refuses placeholders as it writes, so that scan is skipped."""
    claimed = resource.get("meta", {}).get("profile", []) if isinstance(resource.get("meta"), dict) else []
    problems = ["meta.profile: not a profile the mapping declares"] if not _declared(claimed, profiles) else []
    if resource.get("resourceType") == "Patient":
        return problems + check_patient(resource, clean=clean)
    return problems + check_clinical(resource, clean=clean)


@functools.lru_cache(maxsize=1024)  # a mapping's resources claim the same profiles every time
def _us_core_claim(profiles: tuple[str, ...]) -> tuple[bool, bool, str | None]:
    """Whether the claimed profiles name a US Core one; whether the first is a US Core 6.1.0 profile; and
    then its required element that refers to the Patient (required_elements), if any."""
    us_core = [p for p in profiles if p.startswith(t.US_CORE)]
    if not us_core:
        return False, False, None
    try:
        _, patient = required_elements(us_core[0])
    except KeyError:
        return True, False, None
    return True, True, patient


def _declared(claimed: Any, profiles: Iterable[str]) -> bool:  # noqa: ANN401
    """Some profiles are claimed, and each is one the mapping declares."""
    if type(claimed) is list and type(profiles) is frozenset:
        try:
            return _all_declared(tuple(claimed), profiles)
        except TypeError:  # an unhashable claim: not a declared profile, decided below
            pass
    allowed = frozenset(profiles)
    return bool(claimed) and all(p in allowed for p in claimed)


@functools.lru_cache(maxsize=1024)  # a mapping's resources claim the same profiles every time
def _all_declared(claimed: tuple[Any, ...], allowed: frozenset[str]) -> bool:
    return bool(claimed) and all(p in allowed for p in claimed)


def check_clinical(resource: dict[str, Any], *, clean: bool = False) -> list[str]:
    """The rules every other resource keeps: no empties, a US Core 6.1.0 profile, one identifier with an
    absolute system and a value (the write's business identifier), and a reference to its patient the store
    resolves. That the profile's required elements are there is the profile validator's."""
    problems = [] if clean or is_clean(resource) else [f"{p}: empty or placeholder" for p in empty_values(resource)]
    us_core, known, patient = _us_core_claim(tuple(map(str, resource.get("meta", {}).get("profile", []))))
    if not us_core:
        return [*problems, "meta.profile: a US Core profile is required"]
    idents = resource.get("identifier") or []
    if len(idents) != 1 or not _absolute(str(idents[0].get("system", ""))) or not idents[0].get("value"):
        problems.append("identifier: one with an absolute system and a value required")
    if not known:
        return [*problems, "meta.profile: not a US Core 6.1.0 profile"]
    if patient is not None and patient in resource:
        subject = resource[patient]
        if not (isinstance(subject, dict) and _REFERENCE.match(str(subject.get("reference", ""))) and
                str(subject.get("reference")).startswith("Patient")):  # fmt: skip
            problems.append(f"{patient}: a Patient reference is required")
    return problems
