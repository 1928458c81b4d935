"""What validation says about one resource: issues that name an element and a rule, never a value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

ERROR, WARNING, INFORMATION = "error", "warning", "information"


class Issue(NamedTuple):
    """One finding. `path` is FHIRPath-like with indexes (`Patient.name[0].given[1]`); `key` is the
    constraint key (`us-core-6`) or the rule (`cardinality`, `type`, `binding`, `fixed`, `pattern`,
    `slice:category`, `structure`, `must-support`); `detail` is fixed text from the profile, never data.
    A named tuple, not a frozen dataclass: a validated resource makes several (must-support gaps, warnings)
    and a frozen dataclass pays object.__setattr__ for each field (0.49 us an Issue against 0.24)."""

    path: str
    key: str
    severity: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class NotChecked:
    """A rule of the profile this validator cannot decide (an invariant its FHIRPath cannot run, a binding
    to a value set it cannot expand): listed once per profile, so a pass is never read as covering it."""

    path: str
    key: str
    reason: str


@dataclass(frozen=True)
class Result:
    profile: str
    issues: list[Issue]
    must_support: list[Issue] = field(default_factory=list)  # absent must-support elements (information)
    not_checked: tuple[NotChecked, ...] = ()

    @property
    def errors(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.severity == ERROR]

    @property
    def valid(self) -> bool:
        return not self.errors


# A compiled check of one value: (value, its path, the issues, the must-support findings, the invariant
# variables of the resource) -> None, appending what it finds.
Check = Callable[[Any, str, list[Issue], list[Issue], dict[str, list[Any]]], None]
