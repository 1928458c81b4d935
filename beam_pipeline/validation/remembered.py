"""An extension's check, remembering the values that passed: a feed writes the same few race, ethnicity and
birth-sex extensions on every Patient, and checking one walks two levels of slices (a third of a US Core
Patient's validation).

A value is remembered by a 128-bit BLAKE2b digest of its compact JSON, never by its content (no patient
data stays in the worker), and only when the check found nothing, must-support gaps included. That is sound
when the check's answer depends on the value alone, which `reads_only_the_value` decides from the
definitions: no invariant in the extension, or in any type it may hold, reads a %variable (the resource
around it), but for two that cannot change the answer for a remembered value: %ucum is a constant, and
ref-1 (Reference) reads %rootResource only for a reference to a contained resource, `#id`, which a
remembered value never holds (such values are checked every time).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

import msgspec

from beam_pipeline.validation.issues import Check, Issue
from beam_pipeline.validation.package import Definitions

# Distinct passing values kept per extension (a feed writes few); full, the table starts again, so values that
# recur are found again whatever unique ones came first.
_REMEMBERED = 1024
_ENCODE = msgspec.json.Encoder().encode
_CONTAINED_REFERENCE = b'"reference":"#'  # compact JSON: no space after the colon
# A %variable an invariant reads, other than the constant %ucum (a '%' inside a regex literal is no variable).
_VARIABLE = re.compile(r"%(?!ucum\b)[A-Za-z`]")
_GUARDED = frozenset({"ref-1"})


def remembered(check: Check, limit: int = _REMEMBERED) -> Check:
    """`check`, skipped for a value it passed before (see the module's docstring for when that is sound)."""
    passed: set[bytes] = set()

    def run(obj: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401
        try:
            encoded = _ENCODE(obj)
        except (TypeError, ValueError, msgspec.MsgspecError):  # not JSON: the check says what is wrong
            check(obj, path, issues, ms, env)
            return
        if _CONTAINED_REFERENCE in encoded:
            check(obj, path, issues, ms, env)
            return
        key = hashlib.blake2b(encoded, digest_size=16).digest()
        if key in passed:
            return
        found = len(issues) + len(ms)
        check(obj, path, issues, ms, env)
        if len(issues) + len(ms) == found:
            if len(passed) >= limit:
                passed.clear()
            passed.add(key)

    run.passed = passed  # type: ignore[attr-defined]  (for the tests)
    return run


def reads_only_the_value(definitions: Definitions, url: str) -> bool:
    """Whether checking a value of the StructureDefinition at `url` reads nothing but the value: no
    invariant of it, of the profiles its elements name or of their base types reads a %variable (but those
    the module's docstring lists)."""
    seen: set[str] = set()
    pending = [url]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        definition = definitions.structures.get(current)
        if definition is None:
            return False  # a profile the package does not carry: nothing to decide it by
        if definition.get("kind") == "resource":
            return False
        for element in definition.get("snapshot", {}).get("element", []):
            if reads_variables(element.get("constraint", [])):
                return False
            for kind in element.get("type", []):
                pending.extend(p.split("|", 1)[0] for p in kind.get("profile", []))
                datatype = definitions.datatype(kind.get("code", ""))
                if datatype is not None:
                    pending.append(datatype["url"])
    return True


def reads_variables(constraints: Iterable[dict[str, Any]]) -> bool:
    """Whether any of these constraints reads a %variable (but those the module's docstring lists)."""
    return any(
        c.get("key") not in _GUARDED and _VARIABLE.search(c.get("expression") or "") is not None for c in constraints
    )
