"""ValueSets as code tables: expanded once from what the package and the R4 base extract carry.

A ValueSet is enumerable when every include is a concept list, a whole CodeSystem we carry with content
"complete", or another enumerable ValueSet. Filters (is-a, regex...), systems we do not carry (SNOMED CT,
LOINC) and fragments are not enumerable: such a part is "not checked" (codes of that system pass, and the
validator lists the binding as not checked), never silently passed as checked.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from beam_pipeline.validation.package import definitions


@dataclass(frozen=True)
class CodeTable:
    """The codes of a ValueSet per system; `open_systems` are the systems (or "*") it could not enumerate."""

    url: str
    codes: frozenset[tuple[str, str]]  # (system, code)
    bare_codes: frozenset[str]  # codes alone, for `code` elements (no system in the instance)
    open_systems: frozenset[str]
    missing: bool = False  # the ValueSet itself is not carried

    @property
    def complete(self) -> bool:
        return not self.open_systems and not self.missing

    def has(self, system: str | None, code: object) -> bool | None:
        """True or False when decidable; None when the code's system is one we could not enumerate."""
        if type(code) is not str or (system is not None and type(system) is not str):
            return False  # a code or system that is not text (an array, an object) is in no value set
        if system is None:
            if code in self.bare_codes:
                return True
            return None if self.open_systems or self.missing else False
        if (system, code) in self.codes:
            return True
        if self.missing or "*" in self.open_systems or system in self.open_systems:
            return None
        return False


def _system_codes(system: dict[str, Any]) -> Iterable[str]:
    pending = list(system.get("concept", []))
    while pending:
        concept = pending.pop()
        yield concept["code"]
        pending.extend(concept.get("concept", []))


@functools.cache
def code_table(url: str) -> CodeTable:
    """The ValueSet at `url` (a `|version` suffix ignored) as a CodeTable."""
    return _expand(url.split("|", 1)[0], frozenset())


def _expand(url: str, seen: frozenset[str]) -> CodeTable:
    loaded = definitions()
    value_set = loaded.value_sets.get(url)
    if value_set is None or url in seen:
        return CodeTable(url, frozenset(), frozenset(), frozenset(), missing=True)
    codes: set[tuple[str, str]] = set()
    open_systems: set[str] = set()
    compose = value_set.get("compose", {})
    for include in compose.get("include", []):
        system_url = include.get("system")
        part: set[tuple[str, str]] | None = set()
        if system_url and "concept" in include and "filter" not in include:
            part = {(system_url, c["code"]) for c in include["concept"]}
        elif system_url and "filter" not in include:
            system = loaded.code_systems.get(system_url)
            if system is not None and system.get("content") == "complete":
                part = {(system_url, code) for code in _system_codes(system)}
            else:
                part = None
        elif system_url:
            part = None
        for nested_url in include.get("valueSet", []):
            nested = _expand(nested_url.split("|", 1)[0], seen | {url})
            open_systems |= nested.open_systems | ({"*"} if nested.missing else set())
            # An include with a system and value sets is their intersection; the package has none, so this
            # union is only reached for value-set-only includes.
            part = nested.codes if part is None or not system_url else part & nested.codes
        if part is None:
            open_systems.add(system_url or "*")
        else:
            codes |= part
    for exclude in compose.get("exclude", []):
        if "concept" in exclude and exclude.get("system"):
            codes -= {(exclude["system"], c["code"]) for c in exclude["concept"]}
        else:
            open_systems.add(exclude.get("system") or "*")  # an exclusion we cannot apply: not decidable
    return CodeTable(url, frozenset(codes), frozenset(code for _, code in codes), frozenset(open_systems))


@functools.cache
def code_systems() -> dict[str, frozenset[str]]:
    """The codes of every CodeSystem carried whole (content "complete"), by URL: a coding of one of these
    systems must use one of its codes whatever its binding, as the reference validator checks."""
    return {
        url: frozenset(_system_codes(system))
        for url, system in definitions().code_systems.items()
        if system.get("content") == "complete" and system.get("concept")
    }
