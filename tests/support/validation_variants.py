"""Deliberately broken variants of a mapped resource, for checking the profile validator against HAPI's.

Each variant is one change at one path (the label names the change and the path, never a value): an element
deleted, a primitive given the wrong JSON type, a date made impossible, a code replaced by one no value set
has, an object or array emptied, an unknown element added, and the profile-specific breaks (a name with
neither family nor given, a period ending before it starts, a category no slice matches). Deterministic.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Iterator
from typing import Any

_DATE = re.compile(r"[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?(T.*)?")
_CODE_KEYS = frozenset({"code", "gender", "status", "use", "intent", "type", "comparator", "criticality"})
_SKIPPED = frozenset({"meta", "resourceType", "text"})
Path = tuple[str | int, ...]


def _walk(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:  # noqa: ANN401
    if type(value) is dict:
        for key, inner in value.items():
            if not path and key in _SKIPPED:
                continue
            yield (*path, key), inner
            yield from _walk(inner, (*path, key))
    elif type(value) is list:
        for index, inner in enumerate(value):
            yield (*path, index), inner
            yield from _walk(inner, (*path, index))


def _label(kind: str, path: Path) -> str:
    return kind + ":" + "".join(f"[{p}]" if type(p) is int else f".{p}" for p in path)


def _set(resource: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:  # noqa: ANN401
    out = copy.deepcopy(resource)
    holder = out
    for step in path[:-1]:
        holder = holder[step]
    if value is _DELETE:
        del holder[path[-1]]
    else:
        holder[path[-1]] = value
    return out


_DELETE = object()


def _generic(resource: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, value in _walk(resource):
        last = path[-1]
        if type(last) is str:
            yield _label("delete", path), _set(resource, path, _DELETE)
        if type(value) is str:
            yield _label("type", path), _set(resource, path, 12345)
            if _DATE.fullmatch(value):
                yield _label("bad-date", path), _set(resource, path, value[:4] + "-13-45")
            if last in _CODE_KEYS:
                yield _label("code", path), _set(resource, path, "not-a-known-code")
            yield _label("empty-string", path), _set(resource, path, "")
        elif type(value) is dict:
            yield _label("empty-object", path), _set(resource, path, {})
            yield _label("unknown", path), _set(resource, path, {**value, "unknownElement": "x"})
        elif type(value) is list and value:
            yield _label("empty-array", path), _set(resource, path, [])
            if type(value[0]) is dict:
                yield _label("not-an-array", path), _set(resource, path, value[0])
    yield "unknown:.", {**resource, "unknownElement": "x"}


def _specific(resource: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    kind = resource["resourceType"]
    if kind == "Patient":
        yield "invariant:.name us-core-6", {**resource, "name": [{"use": "official"}]}
        yield (
            "slice:.extension race without text",
            {
                **resource,
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                        "extension": [
                            {
                                "url": "detailed",
                                "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3"},
                            }
                        ],
                    }
                ],
            },
        )
    if "period" in resource and isinstance(resource["period"], dict):
        yield "invariant:.period per-1", {**resource, "period": {"start": "2020-02-01", "end": "2020-01-01"}}
    if "category" in resource:
        yield (
            "slice:.category",
            {**resource, "category": [{"coding": [{"system": "http://example.org/c", "code": "x"}]}]},
        )
    if kind == "Observation":
        yield "pattern:.code", {**resource, "code": {"coding": [{"system": "http://example.org/c", "code": "x"}]}}


def variants(resource: dict[str, Any], limit: int | None = None, seed: int = 7) -> list[tuple[str, dict[str, Any]]]:
    """(label, broken resource) pairs: every profile-specific break, then generic ones sampled to `limit`."""
    specific = list(_specific(resource))
    generic = list(_generic(resource))
    if limit is not None and len(specific) + len(generic) > limit:
        generic = random.Random(seed).sample(generic, max(0, limit - len(specific)))
    return specific + generic
