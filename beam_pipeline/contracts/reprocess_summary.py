"""A reprocess's summary: what the reprocess command prints when the job ends and the k2f_reprocess DAG
reports (counts and codes only, never content). It is made of the job's counts by "namespace/name": the
tally the job writes as its summary object (transforms/tally.py), or, without one, its counters.

The summary object (contracts/bucket_layout.reprocess_summary_name):
    {"job_name": "...", "launch_ms": 1765000000000, "counts": {"reprocess/messages": 5000, ...}}
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from beam_pipeline.contracts.outcome import DEAD_LETTER_METRICS, REPROCESS, SETTLED_OUTCOMES, WRITE_METRICS

log = logging.getLogger(__name__)

# How long a summary object is waited for once the runner says the job is DONE: Prism says so before its
# worker pool's last bundles have run (a 5,000-message job stored for another 25 s).
SUMMARY_WAIT_SECONDS = 300.0

# The counters' namespaces: the bounded read's (transforms/read_history.py) and a dry run's.
NAMESPACE = "reprocess"
DRY_RUN_NAMESPACE = "reprocess_dry_run"
# A dry run's count of the messages it would write (beside would_write.<type> per resource).
WOULD_WRITE_MESSAGES = "messages_would_write"
FILTERED = "parse_and_validate/filtered"


def metric_key(namespace: str, name: str) -> str:
    """A count's name in a summary: its counter's namespace and name."""
    return f"{namespace}/{name}"


def counter_totals(results: Iterable[Any], *, running: bool = False) -> dict[str, int]:
    """Beam counter results (MetricResult: key.metric.namespace and name, committed, attempted) as
    {"namespace/name": value}, summed over the steps that count each. The committed value where the runner
    has one: what finished bundles counted, exactly once. `running`: a running job's progress, the larger of
    the committed and the attempted value, which counts the bundles still in progress too (Prism runs a
    batch job's write as one bundle, whose committed counts stay 0 until it ends)."""
    totals: dict[str, int] = {}
    for item in results:
        committed, attempted = item.committed, item.attempted
        if running:
            value = max(int(committed or 0), int(attempted or 0))
        else:
            value = int((committed if committed is not None else attempted) or 0)
        key = metric_key(item.key.metric.namespace, item.key.metric.name)
        totals[key] = totals.get(key, 0) + value
    return totals


def summary_object(job_name: str, launch_ms: int, counts: dict[str, int]) -> bytes:
    """The summary object's bytes."""
    doc = {"job_name": job_name, "launch_ms": launch_ms, "counts": dict(sorted(counts.items()))}
    return json.dumps(doc, sort_keys=True).encode()


def counts_of(body: bytes) -> dict[str, int]:
    """The counts a summary object holds; ValueError when it is not one."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("not a reprocess summary object: not JSON") from exc
    counts = doc.get("counts") if isinstance(doc, dict) else None
    if not isinstance(counts, dict) or not all(isinstance(v, int) for v in counts.values()):
        raise ValueError("not a reprocess summary object: 'counts' is not an object of integers")
    return {str(k): int(v) for k, v in counts.items()}


def wait_for_counts(
    read: Callable[[], bytes],
    what: str,
    *,
    timeout: float = SUMMARY_WAIT_SECONDS,
    poll: float = 1.0,
    sleep: Callable[[float], None] | None = None,
) -> dict[str, int] | None:
    """The counts of the summary object `read` returns, read again every `poll` seconds while it raises (not
    written yet, or the bucket briefly unreachable); None after `timeout`, or at once when the object is
    not a summary (the summary then comes from the counters). `what` names the object in the log."""
    sleep = sleep or time.sleep
    waited = 0.0
    while True:
        try:
            body = read()
        except Exception as exc:  # noqa: BLE001  (the bucket's client raises its own types)
            if waited >= timeout:
                log.error("no reprocess summary object %s after %.0f s (%s)", what, waited, type(exc).__name__)
                return None
        else:
            try:
                return counts_of(body)
            except ValueError as exc:
                log.error("the reprocess summary object %s is not one (%s)", what, exc)
                return None
        sleep(poll)
        waited += poll


def from_counts(counts: dict[str, int], *, dry_run: bool = False) -> dict[str, Any]:
    """The summary of a job's summary object: exact, so `accounted` is checked, never waited for."""
    report = summary(counts, dry_run=dry_run)
    return {**report, "accounted": accounted(report), "from": "summary object"}


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
        return {**current, "accounted": accounted(current), "from": "counters"}
    waited = 0.0
    while True:
        previous = current
        sleep(poll)
        waited += poll
        current = summary(read_counters(), dry_run=dry_run)
        settled = current == previous and accounted(current)
        if settled or waited >= timeout:
            return {**current, "accounted": settled, "from": "counters"}
