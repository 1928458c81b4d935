"""Benchmark and check: a reprocess of an archive after a mapping change, on the local stack, beside the
ceiling of the same HAPI.

    python bench/bench_reprocess.py [--messages 5000] [--rate-messages 20000] [--bundle-size 200]
                                    [--superseded 10] [--per-object 1000] [--warmup-messages 2000] [--rounds 1]
                                    [--untagged-ceiling] [--store-cpus 1] [--loopback]

In one run, on the running local stack (`make up`):
a. history: --messages synthetic Patients (dev/synthetic.py) archived for yesterday straight into the GCS
   emulator's archive bucket, in the archive's topic=/date= layout, one corrupt line among them; the first
   --superseded of them are written to HAPI beforehand from a later source time (a later message's data);
0. a dry run: it writes nothing (HAPI holds only those), it would write every message, one line fails;
b. a reprocess with the shipped mappings: every Patient created once with the mapping's tag, the later
   ones left alone (superseded), the corrupt line an error record, the job DONE;
c. a reprocess with a copy of the mappings whose one file changed (a new content version): every Patient
   updated once (one new version, the new tag), none duplicated, none lost, the later ones left alone; then
   the same again: every Patient unchanged (counted so, no new version);
d. rate: --rounds times, --rate-messages new Patients archived the same way and reprocessed, each round
   between two ceiling loads of as many fresh Patients (bench_pipeline.ceiling: the FHIR store client
   straight into HAPI, after --warmup-messages untimed, each Patient with the source-time tag the reprocess
   writes, unless --untagged-ceiling), because HAPI slows as its database grows; the
   reprocess's rate as messages over the whole command (submission to the job's end) and over the span HAPI
   stored them in (first to last meta.lastUpdated), each against the mean of the two ceilings around it.
   Goal: the whole command >= 90% of the ceiling.
Every check that fails is printed and the script exits 1. `--loopback` runs the job's Python steps in this
process (this checkout's code) instead of the stack's worker pool.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beam_pipeline.contracts.outcome import CORRUPT_ARCHIVE_LINE, REPROCESS  # noqa: E402
from bench.bench_pipeline import ceiling  # noqa: E402
from dev.history_archive import (  # noqa: E402
    archive_objects,
    archived,
    changed_mapping_set,
    corrupt_line,
    day_start_ms,
    mapping_tag,
    upload,
    with_line,
    yesterday,
)
from dev.latency import stored_at  # noqa: E402
from dev.local_stack import fhir_count, run_reprocess, stored_resources, write_patients  # noqa: E402
from dev.reprocess_checks import (  # noqa: E402
    CREATED,
    UNCHANGED,
    UPDATED,
    Stored,
    by_value,
    store_problems,
    stored,
    summary_problems,
)
from dev.stack_env import stack_env  # noqa: E402
from dev.stack_resources import STORE_CPUS_HELP, cpu_set, require_disk, store_pinned  # noqa: E402
from dev.synthetic import synthetic_rows  # noqa: E402

CORRUPT = {f"{REPROCESS}.{CORRUPT_ARCHIVE_LINE}": 1}


def archive_spacing_ms(n: int) -> int:
    """How far apart n archived messages' Kafka timestamps are: spread over the day (at least 1 ms apart),
    so a range of that day selects them all."""
    return max(1, 86_000_000 // max(1, n))


class History:
    """One archived history in the GCS emulator: its topic, identifier system, day and identifier values."""

    def __init__(self, env: dict[str, str], tag: str, n: int, per_object: int, *, corrupt: bool) -> None:
        run = uuid.uuid4().hex[:8]
        self.env = env
        self.topic, self.system = f"rp-{tag}-{run}", f"urn:k2f-bench:reprocess-{tag}-{run}"
        self.day = yesterday()
        self.rows = synthetic_rows(n, seed=11, id_prefix=f"rp{tag}{run}-")
        self.values = {f"rp{tag}{run}-{i:012d}" for i in range(n)}
        spacing = archive_spacing_ms(n)
        objects = archive_objects(archived(self.topic, self.rows, day_start_ms(self.day), spacing), per_object, run)
        if corrupt:
            first = sorted(objects)[0]
            objects[first] = with_line(objects[first], 5, corrupt_line(self.topic))
        upload(env["GCS_ARCHIVE_BUCKET"], objects)
        self.objects = len(objects)

    def reprocess(self, name: str, *flags: str, loopback: bool) -> tuple[dict[str, Any], float]:
        job = f"bench-reprocess-{name}-{uuid.uuid4().hex[:6]}"
        return run_reprocess(
            self.env,
            job,
            f"--topics={self.topic}",
            f"--from={self.day.isoformat()}",
            f"--to={(self.day + timedelta(days=1)).isoformat()}",
            f"--source_id_system={self.system}",
            *flags,
            loopback=loopback,
        )

    def stored(self) -> list[Stored]:
        return stored(stored_resources(self.env, self.system), self.system)


def write_later(env: dict[str, str], rows: list[bytes], system: str) -> dict[str, Stored]:
    """The rows' Patients written to HAPI from a source time after the archive's (now), as later messages
    would: the ones a reprocess must leave alone. Returns them as stored."""
    write_patients(env, rows, system, source_time_ms=int(time.time() * 1000))
    return by_value(stored(stored_resources(env, system), system))


def check(step: str, problems: list[str], failures: list[str]) -> None:
    print(f"  {step}: {'ok' if not problems else 'FAILED'}")
    for problem in problems:
        print(f"    - {problem}")
    failures.extend(f"{step}: {p}" for p in problems)


def mapping_change(env: dict[str, str], args: argparse.Namespace, failures: list[str]) -> None:
    n, s = args.messages, args.superseded
    history = History(env, "mc", n, args.per_object, corrupt=True)
    later = write_later(env, history.rows[:s], history.system)
    shipped_tag = mapping_tag()
    print(f"history: {n} messages in {history.objects} objects (one corrupt line), {s} written later")

    dry, seconds = history.reprocess("dry", "--dry_run", loopback=args.loopback)
    print(f"0. dry run: {seconds:.0f} s")
    check(
        "dry run",
        summary_problems(dry, {"messages": n, "would_write_messages": n, "would_fail": CORRUPT})
        + ([] if fhir_count(env, history.system) == s else ["it wrote to the store"]),
        failures,
    )

    first, seconds = history.reprocess("shipped", loopback=args.loopback)
    after_first = history.stored()
    print(f"b. shipped mappings ({shipped_tag}): {seconds:.0f} s, {first}")
    expected = {"messages": n, "written": n - s, "unchanged": 0, "superseded": s, "failed": CORRUPT}
    check("shipped: summary", summary_problems(first, expected), failures)
    check(
        "shipped: store",
        store_problems(after_first, history.values, did=CREATED, tag=shipped_tag, left_alone=later),
        failures,
    )

    with tempfile.TemporaryDirectory() as tmp:
        changed = changed_mapping_set(Path(tmp) / "mappings")
        changed_tag = mapping_tag(changed)
        second, seconds = history.reprocess("changed", f"--mappings={changed}", loopback=args.loopback)
        after_second = history.stored()
        print(f"c. changed mapping ({changed_tag}): {seconds:.0f} s, {second}")
        check("changed: summary", summary_problems(second, expected), failures)
        check(
            "changed: store",
            store_problems(
                after_second,
                history.values,
                did=UPDATED,
                tag=changed_tag,
                before=by_value(after_first),
                left_alone=later,
            ),
            failures,
        )
        third, seconds = history.reprocess("again", f"--mappings={changed}", loopback=args.loopback)
        print(f"   the same again: {seconds:.0f} s, {third}")
        check("again: summary", summary_problems(third, {**expected, "written": 0, "unchanged": n - s}), failures)
        check(
            "again: store",
            store_problems(
                history.stored(),
                history.values,
                did=UNCHANGED,
                tag=changed_tag,
                before=by_value(after_second),
                left_alone=later,
            ),
            failures,
        )


def _ceiling(env: dict[str, str], args: argparse.Namespace) -> float:
    """The ceiling on --rate-messages fresh Patients: the FHIR store client straight into HAPI, each Patient
    with the source time a reprocess writes (its archived Kafka timestamp: History spreads them over a day,
    one a millisecond at least, so each is a meta.tag code of its own that HAPI indexes, about a millisecond
    of its CPU a Patient); --untagged-ceiling writes them without, as bench_pipeline.py does."""
    n = args.rate_messages
    rows = synthetic_rows(n, seed=12, id_prefix=f"c{uuid.uuid4().hex[:6]}-")
    start, spacing = day_start_ms(yesterday()), archive_spacing_ms(n)
    times = None if args.untagged_ceiling else [start + i * spacing for i in range(n)]
    rate_s, _, _ = ceiling(env, rows, args.bundle_size, source_times_ms=times)
    return rate_s


def _reprocess_round(env: dict[str, str], args: argparse.Namespace, failures: list[str]) -> tuple[float, float]:
    """One reprocess of --rate-messages new archived Patients: (the whole command's rate, the rate while it
    wrote), with where its time went printed."""
    n = args.rate_messages
    history = History(env, "rate", n, args.per_object, corrupt=False)
    summary, seconds = history.reprocess("rate", f"--bundle_size={args.bundle_size}", loopback=args.loopback)
    ended = time.time()
    check("rate: summary", summary_problems(summary, {"messages": n, "written": n, "failed": {}}), failures)
    times = stored_at(env, history.system)
    first, last = (min(times.values()), max(times.values())) if times else (float("nan"), float("nan"))
    span = last - first if len(times) > 1 else float("nan")
    print(
        f"   {seconds:.0f} s in all: {first - (ended - seconds):.0f} s from submission to the first Patient stored "
        f"(the job starting, listing, reading and de-duplicating the archive), {span:.0f} s writing, "
        f"{ended - last:.0f} s from the last Patient stored to the command's end (the summary); "
        f"{history.objects} objects"
    )
    return n / seconds, n / span


def rate(env: dict[str, str], args: argparse.Namespace, failures: list[str]) -> None:
    """--rounds reprocesses, each between two ceiling loads (HAPI slows as its database grows: a reprocess
    is compared with the mean of the ceilings measured just before and just after it)."""
    if args.warmup_messages > 0:
        # A HAPI just restarted runs its first thousands of writes on a cold JIT: warm it before measuring.
        ceiling(env, synthetic_rows(args.warmup_messages, seed=4, id_prefix=f"w{uuid.uuid4().hex[:6]}-"), 200, "warmup")
    ceilings: list[float] = []
    rounds: list[tuple[float, float]] = []
    with store_pinned(env, cpu_set(args.store_cpus)):
        ceilings.append(_ceiling(env, args))
        for _ in range(args.rounds):
            rounds.append(_reprocess_round(env, args, failures))
            ceilings.append(_ceiling(env, args))
    pinned = f"; HAPI pinned to CPU {args.store_cpus}, the rest to the others" if args.store_cpus else ""
    tags = "without source-time tags" if args.untagged_ceiling else "with the reprocess's source-time tags"
    print(f"d. rate over {args.rate_messages} messages a round, bundle {args.bundle_size}{pinned}; ceiling {tags}:")
    print(f"{'round':>5} {'ceiling before':>14} {'after':>7} {'whole command':>20} {'while writing':>20}")
    whole_ratios, writing_ratios = [], []
    for i, (whole, writing) in enumerate(rounds):
        around = (ceilings[i] + ceilings[i + 1]) / 2
        whole_ratios.append(whole / around)
        writing_ratios.append(writing / around)
        print(
            f"{i + 1:>5} {ceilings[i]:>12.1f}/s {ceilings[i + 1]:>5.1f}/s {whole:>11.1f}/s {whole / around:>6.0%}"
            f" {writing:>11.1f}/s {writing / around:>6.0%}"
        )
    print(
        f"median of {len(rounds)}: the whole command {statistics.median(whole_ratios):.0%} of the ceiling around it, "
        f"while writing {statistics.median(writing_ratios):.0%} (goal: the whole command >= 90%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000, help="messages of the mapping-change history")
    parser.add_argument("--rate-messages", type=int, default=20000, help="messages of the rate phase (0 leaves it out)")
    parser.add_argument("--bundle-size", type=int, default=200, help="entries per batch bundle (--bundle_size)")
    parser.add_argument("--superseded", type=int, default=10, help="Patients of the history a later message wrote")
    parser.add_argument("--per-object", type=int, default=1000, help="archive lines per object")
    parser.add_argument("--warmup-messages", type=int, default=2000, help="untimed Patients before the ceiling")
    parser.add_argument("--rounds", type=int, default=1, help="reprocesses timed, each between two ceiling loads")
    parser.add_argument(
        "--untagged-ceiling",
        action="store_true",
        help="the ceiling's Patients without the source-time tag a reprocess writes (bench_pipeline.py's way)",
    )
    parser.add_argument("--store-cpus", help=STORE_CPUS_HELP)
    parser.add_argument("--loopback", action="store_true", help="the job's Python steps in this process")
    args = parser.parse_args()
    env = {**stack_env(), **{k: v for k, v in os.environ.items() if k.startswith(("K2F_", "STORAGE_", "SECRET_"))}}
    os.environ.update({k: env[k] for k in ("STORAGE_EMULATOR_HOST", "SECRET_MANAGER_ENDPOINT", "FHIR_BASE_URL")})
    require_disk(env)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; HAPI at {env['FHIR_BASE_URL']}")
    print(f"the job's Python steps: {'this process (LOOPBACK)' if args.loopback else 'the stack worker pool'}")
    failures: list[str] = []
    mapping_change(env, args, failures)
    if args.rate_messages > 0:
        rate(env, args, failures)
    if failures:
        print(f"{len(failures)} checks failed")
        sys.exit(1)
    print("every check passed")


if __name__ == "__main__":
    main()
