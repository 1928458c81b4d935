"""Cancel and restart the streaming job on one consumer group, N times, on the running local stack.

    python -m tests.support.restart_loop --restarts 20

The restart phase of tests/integration/test_pipeline_e2e.py in a loop: each round cancels the job,
publishes 100 messages while it is stopped, launches it again on the same consumer group and waits until
those 100 are in HAPI and archived exactly once (no re-read, nothing skipped). Each round prints how long
the restart took and what the worker pools hold afterwards (SDK worker processes, threads), so a leak
shows up as a number that grows. Exits non-zero at the first round that stalls or miscounts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

from dev.local_stack import (
    cancel_job,
    create_topics,
    fhir_count,
    group_offsets,
    kafka_plain,
    kafka_sasl,
    launch_local_job,
    publish,
    wait_for,
)
from dev.stack_env import stack_env
from tests.integration.test_pipeline_e2e import _all_committed, _archive, _coordinates, _valid

PER_ROUND = 100


def _threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return 0


def _children(pid: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        try:
            # The field after the parenthesised command name is the state, then the parent's pid.
            stat = Path(f"/proc/{entry}/stat").read_text() if entry.isdigit() else ""
        except OSError:
            continue
        if stat and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.append(int(entry))
    return children


def pool_report(env: dict[str, str]) -> str:
    """SDK worker processes under the Python pool and their threads; threads of the Java pool's JVM."""
    run_dir = Path(env["K2F_STATE_DIR"]) / "run"
    py_pool = int((run_dir / "python_worker_pool.pid").read_text())
    java_pool = int((run_dir / "java_worker_pool.pid").read_text())
    python, java = _children(py_pool), _children(java_pool)
    return (
        f"python workers={len(python)} ({sum(_threads(w) for w in python)} threads), "
        f"java workers={len(java)} ({sum(_threads(w) for w in java)} threads), "
        f"host threads={sum(_threads(int(p)) for p in os.listdir('/proc') if p.isdigit())}"
    )


def offsets(env: dict[str, str], group: str, topics: list[str]) -> dict[str, tuple[int, int]]:
    """{"plain-0": (the group's committed offset, the partition's end offset), ...}, for the log."""
    return {f"{t.rsplit('-', 1)[-1]}-{p}": v for (t, p), v in group_offsets(kafka_plain(env), group, topics).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--restarts", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for a round's messages")
    args = parser.parse_args(argv)

    env = stack_env()
    run = uuid.uuid4().hex[:8]
    system = f"urn:k2f-restart:{run}"
    plain_topic, sasl_topic = f"restart-{run}-plain", f"restart-{run}-sasl"
    topics = [plain_topic, sasl_topic]
    group = f"restart-{run}"
    flags = (f"--kafka_consumer_group={group}", f"--source_id_system={system}", "--archive_window_seconds=5")
    create_topics(kafka_plain(env), topics)
    publish(kafka_plain(env), plain_topic, _valid(run, 0, PER_ROUND // 2))
    publish(kafka_sasl(env), sasl_topic, _valid(run, PER_ROUND // 2, PER_ROUND // 2))
    job_id = launch_local_job(env, f"restart-{run}", topics, *flags)
    expected = PER_ROUND
    passed = 0
    try:
        wait_for(lambda: fhir_count(env, system) >= expected, 300, "the first load in HAPI", poll=2)
        wait_for(lambda n=expected: len(_archive(env, topics)) >= n, 120, "the first load archived", poll=2)
        print(f"first load done; {pool_report(env)}", flush=True)
        for i in range(1, args.restarts + 1):
            # The job commits once messages have settled (stored and archived): wait for it, then cancel.
            wait_for(lambda: _all_committed(env, group, topics), 120, "every offset committed", poll=1)
            assert cancel_job(env, job_id) == "CANCELLED"
            publish(kafka_sasl(env), sasl_topic, _valid(run, expected, PER_ROUND))
            expected += PER_ROUND
            started = time.monotonic()
            job_id = launch_local_job(env, f"restart-{run}", topics, *flags)
            try:
                wait_for(lambda n=expected: fhir_count(env, system) >= n, args.timeout, "the messages in HAPI", poll=1)
                written = time.monotonic() - started
                wait_for(lambda n=expected: len(_archive(env, topics)) >= n, 120, "their archive lines", poll=1)
                archived = time.monotonic() - started
            except AssertionError as exc:
                now = offsets(env, group, topics)
                print(f"  (committed, end) per partition: {now}")
                print(
                    f"restart {i}: STALLED ({exc}); HAPI {fhir_count(env, system)}, archive "
                    f"{len(_archive(env, topics))} of {expected}; {pool_report(env)}",
                    flush=True,
                )
                return 1
            time.sleep(6)  # a re-read of older offsets would show up as extra archive lines by now
            archive = _archive(env, topics)
            counts: Counter = _coordinates(archive)
            ok = len(archive) == expected and max(counts.values()) == 1 and fhir_count(env, system) == expected
            print(
                f"restart {i}: {'ok' if ok else 'WRONG COUNT'} in HAPI after {written:.1f}s, archived after "
                f"{archived:.1f}s ({len(archive)} lines); {pool_report(env)}",
                flush=True,
            )
            if not ok:
                return 1
            passed += 1
    finally:
        cancel_job(env, job_id)
        print(f"{passed} of {args.restarts} restarts completed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
