"""Mapped resources against every profile they claim (`--profile_validation`): the issues, each naming an
element path and the profile's rule key, never a value; and what the mode makes of them (docs/validation.md).
Pure: never raises, never logs."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from beam_pipeline.contracts import outcome as o
from beam_pipeline.contracts.job_settings import (
    PROFILE_VALIDATION_ENFORCE,
    PROFILE_VALIDATION_OFF,
)
from beam_pipeline.validation import ERROR, WARNING, Issue, validator_for
from beam_pipeline.validation.package import definitions

# A profile_violation detail lists the issues up to this length, then how many more there are: an error
# record is read by people, and the dry run prints every issue.
MAX_DETAIL = 1000
# The mapping step's counter of a resource written with an error of a profile's rule
# (--profile_validation=warn): profile_violation.<profile short name>.<rule key>.
COUNTER_PREFIX = o.PROFILE_VIOLATION
_REPORTED = frozenset({ERROR, WARNING})  # must-support gaps and information are not problems of a message
_UNKNOWN_PROFILE = "profile"


class ProfileIssue(NamedTuple):
    """One issue of one of a message's resources against one profile it claims (a named tuple, as Issue)."""

    resource: int  # the resource's place among those the message mapped to
    profile: str  # the profile's short name, e.g. us-core-patient
    issue: Issue

    def to_json(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "profile": self.profile,
            "path": self.issue.path,
            "key": self.issue.key,
            "severity": self.issue.severity,
            "detail": self.issue.detail,
        }


@functools.lru_cache(maxsize=1024)  # a few profiles, named on every resource
def short_name(url: str) -> str:
    """`http://.../StructureDefinition/us-core-patient|6.1.0` -> `us-core-patient`."""
    return url.split("|", 1)[0].rstrip("/").rsplit("/", 1)[-1]


@functools.cache
def _ancestors(url: str) -> frozenset[str]:
    structures = definitions().structures
    seen: set[str] = set()
    base = structures.get(url, {}).get("baseDefinition")
    while isinstance(base, str) and base not in seen:
        seen.add(base)
        base = structures.get(base, {}).get("baseDefinition")
    return frozenset(seen)


@functools.lru_cache(maxsize=1024)
def to_validate(claimed: tuple[Any, ...]) -> tuple[str, ...]:
    """The claimed profiles, each once and without `|version`, less those another claimed one is derived
    from: a profile's snapshot carries every rule of its base (us-core-body-weight holds all of
    us-core-vital-signs), so walking the resource against the base as well finds nothing new."""
    urls = tuple(dict.fromkeys(url.split("|", 1)[0] for url in claimed if type(url) is str))
    bases = frozenset().union(*(_ancestors(url) for url in urls)) if len(urls) > 1 else frozenset()
    return tuple(url for url in urls if url not in bases)


def _claimed(resource: Any) -> tuple[str, ...]:  # noqa: ANN401  (a mapped resource)
    meta = resource.get("meta") if type(resource) is dict else None
    profiles = meta.get("profile") if type(meta) is dict else None
    if type(profiles) is not list or not profiles:
        return ()
    try:
        return to_validate(tuple(profiles))
    except TypeError:  # an unhashable entry: not a profile URL anyway
        return to_validate(tuple(p for p in profiles if type(p) is str))


def profile_issues(resources: Sequence[Any]) -> list[ProfileIssue]:
    """The errors and warnings of each resource against each profile it claims. A profile the shipped
    packages do not define is an error of key `profile` (the mapping check refuses such mappings)."""
    found: list[ProfileIssue] = []
    for n, resource in enumerate(resources):
        for url in _claimed(resource):
            try:
                validator = validator_for(url)
            except KeyError:
                kind = str(resource.get("resourceType", "Resource"))
                issue = Issue(
                    f"{kind}.meta.profile", _UNKNOWN_PROFILE, ERROR, "not a profile the shipped packages define"
                )
                found.append(ProfileIssue(n, short_name(url), issue))
                continue
            issues = validator.issues(resource)
            if issues:
                name = short_name(url)
                found += [ProfileIssue(n, name, issue) for issue in issues if issue.severity in _REPORTED]
    return found


def violation_detail(issues: Iterable[ProfileIssue]) -> str:
    """`us-core-patient: Patient.gender (cardinality), Patient.name[0] (us-core-6)`, the errors of each
    resource and profile in turn, at most MAX_DETAIL characters: element paths and rule keys only."""
    groups: dict[tuple[int, str], list[str]] = {}
    for found in issues:
        if found.issue.severity == ERROR:
            groups.setdefault((found.resource, found.profile), []).append(f"{found.issue.path} ({found.issue.key})")
    pieces = [
        (("; " if g else "") + f"{profile}: " if i == 0 else ", ") + item
        for g, ((_n, profile), items) in enumerate(groups.items())
        for i, item in enumerate(items)
    ]
    out, last = "", len(pieces) - 1
    for shown, piece in enumerate(pieces):
        room = len(f" (+{len(pieces)} more)") if shown < last else 0  # for the tail, unless this is the last
        if len(out) + len(piece) + room > MAX_DETAIL:
            return out + f" (+{len(pieces) - shown} more)"
        out += piece
    return out


def counter_names(issues: Iterable[ProfileIssue]) -> set[str]:
    """The counters a message's written resources increment: one per resource, profile and rule key of its
    errors (profile and key come from the profile, never from data)."""
    return {f"{COUNTER_PREFIX}.{found.profile}.{found.issue.key}" for found in issues if found.issue.severity == ERROR}


def apply(mapped: tuple[o.MappedResource, ...], mode: str) -> o.Ok | o.Error:
    """What the mode makes of a message's mapped resources: enforce turns an error of any profile into a
    validate/profile_violation error; warn keeps the resources with their issues (counted by the step); off
    does nothing. A validator that raises is validate/internal_error, naming the exception type only."""
    if mode == PROFILE_VALIDATION_OFF:
        return o.Ok(mapped)
    try:
        found = profile_issues([m.resource for m in mapped])
    except Exception as exc:  # noqa: BLE001  (a validator bug must not stop the stream; its text may quote data)
        return o.Error(o.VALIDATE, o.INTERNAL_ERROR, f"{type(exc).__name__} in profile validation")
    if mode == PROFILE_VALIDATION_ENFORCE and any(f.issue.severity == ERROR for f in found):
        return o.Error(o.VALIDATE, o.PROFILE_VIOLATION, violation_detail(found), issues=tuple(found))
    return o.Ok(mapped, issues=tuple(found))


def warm(profiles: Iterable[str]) -> None:
    """Compile the validators of these profiles now (a worker's setup), so no message waits for it."""
    for url in dict.fromkeys(p.split("|", 1)[0] for p in profiles):
        try:
            validator_for(url)
        except KeyError:
            continue  # the messages claiming it say so
