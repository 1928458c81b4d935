"""A reprocess's summary, made of its job's counters: what the reprocess command prints when the job ends and
the k2f_reprocess DAG reports (counts and codes only, never content)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from beam_pipeline.contracts.outcome import DEAD_LETTER_METRICS, REPROCESS, SETTLED_OUTCOMES, WRITE_METRICS

# The counters' namespaces: the bounded read's (transforms/read_history.py) and a dry run's.
NAMESPACE = "reprocess"
DRY_RUN_NAMESPACE = "reprocess_dry_run"
# A dry run's count of the messages it would write (beside would_write.<type> per resource).
WOULD_WRITE_MESSAGES = "messages_would_write"
FILTERED = "parse_and_validate/filtered"


def settled(counters: dict[str, int], outcome: str) -> int:
    """Messages the write step settled with `outcome` (written, superseded or unchanged)."""
    return counters.get(f"{WRITE_METRICS}/messages_{outcome}", 0)


def of(counters: dict[str, int], namespace: str, prefix: str = "") -> dict[str, int]:
    """The non-zero counters of a namespace whose names start with `prefix`, by the rest of their name."""
    start = f"{namespace}/{prefix}"
    return {
        name.removeprefix(start): value for name, value in sorted(counters.items()) if name.startswith(start) and value
    }


def summary(counters: dict[str, int], *, dry_run: bool = False) -> dict[str, Any]:
    """From "namespace/name" -> value: objects read, messages, then one outcome per message (written,
    unchanged, superseded, filtered, failed by stage.code) and what the store did per resource; a dry run's
    would-write per type and would-fail per stage.code instead."""

    def one(name: str) -> int:
        return counters.get(name, 0)

    out: dict[str, Any] = {
        "dry_run": dry_run,
        "objects_read": one(f"{NAMESPACE}/objects_read"),
        "messages": one(f"{NAMESPACE}/messages"),
        "filtered": one(FILTERED),
        "outside_range": one(f"{NAMESPACE}/outside_range"),
        "duplicate_lines": one(f"{NAMESPACE}/duplicate_lines"),
    }
    if dry_run:
        out["would_write_messages"] = one(f"{DRY_RUN_NAMESPACE}/{WOULD_WRITE_MESSAGES}")
        out["would_write"] = of(counters, DRY_RUN_NAMESPACE, "would_write.")
        out["would_fail"] = of(counters, DRY_RUN_NAMESPACE, "would_fail.")
    else:
        out.update({outcome: settled(counters, outcome) for outcome in SETTLED_OUTCOMES})
        out["failed"] = of(counters, DEAD_LETTER_METRICS)
        settled_resources = one(f"{WRITE_METRICS}/resources_written")
        created = one(f"{WRITE_METRICS}/resources_created")
        unchanged = one(f"{WRITE_METRICS}/unchanged")
        superseded = one(f"{WRITE_METRICS}/superseded")
        out["resources"] = {
            "created": created,
            "updated": settled_resources - created - unchanged - superseded,
            "unchanged": unchanged,
            "superseded": superseded,
        }
    out["failed_messages"] = sum(out["would_fail" if dry_run else "failed"].values())
    return out


def accounted(report: dict[str, Any]) -> bool:
    """Every message read has its one outcome in the summary. A runner may report a job ended before it has
    merged its last bundles' counters (Prism does, on thousands of messages), and a summary read then
    undercounts; this tells such a read from a finished one. Unreadable lines (stage reprocess) are not
    messages and have their own count."""
    failed = report["would_fail" if report["dry_run"] else "failed"]
    of_messages = sum(n for stage_code, n in failed.items() if not stage_code.startswith(f"{REPROCESS}."))
    done = report["would_write_messages"] if report["dry_run"] else sum(report[o] for o in SETTLED_OUTCOMES)
    return report["messages"] == done + report["filtered"] + of_messages


def final_summary(
    read_counters: Callable[[], dict[str, int]],
    *,
    dry_run: bool = False,
    ended_done: bool = True,
    timeout: float = 60.0,
    poll: float = 1.0,
    sleep: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """The ended job's summary. For a job that ended DONE: once its counters account for every message and
    two reads `poll` apart agree; after `timeout` seconds, the last read, marked `"accounted": false`. A job
    that failed or was cancelled is summarised from one read (its messages have no outcome to wait for)."""
    sleep = sleep or time.sleep
    current = summary(read_counters(), dry_run=dry_run)
    if not ended_done:
        return {**current, "accounted": accounted(current)}
    waited = 0.0
    while True:
        previous = current
        sleep(poll)
        waited += poll
        current = summary(read_counters(), dry_run=dry_run)
        settled = current == previous and accounted(current)
        if settled or waited >= timeout:
            return {**current, "accounted": settled}
