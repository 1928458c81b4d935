"""UCUM unit codes (https://ucum.org/ucum): whether a Quantity's code is a valid UCUM expression, as the
reference validator checks when the system is http://unitsofmeasure.org.

The grammar: terms joined by `.` and `/` (a leading `/` allowed), each a unit atom with an optional
metric prefix and integer exponent, a positive integer factor, a parenthesised term, or an annotation
`{...}` (alone or after a unit). Atoms and prefixes come from the UCUM essence (the R4 base extract).
Results are cached: a feed uses few unit codes.
"""

from __future__ import annotations

import functools
import json
import re

from beam_pipeline.shipped import shipped_path
from beam_pipeline.validation.package import R4_BASE_EXTRACT

UCUM = "http://unitsofmeasure.org"
_EXPONENT = re.compile(r"(.*?)([+-]?[0-9]+)")
_ANNOTATION = re.compile(r"\{[!-z|~]*\}")  # printable ASCII but braces


@functools.cache
def _tables() -> tuple[frozenset[str], dict[str, bool]]:
    data = json.loads(shipped_path("include/fhir", R4_BASE_EXTRACT).read_text()).get("ucum", {})
    return frozenset(data.get("prefixes", [])), data.get("atoms", {})


def _split(term: str) -> list[str] | None:
    """The components of a term at the top level (outside parentheses), or None when unbalanced."""
    parts, depth, start, annotation = [], 0, 0, False
    for i, char in enumerate(term):
        if annotation:
            annotation = char != "}"
        elif char == "{":
            annotation = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return None
        elif char in "./" and depth == 0:
            parts.append(term[start:i])
            start = i + 1
    if depth or annotation:
        return None
    parts.append(term[start:])
    return parts


def _simple(unit: str) -> bool:
    prefixes, atoms = _tables()
    if unit in atoms:
        return True
    return any(unit.startswith(p) and atoms.get(unit[len(p) :]) is True for p in prefixes)


def _component(text: str) -> bool:
    if not text:
        return False
    if text.startswith("(") and text.endswith(")"):
        return is_ucum(text[1:-1])
    brace = text.find("{")
    if brace >= 0:
        if not _ANNOTATION.fullmatch(text[brace:]):
            return False
        text = text[:brace]
        if not text:
            return True  # an annotation alone stands for 1
    if text.isdigit():
        return True
    if _simple(text):
        return True
    match = _EXPONENT.fullmatch(text)
    return bool(match and match.group(1) and _simple(match.group(1)))


@functools.lru_cache(maxsize=4096)
def is_ucum(code: str) -> bool:
    """Whether `code` is a valid UCUM expression (case-sensitive form)."""
    if not code or code.strip() != code or " " in code:
        return False
    term = code[1:] if code.startswith("/") else code
    parts = _split(term)
    return parts is not None and all(_component(part) for part in parts)
