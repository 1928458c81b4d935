"""A reprocess's summary, made of its job's counters: what the reprocess command prints when the job ends and
the k2f_reprocess DAG reports (counts and codes only, never content)."""

from __future__ import annotations

from typing import Any

# The counters' namespaces: the bounded read's (transforms/read_history.py) and a dry run's.
NAMESPACE = "reprocess"
DRY_RUN_NAMESPACE = "reprocess_dry_run"


def summary(counters: dict[str, int], *, dry_run: bool = False) -> dict[str, Any]:
    """From "namespace/name" -> value: objects read, messages, written, superseded, filtered, failed by
    stage.code; a dry run's would-write per type and would-fail per stage.code instead."""

    def of(namespace: str, prefix: str = "") -> dict[str, int]:
        start = f"{namespace}/{prefix}"
        return {
            name.removeprefix(start): value
            for name, value in sorted(counters.items())
            if name.startswith(start) and value
        }

    def one(name: str) -> int:
        return counters.get(name, 0)

    out: dict[str, Any] = {
        "dry_run": dry_run,
        "objects_read": one(f"{NAMESPACE}/objects_read"),
        "messages": one(f"{NAMESPACE}/messages"),
        "filtered": one("parse_and_validate/filtered"),
        "outside_range": one(f"{NAMESPACE}/outside_range"),
        "duplicate_lines": one(f"{NAMESPACE}/duplicate_lines"),
    }
    if dry_run:
        out["would_write_messages"] = one(f"{DRY_RUN_NAMESPACE}/messages_would_write")
        out["would_write"] = of(DRY_RUN_NAMESPACE, "would_write.")
        out["would_fail"] = of(DRY_RUN_NAMESPACE, "would_fail.")
    else:
        out["written"] = one(f"{NAMESPACE}/messages_written")
        out["resources_written"] = one("write_to_fhir_store/resources_written")
        out["superseded"] = one("write_to_fhir_store/superseded")
        out["failed"] = of("dead_letter")
    out["failed_messages"] = sum(out["would_fail" if dry_run else "failed"].values())
    return out
