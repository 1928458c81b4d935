"""Deliberately broken variants of a mapped resource, for checking the profile validator against HAPI's.

Each variant is one change at one place; its label names the kind of change and the path, never a value.
`broken_variants` makes only changes that are invalid by construction, whatever validator looks: what makes
them invalid is read from the implementation guide (the profile's snapshot and the R4 datatypes: min >= 1,
required bindings, fixed and pattern values, slices, target types, invariants), never from our validator.

    missing          an element the profile requires (min >= 1) deleted
    binding          a code outside the required value set bound to a code, Coding or CodeableConcept
    fixed            a fixed or pattern value changed
    date-*           an impossible date or time (month 13, 30 February, hour 25, a time without its zone)
    invariant-*      an invariant broken (per-1, ext-1, us-core-6, obs-6, con-5, ait-2, us-core-1, ...)
    slice-*          a required slice no item matches, a slice of at most one given twice
    type             a primitive given the wrong JSON type; format: a code or uri with bad whitespace
    empty-*          an empty string, object or array (ele-1, and R4 JSON forbids the empty array)
    unknown          an element no definition has
    not-an-array     an array given as its first item; array: a single value given as an array

`edited_variants` makes changes that may well stay valid (an optional element deleted, a code of a binding
that is not required changed) and those HAPI's $validate lets through though the guide forbids them (a
reference naming a resource type the element does not allow, an empty array of primitives): they look for
false rejections. Both are deterministic: the same resource
gives the same variants in the same order; `sample` takes a seeded selection that keeps every kind.
"""

from __future__ import annotations

import copy
import functools
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from beam_pipeline.validation.compiler import type_code
from beam_pipeline.validation.package import definitions

Path = tuple[str | int, ...]
_DATE_TYPES = frozenset({"date", "dateTime", "instant"})
_URI_TYPES = frozenset({"uri", "url", "canonical"})
_CODED = frozenset({"Coding", "CodeableConcept"})
_DATE = re.compile(r"[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?(T.*)?")
_TIME = re.compile(r"(T)([0-9]{2})(:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?)(Z|[+-][0-9]{2}:[0-9]{2})$")
_BAD_CODE = "not-a-known-code"
_OTHER_SYSTEM = "http://example.org/not-in-the-profile"
_DELETE = object()
_UNKNOWN = "unknownElement"


@dataclass(frozen=True)
class Variant:
    kind: str
    path: Path
    resource: dict[str, Any]

    @property
    def label(self) -> str:
        return self.kind + ":" + ("".join(f"[{p}]" if type(p) is int else f".{p}" for p in self.path) or ".")

    @property
    def element(self) -> str:
        """The path without array positions: two variants of one kind at one element are the same test."""
        return ".".join(p for p in self.path if type(p) is str)


# ---------------------------------------------------------------------------------------------------------
# What the guide says about an element at a JSON path


def _type_slices_only(element_id: str) -> bool:
    return all(part.split(":", 1)[0].endswith("[x]") for part in element_id.split(".") if ":" in part)


def _key(element_id: str) -> str:
    # Observation.value[x]:valueQuantity.code -> Observation.valueQuantity.code (the JSON names).
    return ".".join(part.split(":", 1)[1] if ":" in part else part for part in element_id.split("."))


@functools.cache
def _index(url: str) -> dict[str, dict[str, Any]]:
    """A structure's elements by JSON-name path, named slices left out (type slices kept under their name)."""
    out: dict[str, dict[str, Any]] = {}
    for element in definitions().structures[url]["snapshot"]["element"]:
        if _type_slices_only(element["id"]):
            out.setdefault(_key(element["id"]), element)
    return out


@functools.cache
def _slices(url: str) -> dict[str, list[dict[str, Any]]]:
    """A structure's named slices of top-level elements: `Observation.category` -> its slice elements."""
    out: dict[str, list[dict[str, Any]]] = {}
    for element in definitions().structures[url]["snapshot"]["element"]:
        head, _, name = element["id"].rpartition(":")
        if head and "." not in name and ":" not in head and head.count(".") == 1:
            out.setdefault(head, []).append(element)
    return out


def _types(element: dict[str, Any]) -> list[str]:
    return [type_code(t) for t in element.get("type", [])]


def _datatype_url(code: str) -> str | None:
    datatype = definitions().datatype(code)
    return datatype["url"] if datatype else None


@functools.cache
def element_at(profile: str, resource_type: str, names: tuple[str, ...]) -> tuple[dict[str, Any] | None, str]:
    """The ElementDefinition the guide gives the element at these JSON names (array positions left out), and
    its type; (None, "") where the guide says nothing (a contentReference, inside an extension's value...)."""
    url, prefix, element, code = profile, resource_type, _index(profile).get(resource_type), resource_type
    for name in names:
        found = _child(url, prefix, name)
        if found is None and element is not None and code and code[0].isupper():
            type_url = _datatype_url(code)
            if type_url is None:
                return None, ""
            url, prefix = type_url, code
            found = _child(url, prefix, name)
        if found is None:
            return None, ""
        element, code = found
        prefix = f"{prefix}.{name}"
        if element.get("contentReference"):
            return None, ""
    return element, code


def _child(url: str, prefix: str, name: str) -> tuple[dict[str, Any], str] | None:
    index = _index(url)
    element = index.get(f"{prefix}.{name}")
    if element is not None and not element["path"].endswith("[x]"):
        types = _types(element)
        return element, types[0] if len(types) == 1 else ""
    for cut in range(len(name) - 1, 0, -1):
        if not name[cut].isupper():
            continue
        choice = index.get(f"{prefix}.{name[:cut]}[x]")
        if choice is None:
            continue
        for code in _types(choice):
            if code[:1].upper() + code[1:] == name[cut:]:
                return element or choice, code
    return None


# ---------------------------------------------------------------------------------------------------------
# Edits


def _walk(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:  # noqa: ANN401  (any JSON)
    if type(value) is dict:
        for key, inner in value.items():
            if path == ("meta",) and key == "profile":
                continue  # which profile HAPI checks against: changing it changes the question
            if not path and key == "resourceType":
                continue
            yield (*path, key), inner
            yield from _walk(inner, (*path, key))
    elif type(value) is list:
        for index, inner in enumerate(value):
            yield (*path, index), inner
            yield from _walk(inner, (*path, index))


def _set(resource: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:  # noqa: ANN401
    out = copy.deepcopy(resource)
    holder: Any = out
    for step in path[:-1]:
        holder = holder[step]
    if value is _DELETE:
        del holder[path[-1]]
    else:
        holder[path[-1]] = value
    return out


def _merge(resource: dict[str, Any], path: Path, changes: dict[str, Any]) -> dict[str, Any]:
    """The object at `path` with some keys set (or deleted with _DELETE)."""
    out = copy.deepcopy(resource)
    holder: Any = out
    for step in path:
        holder = holder[step]
    for key, value in changes.items():
        if value is _DELETE:
            holder.pop(key, None)
        else:
            holder[key] = value
    return out


Make = Callable[[], dict[str, Any]]
Candidate = tuple[str, Path, Make]


def _names(path: Path) -> tuple[str, ...]:
    return tuple(p for p in path if type(p) is str)


def _bad_dates(value: str, code: str) -> Iterator[tuple[str, str]]:
    if len(value) >= 7:
        yield "date-month", value[:5] + "13" + value[7:]
    if len(value) >= 10:
        yield "date-day", value[:5] + "02-30" + value[10:]
    timed = _TIME.search(value)
    if timed and code in ("dateTime", "instant"):
        yield "date-hour", value[: timed.start(2)] + "25" + value[timed.end(2) :]
        yield "date-zone", value[: timed.start(4)]


def _code_breaks(resource: dict[str, Any], path: Path, value: Any, element: dict[str, Any], code: str):  # noqa: ANN401, ANN202
    binding = element.get("binding", {})
    if binding.get("strength") != "required" or not binding.get("valueSet"):
        return
    if code == "code" and type(value) is str:
        yield "binding", path, lambda: _set(resource, path, _BAD_CODE)
    elif code in _CODED and type(value) is dict:
        codings = value.get("coding", [value]) if code == "CodeableConcept" else [value]
        system = next((c.get("system") for c in codings if type(c) is dict and c.get("system")), _OTHER_SYSTEM)
        wrong = {"system": system, "code": _BAD_CODE}
        if code == "CodeableConcept":
            yield "binding", path, lambda: _merge(resource, path, {"coding": [wrong]})
        else:
            yield "binding", path, lambda: _set(resource, path, wrong)


def _other(value: Any, code: str) -> Any:  # noqa: ANN401
    if type(value) is bool:
        return not value
    if type(value) in (int, float):
        return value + 1
    if code in _URI_TYPES:
        return _OTHER_SYSTEM
    if code in _CODED:
        other = {"system": _OTHER_SYSTEM, "code": "other"}
        return {"coding": [other]} if code == "CodeableConcept" else other
    return "other-value"


def _fixed_breaks(resource: dict[str, Any], path: Path, value: Any, element: dict[str, Any], code: str):  # noqa: ANN401, ANN202
    if any(k.startswith("fixed") for k in element) or (
        any(k.startswith("pattern") for k in element) and (code in _CODED or type(value) is not dict)
    ):
        yield "fixed", path, lambda: _set(resource, path, _other(value, code))


def _reference_breaks(resource: dict[str, Any], path: Path, value: Any, element: dict[str, Any], code: str):  # noqa: ANN401, ANN202
    if code != "Reference" or type(value) is not dict or type(value.get("reference")) is not str:
        return
    targets = [p for t in element.get("type", []) if t.get("code") == "Reference" for p in t.get("targetProfile", [])]
    kinds = {definitions().structures.get(t.split("|")[0], {}).get("type") for t in targets}
    if not targets or None in kinds or "Resource" in kinds or "Basic" in kinds:
        return
    reference = value["reference"]
    cut = re.match(r"[A-Za-z]+(?=[/?])", reference)
    if cut:
        yield "reference", path, lambda: _merge(resource, path, {"reference": "Basic" + reference[cut.end() :]})


def _primitive_breaks(resource: dict[str, Any], path: Path, value: Any, code: str):  # noqa: ANN401, ANN202
    if type(value) is str:
        yield "type", path, lambda: _set(resource, path, 12345)
        yield "empty-string", path, lambda: _set(resource, path, "")
        if code in _DATE_TYPES or (not code and _DATE.fullmatch(value)):
            for kind, bad in _bad_dates(value, code or "dateTime"):
                yield kind, path, lambda bad=bad: _set(resource, path, bad)
        if code == "code":
            yield "format", path, lambda: _set(resource, path, value + "  x")
        elif code in _URI_TYPES:
            yield "format", path, lambda: _set(resource, path, "http://example.org/with space")
    elif type(value) is bool:
        yield "type", path, lambda: _set(resource, path, "true" if value else "false")
    elif type(value) in (int, float):
        yield "type", path, lambda: _set(resource, path, str(value))
        if code == "positiveInt":
            yield "range", path, lambda: _set(resource, path, 0)
        elif code == "unsignedInt":
            yield "range", path, lambda: _set(resource, path, -1)


def _candidates(resource: dict[str, Any], profile: str) -> Iterator[tuple[bool, Candidate]]:
    """(broken by construction?, candidate) for every change at every path, then the profile's own."""
    kind = resource["resourceType"]
    for path, value in _walk(resource):
        element, code = element_at(profile, kind, _names(path))
        last = path[-1]
        if type(last) is str:
            required = element is not None and element.get("min", 0) >= 1
            yield required, ("missing" if required else "delete", path, lambda path=path: _set(resource, path, _DELETE))
            if type(value) is list and value:
                yield True, ("not-an-array", path, lambda path=path, value=value: _set(resource, path, value[0]))
            elif type(value) is not list and element is not None and element.get("base", element).get("max") == "1":
                yield True, ("array", path, lambda path=path, value=value: _set(resource, path, [value]))
        if type(value) is dict:
            yield True, ("empty-object", path, lambda path=path: _set(resource, path, {}))
            yield True, ("unknown", path, lambda path=path: _merge(resource, path, {_UNKNOWN: "x"}))
        elif type(value) is list:
            # HAPI's JSON parser drops an empty array of primitives before validating: not a break for it.
            primitives = code[:1].islower() if code else bool(value) and type(value[0]) is not dict
            yield not primitives, ("empty-array", path, lambda path=path: _set(resource, path, []))
        else:
            for candidate in _primitive_breaks(resource, path, value, code):
                yield True, candidate
        if element is not None:
            for rule in (_code_breaks, _fixed_breaks):
                for candidate in rule(resource, path, value, element, code):
                    yield True, candidate
            # The type a reference names, against the element's targets: HAPI's $validate does not check it
            # when it cannot resolve the reference (ours does): an edit, listed in docs/validation.md.
            for candidate in _reference_breaks(resource, path, value, element, code):
                yield False, candidate
            binding = element.get("binding", {})
            if binding.get("strength") in ("extensible", "preferred", "example") and code == "code":
                yield False, ("code", path, lambda path=path: _set(resource, path, _BAD_CODE))
        if (
            type(value) is dict
            and code == "Period"
            or (type(value) is dict and set(value) <= {"start", "end"} and value)
        ):
            for candidate in _reversed_period(resource, path, value):
                yield True, candidate
        if type(value) is dict and type(value.get("url")) is str and type(last) is int and path[-2] == "extension":
            nested = "extension" in value
            change = (
                {"valueString": "x"} if nested else {"extension": [{"url": "http://example.org/x", "valueString": "x"}]}
            )
            yield True, ("invariant-ext-1", path, lambda path=path, change=change: _merge(resource, path, change))
    yield True, ("unknown", (), lambda: {**resource, _UNKNOWN: "x"})
    yield True, ("format", ("id",), lambda: {**resource, "id": "not a valid id!"})
    yield True, ("missing", ("text", "div"), lambda: {**resource, "text": {"status": "generated"}})
    div = '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'
    yield True, ("binding", ("text", "status"), lambda: {**resource, "text": {"status": _BAD_CODE, "div": div}})
    # Every resource may carry these, whatever its profile: a date in meta, an extension of its own.
    meta = resource.get("meta", {})
    for kind, bad in _bad_dates("2024-05-06T07:08:09Z", "instant"):
        yield True, (kind, ("meta", "lastUpdated"), lambda bad=bad: {**resource, "meta": {**meta, "lastUpdated": bad}})
    both = {"url": "http://example.org/x", "valueString": "x", "extension": [{"url": "y", "valueString": "y"}]}
    at = len(resource.get("extension", []))
    yield (
        True,
        (
            "invariant-ext-1",
            ("extension", at),
            lambda: {**resource, "extension": [*resource.get("extension", []), both]},
        ),
    )
    for candidate in _slice_breaks(resource, profile):
        yield True, candidate
    for candidate in _invariant_breaks(resource, profile):
        yield True, candidate
    quantity = resource.get("valueQuantity")
    if type(quantity) is dict and "system" in quantity and "us-core-3" in _constraint_keys(profile):
        # us-core-3 (`value.ofType(Quantity).system` is UCUM) breaks on the Observation itself; on
        # Observation.value[x], `value` is the Quantity's own decimal and it always holds (an edit there).
        changed = {**quantity, "system": _OTHER_SYSTEM}
        at_root = "us-core-3" in _constraint_keys(profile, root_only=True)
        yield (
            at_root,
            ("invariant-us-core-3", ("valueQuantity", "system"), lambda: {**resource, "valueQuantity": changed}),
        )


def _reversed_period(resource: dict[str, Any], path: Path, period: dict[str, Any]) -> Iterator[Candidate]:
    start, end = period.get("start"), period.get("end")
    # The same precision on both sides: FHIRPath gives no answer comparing a date with a dateTime.
    if type(start) is str and len(start) >= 4:
        yield "invariant-per-1", path, lambda: _merge(resource, path, {"end": "1900" + start[4:]})
    elif type(end) is str and len(end) >= 4:
        yield "invariant-per-1", path, lambda: _merge(resource, path, {"start": "2999" + end[4:]})


def _slice_match(item: Any, slice_: dict[str, Any]) -> bool:  # noqa: ANN401
    if type(item) is not dict:
        return False
    profiles = [p for t in slice_.get("type", []) for p in t.get("profile", [])]
    if profiles:
        return item.get("url") in {p.split("|")[0] for p in profiles}
    pattern = slice_.get("patternCodeableConcept")
    if pattern:
        have = {(c.get("system"), c.get("code")) for c in item.get("coding", []) if type(c) is dict}
        return all((c.get("system"), c.get("code")) in have for c in pattern.get("coding", []))
    return False


def _slice_breaks(resource: dict[str, Any], profile: str) -> Iterator[Candidate]:
    kind = resource["resourceType"]
    for head, slices in _slices(profile).items():
        name = head.split(".", 1)[1]
        items = resource.get(name)
        if type(items) is not list or not items:
            continue
        element, code = element_at(profile, kind, (name,))
        if code == "CodeableConcept" and any(s.get("min", 0) >= 1 for s in slices):
            other = [{"coding": [{"system": _OTHER_SYSTEM, "code": "other"}]}]
            yield "slice-required", (name,), lambda name=name, other=other: {**resource, name: other}
        for slice_ in slices:
            if slice_.get("max") != "1":
                continue
            for index, item in enumerate(items):
                if _slice_match(item, slice_):
                    twice = [*items, copy.deepcopy(item)]
                    yield "slice-max", (name, index), lambda name=name, twice=twice: {**resource, name: twice}
                    break


@functools.cache
def _constraint_keys(profile: str, *, root_only: bool = False) -> frozenset[str]:
    """The keys of the profile's error invariants (of its root element only, if asked)."""
    elements = definitions().structures[profile]["snapshot"]["element"]
    return frozenset(
        c["key"]
        for e in (elements[:1] if root_only else elements)
        for c in e.get("constraint", [])
        if c.get("severity") == "error"
    )


def _value_key(resource: dict[str, Any]) -> str | None:
    return next((k for k in resource if k.startswith("value") and k[5:6].isupper()), None)


def _invariant_breaks(resource: dict[str, Any], profile: str) -> Iterator[Candidate]:  # noqa: C901, PLR0912
    keys = _constraint_keys(profile)
    kind = resource["resourceType"]
    if kind == "Patient" and "us-core-6" in keys:
        yield "invariant-us-core-6", ("name", 0), lambda: {**resource, "name": [{"use": "official"}]}
    value = _value_key(resource)
    if kind == "Observation":
        if value and "obs-6" in keys:
            absent = {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "unknown"}]
            }
            yield "invariant-obs-6", ("dataAbsentReason",), lambda: {**resource, "dataAbsentReason": absent}
        if value and not resource.get("component") and not resource.get("hasMember"):
            for key in ("us-core-2", "vs-2"):
                if key in keys:
                    yield f"invariant-{key}", (value,), lambda: {k: v for k, v in resource.items() if k != value}
                    break
        effective = resource.get("effectiveDateTime")
        if type(effective) is str and len(effective) >= 4:
            for key in ("us-core-1", "vs-1"):
                if key in keys:
                    yield (
                        f"invariant-{key}",
                        ("effectiveDateTime",),
                        lambda: {**resource, "effectiveDateTime": effective[:4]},
                    )
                    break
    if kind == "Condition" and "con-5" in keys and "clinicalStatus" in resource:
        system = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
        condition_status = {"coding": [{"system": system, "code": "entered-in-error"}]}
        yield "invariant-con-5", ("verificationStatus",), lambda: {**resource, "verificationStatus": condition_status}
    if kind == "Condition" and "con-4" in keys and "clinicalStatus" in resource:
        active = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}
        yield (
            "invariant-con-4",
            ("abatementString",),
            lambda: {
                **{k: v for k, v in resource.items() if not k.startswith("abatement")},
                "clinicalStatus": active,
                "abatementString": "resolved",
            },
        )
    if kind == "AllergyIntolerance" and "clinicalStatus" in resource:
        system = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
        status = {"coding": [{"system": system, "code": "entered-in-error"}]}
        if "ait-2" in keys:
            yield "invariant-ait-2", ("verificationStatus",), lambda: {**resource, "verificationStatus": status}
        verification = resource.get("verificationStatus", {}).get("coding", [{}])[0].get("code")
        if "ait-1" in keys and verification != "entered-in-error":
            yield (
                "invariant-ait-1",
                ("clinicalStatus",),
                lambda: {k: v for k, v in resource.items() if k != "clinicalStatus"},
            )
    if kind == "Coverage" and "us-core-15" in keys and "subscriberId" in resource:
        yield (
            "invariant-us-core-15",
            ("subscriberId",),
            lambda: {
                **{k: v for k, v in resource.items() if k != "subscriberId"},
                "identifier": [i for i in resource.get("identifier", []) if "type" not in i],
            },
        )
    if kind == "MedicationRequest" and "us-core-21" in keys and resource.get("intent") == "order":
        yield "invariant-us-core-21", ("requester",), lambda: {k: v for k, v in resource.items() if k != "requester"}
    if kind == "Procedure" and "us-core-7" in keys and resource.get("status") in ("completed", "in-progress"):
        yield (
            "invariant-us-core-7",
            ("performed",),
            lambda: {k: v for k, v in resource.items() if not k.startswith("performed")},
        )
    if kind == "Organization":
        if "org-2" in keys and resource.get("address"):
            home_address = [{**resource["address"][0], "use": "home"}]
            yield "invariant-org-2", ("address", 0, "use"), lambda: {**resource, "address": home_address}
        if "org-3" in keys and resource.get("telecom"):
            home_telecom = [{**resource["telecom"][0], "use": "home"}]
            yield "invariant-org-3", ("telecom", 0, "use"), lambda: {**resource, "telecom": home_telecom}
    if kind == "CarePlan" and "cpl-3" in keys and resource.get("activity"):
        both = [
            {
                **resource["activity"][0],
                "reference": {"reference": "ServiceRequest/x"},
                "detail": {"status": "completed"},
            }
        ]
        yield "invariant-cpl-3", ("activity", 0), lambda: {**resource, "activity": both}
    if kind == "Patient":
        race = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
        coding = {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3"}
        without_text = {"url": race, "extension": [{"url": "ombCategory", "valueCoding": coding}]}
        others = [e for e in resource.get("extension", []) if e.get("url") != race]
        yield (
            "slice-required",
            ("extension", "race", "text"),
            lambda: {**resource, "extension": [*others, without_text]},
        )


# ---------------------------------------------------------------------------------------------------------
# The public functions


def _variants(resource: dict[str, Any], profile: str, *, broken: bool) -> list[Variant]:
    out, seen = [], set()
    for is_broken, (kind, path, make) in _candidates(resource, profile):
        if is_broken != broken or (kind, path) in seen:
            continue
        seen.add((kind, path))
        out.append(Variant(kind, path, make()))
    return out


def broken_variants(resource: dict[str, Any], profile: str) -> list[Variant]:
    """Every change to the resource that the profile (or FHIR R4 itself) makes invalid, one per kind and
    path."""
    return _variants(resource, profile, broken=True)


def edited_variants(resource: dict[str, Any], profile: str) -> list[Variant]:
    """Changes that may stay valid: an optional element deleted, a code of a binding not required changed."""
    return _variants(resource, profile, broken=False)


def profile_variants(profile: str, resources: list[dict[str, Any]], *, broken: bool = True) -> list[Variant]:
    """The variants of several resources of one profile, one per kind and element (array positions left
    out): the first resource that has the element gives it."""
    out, seen = [], set()
    for resource in resources:
        for is_broken, (kind, path, make) in _candidates(resource, profile):
            key = (kind, ".".join(p for p in path if type(p) is str))
            if is_broken != broken or key in seen:
                continue
            seen.add(key)
            out.append(Variant(kind, path, make()))
    return out


def sample(found: list[Variant], limit: int | None, seed: int = 7) -> list[Variant]:
    """At most `limit` of them, taken in turn from each kind (each kind's order shuffled by `seed`)."""
    if limit is None or len(found) <= limit:
        return found
    by_kind: dict[str, list[Variant]] = {}
    for variant in found:
        by_kind.setdefault(variant.kind, []).append(variant)
    rng = random.Random(seed)
    for group in by_kind.values():
        rng.shuffle(group)
    out: list[Variant] = []
    while len(out) < limit:
        for group in by_kind.values():
            if group and len(out) < limit:
                out.append(group.pop(0))
    return out
