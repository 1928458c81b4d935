"""The checks of one value against what its element fixes: fixed[x] and pattern[x] values, bindings to
value sets, a Coding's code in its code system, a UCUM unit code, the resource type a reference names, a
resource in a resource slot. Each is a Check (issues.py) the compiler attaches to an element."""

from __future__ import annotations

import re
from typing import Any

from beam_pipeline.validation.issues import ERROR, Check, Issue
from beam_pipeline.validation.terminology import CodeTable
from beam_pipeline.validation.ucum import UCUM, is_ucum


def fixed_or_pattern(element: dict[str, Any]) -> tuple[str, Any] | None:
    for key, value in element.items():
        if key.startswith("fixed"):
            return "fixed", value
        if key.startswith("pattern"):
            return "pattern", value
    return None


def matches_pattern(value: Any, pattern: Any) -> bool:  # noqa: ANN401  (any JSON)
    """FHIR's pattern[x]: every property the pattern has, the value has with a matching value; each item
    of a pattern array is matched by some item of the value's array."""
    if type(pattern) is dict:
        return type(value) is dict and all(k in value and matches_pattern(value[k], p) for k, p in pattern.items())
    if type(pattern) is list:
        return type(value) is list and all(any(matches_pattern(v, p) for v in value) for p in pattern)
    return value == pattern


def resource_slot(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
    if type(value) is not dict or type(value.get("resourceType")) is not str:
        issues.append(Issue(path, "type", ERROR, "expected a resource"))


def value_rule(kind: str, expected: Any) -> Check:  # noqa: ANN401
    if kind == "fixed":

        def fixed(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
            if value != expected:
                issues.append(Issue(path, "fixed", ERROR, "differs from the profile's fixed value"))

        return fixed

    def pattern(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
        if not matches_pattern(value, expected):
            issues.append(Issue(path, "pattern", ERROR, "does not match the profile's pattern"))

    return pattern


def code_system_rule(systems: dict[str, frozenset[str]]) -> Check:
    def known_code(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
        system = value.get("system") if type(value) is dict else None
        if type(system) is str:  # not text: the type check reports it
            codes, code = systems.get(system), value.get("code")
            if codes is not None and type(code) is str and code not in codes:
                issues.append(Issue(path, "code-system", ERROR, "code not defined by its code system"))

    return known_code


def coded_concept_rule(systems: dict[str, frozenset[str]]) -> Check:
    """A CodeableConcept's coding of a system carried whole that has no code names no code of it: the
    reference validator checks the concept's codings and reports `system#null` (a lone Coding element
    without a code it lets through)."""

    def uncoded(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
        codings = value.get("coding") if type(value) is dict else None
        if type(codings) is not list:
            return
        for i, coding in enumerate(codings):
            system = coding.get("system") if type(coding) is dict else None
            if type(system) is str and "code" not in coding and system in systems:
                issues.append(Issue(f"{path}.coding[{i}]", "code-system", ERROR, "no code of its code system"))

    return uncoded


# A literal reference names its type first: `Patient/1`, `Patient?identifier=...`, or after a base URL.
_REFERENCE_TYPE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)(?:/[A-Za-z0-9\-.]{1,64}(?:/_history/[^/]+)?|\?.*)$")


def reference_rule(targets: frozenset[str]) -> Check:
    detail = "refers to a resource type the profile does not allow here"

    def reference(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
        text = value.get("reference") if type(value) is dict else None
        if type(text) is str and not text.startswith(("#", "urn:")):
            match = _REFERENCE_TYPE.search(text)
            if match is not None and match.group(1) not in targets:
                issues.append(Issue(path, "reference", ERROR, detail))

    return reference


def ucum_rule(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
    if type(value) is dict and value.get("system") == UCUM:
        code = value.get("code")
        if type(code) is str and not is_ucum(code):
            issues.append(Issue(f"{path}.code", "code-system", ERROR, "not a valid UCUM unit code"))


def binding_rule(table: CodeTable, code: str, severity: str) -> Check:
    detail = f"not in value set {table.url}"

    def coded(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
        if type(value) is str and table.has(None, value) is False:
            issues.append(Issue(path, "binding", severity, detail))

    def coding(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
        # A coding without a system names no code of any value set ("" is a system no table has).
        if type(value) is dict and "code" in value and table.has(value.get("system") or "", value["code"]) is False:
            issues.append(Issue(path, "binding", severity, detail))

    def concept(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
        if type(value) is not dict:
            return
        codings = value.get("coding")
        if type(codings) is not list or not codings:
            if severity == ERROR:
                issues.append(Issue(path, "binding", severity, f"no coding from required value set {table.url}"))
            return
        undecided = False
        for coding in codings:
            if type(coding) is dict and "code" in coding:
                verdict = table.has(coding.get("system") or "", coding["code"])
                if verdict:
                    return
                undecided = undecided or verdict is None
        if not undecided:
            issues.append(Issue(path, "binding", severity, detail))

    if code == "CodeableConcept":
        return concept
    if code in ("Coding", "Quantity"):
        return coding
    # For a fast path (compiler.py): a text in these codes gets no issue; None: no text does.
    coded.bare_codes = None if table.open_systems or table.missing else table.bare_codes  # type: ignore[attr-defined]
    return coded
