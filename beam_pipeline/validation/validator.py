"""One validator per profile, compiled on first use and kept for the life of the worker."""

from __future__ import annotations

import functools
from typing import Any

from beam_pipeline.validation.compiler import Compiler
from beam_pipeline.validation.invariants import environment
from beam_pipeline.validation.issues import ERROR, Issue, Result
from beam_pipeline.validation.package import definitions


class ProfileValidator:
    """validate(resource) -> Result, for one StructureDefinition."""

    def __init__(self, url: str, compiler: Compiler) -> None:
        definition = compiler.definitions.structures[url]
        self.url = url
        self.type: str = definition["type"]
        self._root, self.not_checked = compiler.profile(url)

    def validate(self, resource: Any) -> Result:  # noqa: ANN401  (parsed JSON)
        issues: list[Issue] = []
        must_support: list[Issue] = []
        kind = self.type
        if type(resource) is not dict or resource.get("resourceType") != kind:
            issues.append(Issue(kind, "structure", ERROR, f"expected a {kind} resource"))
            return Result(self.url, issues, must_support, self.not_checked)
        self._root.fastest(resource, kind, issues, must_support, environment(resource))
        return Result(self.url, issues, must_support, self.not_checked)

    def issues(self, resource: dict[str, Any]) -> list[Issue]:
        """`validate(resource).issues` of a resource of this profile's type (what the pipeline reads for
        every resource): the must-support findings are gathered but not kept, and no Result is built."""
        issues: list[Issue] = []
        if type(resource) is not dict or resource.get("resourceType") != self.type:
            return self.validate(resource).issues
        self._root.fastest(resource, self.type, issues, [], environment(resource))
        return issues


@functools.cache
def _compiler() -> Compiler:
    return Compiler(definitions())


@functools.cache
def validator_for(profile_url: str) -> ProfileValidator:
    """The compiled validator of a profile the package (or the R4 base) defines; KeyError otherwise.
    A `|version` suffix is accepted, as meta.profile may carry it."""
    url = profile_url.split("|", 1)[0]
    if url not in definitions().structures:
        raise KeyError(f"{profile_url} is not a profile the shipped packages define")
    return ProfileValidator(url, _compiler())


def validate(resource: Any, profile_url: str) -> Result:  # noqa: ANN401
    return validator_for(profile_url).validate(resource)


def guide_profiles() -> list[str]:
    """The URLs of every StructureDefinition the implementation guide package defines."""
    return list(definitions().guide_structures)
