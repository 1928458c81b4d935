"""Slicing by value and pattern discriminators (category, code, identifier, component, extension url):
which slice an array item belongs to, the item checked by that slice's rules, and each slice's cardinality.

A discriminator whose expected value the slice does not fix (by exists, by profile, a value only a binding
constrains) cannot be matched here: the whole slicing is then reported as not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from beam_pipeline.validation.checks import resolved
from beam_pipeline.validation.issues import ERROR, Issue
from beam_pipeline.validation.terminology import CodeTable, code_table
from beam_pipeline.validation.value_rules import fixed_or_pattern, matches_pattern

if TYPE_CHECKING:
    from beam_pipeline.validation.issues import Check
    from beam_pipeline.validation.tree import Node


def _expected(node: Node, path: str) -> tuple[str, Any] | None:
    if path == "url":
        profiles = [p for t in node.element.get("type", []) for p in t.get("profile", [])]
        if profiles:
            return "fixed", profiles[0].split("|", 1)[0]
    current: Node | None = node
    for step in () if path == "$this" else path.split("."):
        current = current.child(step) if current is not None else None
    if current is None:
        return None
    return fixed_or_pattern(current.element) or _bound(current.element)


def _bound(element: dict[str, Any]) -> tuple[str, Any] | None:
    # A slice that fixes no value but binds it (Condition.category:us-core to the problem-or-health-concern
    # value set): an item belongs to it when its code is in that value set, as the reference validator does.
    binding = element.get("binding", {})
    if binding.get("strength") != "required" or not binding.get("valueSet"):
        return None
    table = code_table(binding["valueSet"])
    return ("binding", table) if table.complete else None


def _in_table(value: Any, table: CodeTable) -> bool:  # noqa: ANN401
    if type(value) is str:
        return value in table.bare_codes
    if type(value) is not dict:
        return False
    codings = value.get("coding") if "coding" in value else [value]
    return type(codings) is list and any(
        type(c) is dict and table.has(c.get("system") or "", c.get("code")) is True for c in codings
    )


def _values_at(item: Any, steps: tuple[str, ...]) -> list[Any]:  # noqa: ANN401
    values = [item]
    for step in steps:
        found: list[Any] = []
        for value in values:
            if type(value) is dict and step in value:
                inner = value[step]
                found.extend(inner if type(inner) is list else [inner])
        values = found
    return values


def _matcher(discriminators: list[tuple[tuple[str, ...], str, Any]]) -> Callable[[Any], bool]:
    def matches(item: Any) -> bool:  # noqa: ANN401
        for steps, kind, expected in discriminators:
            values = _values_at(item, steps)
            if kind == "fixed":
                if expected not in values:
                    return False
            elif kind == "binding":
                if not any(_in_table(value, expected) for value in values):
                    return False
            elif not any(matches_pattern(value, expected) for value in values):
                return False
        return True

    return matches


@dataclass
class _Slice:
    name: str
    minimum: int
    maximum: int | None
    matches: Callable[[Any], bool]
    check: Check


class SliceMatcher:
    """The slices of one array element, in the profile's order (an item belongs to the first it matches)."""

    def __init__(self, slices: list[_Slice], closed: bool, by_value: tuple[str, dict[Any, int]] | None) -> None:
        self.slices = slices
        self.closed = closed
        self.default: Check | None = None
        # Slices told apart by one fixed text at one step (extension url, mostly): a dict lookup per item.
        self.by_value = by_value
        # Only the slices with a minimum, or a maximum below their element's, are counted against it.
        self.bounds = tuple(
            (position, s.minimum, s.maximum)
            for position, s in enumerate(slices)
            if s.minimum > 0 or s.maximum is not None
        )

    def find(self, item: Any) -> int | None:  # noqa: ANN401
        if self.by_value is not None:
            step, table = self.by_value
            value = item.get(step) if type(item) is dict else None
            return table.get(value) if type(value) is str else None
        for position, slice_ in enumerate(self.slices):
            if slice_.matches(item):
                return position
        return None

    def relink(self) -> None:
        """The slices' and the default's checks without the wait for a Complex being compiled."""
        for slice_ in self.slices:
            slice_.check = resolved(slice_.check)
        if self.default is not None:
            self.default = resolved(self.default)

    def check(
        self,
        items: list[Any],
        parent: str,
        name: str,
        indexed: bool,
        issues: list[Issue],
        ms: list[Issue],
        env: dict[str, list[Any]],
    ) -> None:
        slices = self.slices
        counts = [0] * len(slices)
        by_value = self.by_value
        if by_value is not None:
            step, table = by_value
        prefix = f"{parent}.{name}"
        for i, item in enumerate(items):
            path = f"{prefix}[{i}]" if indexed else prefix
            if by_value is not None:
                value = item.get(step) if type(item) is dict else None
                position = table.get(value) if type(value) is str else None
            else:
                position = self.find(item)
            if position is not None:
                counts[position] += 1
                slices[position].check(item, path, issues, ms, env)
            else:
                if self.closed:
                    issues.append(Issue(path, f"slice:{name}", ERROR, "matches no slice of a closed slicing"))
                if self.default is not None:
                    self.default(item, path, issues, ms, env)
        for position, minimum, maximum in self.bounds:
            count = counts[position]
            if count < minimum or (maximum is not None and count > maximum):
                bound = f"requires at least {minimum}" if count < minimum else f"allows at most {maximum}"
                where = f"{prefix}:{slices[position].name}"
                issues.append(Issue(where, f"slice:{name}", ERROR, f"slice {bound}, found {count}"))


def compile_slicing(node: Node, check_for: Callable[[Node], Check], path: str) -> tuple[SliceMatcher | None, str]:
    """The matcher of a sliced element, or None with the reason its slicing is not checked."""
    slicing = node.element["slicing"]
    slices = []
    keys: list[tuple[tuple[str, ...], str, Any]] = []
    for slice_node in node.slices:
        discriminators = []
        for discriminator in slicing.get("discriminator", []):
            kind, where = discriminator.get("type"), discriminator.get("path", "$this")
            if kind not in ("value", "pattern"):
                return None, f"discriminator by {kind} at {path}"
            expected = _expected(slice_node, where)
            if expected is None:
                return None, f"slice {slice_node.slice_name} fixes no value at {where}"
            steps = () if where == "$this" else tuple(where.split("."))
            discriminators.append((steps, expected[0], expected[1]))
        keys.extend(discriminators)
        if not discriminators:
            return None, f"slicing without discriminators at {path}"
        element = slice_node.element
        maximum = None if element.get("max", "*") == "*" else int(element["max"])
        name = slice_node.slice_name or ""
        slices.append(_Slice(name, element.get("min", 0), maximum, _matcher(discriminators), check_for(slice_node)))
    by_value = None
    simple = len(keys) == len(slices) and all(
        kind == "fixed" and len(steps) == 1 and type(value) is str for steps, kind, value in keys
    )
    values = [value for _, _, value in keys]
    if simple and len({steps for steps, _, _ in keys}) == 1 and len(set(values)) == len(values):
        by_value = (keys[0][0][0], {value: position for position, value in enumerate(values)})
    return SliceMatcher(slices, slicing.get("rules") == "closed", by_value), ""
