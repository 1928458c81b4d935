"""Terminology as FHIR resources: ConceptMaps (source code -> target codings, $translate's semantics) and
the ValueSets and CodeSystems they need, read from JSON files and indexed once per worker.

Mappings reach them through `translate('<ConceptMap id>', code)` and `code.memberOf('<ValueSet id>')`.
A code the map does not list translates to nothing; the mapping decides what that means (an error code
it declares, or a fallback with `coalesce`). Codes are matched exactly: mappings lower-case first where
a source's spelling varies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Collection = list[Any]
KINDS = ("ConceptMap", "ValueSet", "CodeSystem")
# ConceptMap equivalences that say the target does NOT stand for the source.
_NOT_A_MATCH = frozenset({"unmatched", "disjoint"})


class TerminologyError(ValueError):
    """A terminology file that cannot be used; the message names the file and the fix, `path` the place in
    the resource (keys and list indexes) it is about."""

    def __init__(self, message: str, path: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class TerminologyFile:
    name: str  # how the error messages name it (a path relative to the mapping folder, or a gs:// URL)
    resource: dict[str, Any]


def _coding(system: str, code: str, display: Any) -> dict[str, str]:  # noqa: ANN401
    coding = {"system": system, "code": code}
    if isinstance(display, str) and display:
        coding["display"] = display
    return coding


@dataclass
class Terminology:
    """ConceptMaps and ValueSets by id."""

    maps: dict[str, dict[str, tuple[dict[str, str], ...]]] = field(default_factory=dict)
    value_sets: dict[str, frozenset[str]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # id -> file name, for messages and versions
    # What memoised expressions over these maps gave, by (expression, text): runtime.memo.
    memo: dict[tuple[str, Any], Collection] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_files(cls, files: Iterable[TerminologyFile]) -> Terminology:
        terminology = cls()
        code_systems: dict[str, frozenset[str]] = {}
        value_sets: list[TerminologyFile] = []
        for item in files:
            kind = item.resource.get("resourceType")
            if kind not in KINDS:
                raise TerminologyError(
                    f"{item.name}: resourceType must be one of {', '.join(KINDS)}, not {kind!r}; "
                    "terminology files are FHIR ConceptMap, ValueSet or CodeSystem JSON"
                )
            ident = _identity(item)
            if ident in terminology.sources:
                raise TerminologyError(
                    f"{item.name}: id {ident!r} is also used by {terminology.sources[ident]}; give each "
                    "terminology resource its own id"
                )
            terminology.sources[ident] = item.name
            if kind == "ConceptMap":
                terminology.maps[ident] = _concept_map(item)
            elif kind == "CodeSystem":
                code_systems[str(item.resource.get("url", ""))] = frozenset(
                    str(c.get("code")) for c in item.resource.get("concept", []) if isinstance(c, dict)
                )
            else:
                value_sets.append(item)
        for item in value_sets:
            terminology.value_sets[_identity(item)] = _value_set(item, code_systems)
        return terminology

    def translate(self, map_id: str, codes: Collection) -> Collection:
        """$translate of one code: the map's target codings. They are the map's own: what writes them into a
        resource copies them (runtime.rt_one)."""
        if len(codes) != 1:
            return []
        code = codes[0]
        if type(code) is str:  # nearly always
            return list(self.maps[map_id].get(code, ()))
        if not isinstance(code, str):
            code = code.get("code") if isinstance(code, dict) else str(code)
        targets = self.maps[map_id].get(code, ()) if isinstance(code, str) else ()
        return list(targets)

    def member_of(self, codes: Collection, value_set_id: str) -> Collection:
        if len(codes) != 1:
            return []
        code = codes[0]
        if isinstance(code, dict):
            code = code.get("code")
        return [isinstance(code, str) and code in self.value_sets[value_set_id]]


def _identity(item: TerminologyFile) -> str:
    ident = item.resource.get("id")
    if not isinstance(ident, str) or not ident:
        raise TerminologyError(f"{item.name}: an 'id' is required; mappings name terminology by id")
    return ident


def _concept_map(item: TerminologyFile) -> dict[str, tuple[dict[str, str], ...]]:
    table: dict[str, list[dict[str, str]]] = {}
    groups = item.resource.get("group")
    if not isinstance(groups, list) or not groups:
        raise TerminologyError(
            f"{item.name}: a ConceptMap needs at least one 'group' with a 'target' system", ("group",)
        )
    for g, group in enumerate(groups):
        target_system = group.get("target") if isinstance(group, dict) else None
        if not isinstance(target_system, str) or not target_system:
            raise TerminologyError(f"{item.name}: group[{g}] needs 'target', the target code system's url", ("group",))
        for e, element in enumerate(group.get("element", [])):
            code = element.get("code") if isinstance(element, dict) else None
            if not isinstance(code, str):
                raise TerminologyError(
                    f"{item.name}: group[{g}].element[{e}] needs 'code', the source code", ("group", g, "element", e)
                )
            for t, target in enumerate(element.get("target", [])):
                if not isinstance(target, dict) or not isinstance(target.get("code"), str):
                    raise TerminologyError(
                        f"{item.name}: group[{g}].element[{e}].target[{t}] needs 'code', the target code"
                    )
                if target.get("equivalence") in _NOT_A_MATCH:
                    continue
                table.setdefault(code, []).append(_coding(target_system, target["code"], target.get("display")))
    return {code: tuple(targets) for code, targets in table.items()}


def _value_set(item: TerminologyFile, code_systems: dict[str, frozenset[str]]) -> frozenset[str]:
    codes: set[str] = set()
    for i, include in enumerate(item.resource.get("compose", {}).get("include", [])):
        concepts = include.get("concept")
        if concepts:
            codes.update(str(c.get("code")) for c in concepts if isinstance(c, dict))
        elif include.get("system") in code_systems:
            codes.update(code_systems[include["system"]])
        else:
            raise TerminologyError(
                f"{item.name}: compose.include[{i}] lists no concepts and its system is not a CodeSystem "
                "file of this set; list the codes, or add the CodeSystem"
            )
    return frozenset(codes)
