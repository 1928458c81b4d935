"""What a reprocess left in the store and what its summary says, checked against what it should have done:
every resource of the history once (none lost, none duplicated), at the version the pass implies and with
the mapping version's tag, the resources a later message wrote left alone. Pure: the callers read the store
(bench/bench_reprocess.py, tests/integration/test_reprocess_e2e.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from beam_pipeline.fhir_store.bundles import stored_source_time
from beam_pipeline.mapping.feed import MAPPING_TAG_SYSTEM

# What a pass over history should do to each resource it does not find newer in the store.
CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"


@dataclass(frozen=True)
class Stored:
    """One stored resource as the checks see it: its identifier value under the run's system, its id, version,
    mapping tag and source time."""

    value: str
    resource_id: str
    version: str
    mapping_tag: str | None
    source_time_ms: int | None


def stored(resources: Iterable[Mapping[str, Any]], system: str) -> list[Stored]:
    """The resources (with at least identifier and meta) as Stored, one per identifier of `system` they carry."""
    out = []
    for resource in resources:
        meta = resource.get("meta") or {}
        tags = [t.get("code") for t in meta.get("tag") or [] if t.get("system") == MAPPING_TAG_SYSTEM]
        for ident in resource.get("identifier") or []:
            if ident.get("system") == system:
                out.append(
                    Stored(
                        value=ident.get("value"),
                        resource_id=str(resource.get("id")),
                        version=str(meta.get("versionId")),
                        mapping_tag=tags[0] if len(tags) == 1 else None,
                        source_time_ms=stored_source_time(resource),
                    )
                )
    return out


def by_value(found: Iterable[Stored]) -> dict[str, Stored]:
    return {s.value: s for s in found}


def store_problems(
    found: list[Stored],
    expected: set[str],
    *,
    did: str,
    tag: str,
    before: Mapping[str, Stored] | None = None,
    left_alone: Mapping[str, Stored] | None = None,
) -> list[str]:
    """What is wrong with the store after a pass (empty: nothing). `expected`: the identifier values of the
    history; `did`: what the pass should have done to each (CREATED, UPDATED or UNCHANGED against `before`);
    `tag`: the mapping tag each should carry; `left_alone`: the ones a later message wrote, which must be
    exactly as they were. Problems are counts and at most three identifier values each (synthetic data)."""
    before = before or {}
    left_alone = left_alone or {}
    problems = []
    counts = Counter(s.value for s in found)
    _add(problems, "lost (not in the store)", sorted(expected - set(counts)))
    _add(problems, "duplicated (more than one resource)", sorted(v for v, n in counts.items() if n > 1))
    _add(problems, "not in the history", sorted(set(counts) - expected))
    now = by_value(found)
    kept = [v for v, s in left_alone.items() if now.get(v) != s]
    _add(problems, "written although a later message wrote them (not left alone)", sorted(kept))
    rewritten = [s for v, s in now.items() if v in expected and v not in left_alone]
    _add(problems, f"without the mapping tag {tag}", sorted(s.value for s in rewritten if s.mapping_tag != tag))
    if did == CREATED:
        wrong = [s.value for s in rewritten if s.version != "1"]
    else:
        was = {v: before[v].version for v in now if v in before}
        if did == UPDATED:
            wrong = [s.value for s in rewritten if s.value not in was or s.version != _next(was[s.value])]
        else:
            wrong = [s.value for s in rewritten if s.value not in was or s.version != was[s.value]]
    _add(problems, f"not {did} once (version)", sorted(wrong))
    return problems


# A summary read from the job's summary object, every message with its one outcome: what a reprocess that
# ended DONE must report (contracts/reprocess_summary.py).
EXACT = {"from": "summary object", "accounted": True}


def summary_problems(summary: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """The summary's figures that differ from `expected`, or from an exact summary's (empty: none)."""
    return [
        f"{key}: {summary.get(key)!r}, expected {value!r}"
        for key, value in {**EXACT, **expected}.items()
        if summary.get(key) != value
    ]


def _next(version: str) -> str:
    return str(int(version) + 1) if version.isdigit() else f"after {version}"


def _add(problems: list[str], what: str, values: list[str]) -> None:
    if values:
        problems.append(f"{len(values)} {what}: {', '.join(values[:3])}{', ...' if len(values) > 3 else ''}")
