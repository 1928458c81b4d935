"""Drain and relaunch the streaming job through Airflow, N times, while messages arrive at 100 a second.

    python -m tests.support.drain_loop --cycles 20

Each cycle publishes `--per-cycle` messages at `--rate` a second; a few seconds in, it triggers k2f_drain
and, once the job has stopped, k2f_launch (publishing goes on meanwhile). Each cycle prints the drain's
report (messages settled, any left behind) and how long the drain and the relaunch took. At the end it
waits until every message is in HAPI and every offset committed, and checks: one Patient per message
(nothing lost, nothing duplicated), every message archived at least once. Exits non-zero if not.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

from dev.airflow_api import AirflowApi, local_config
from dev.local_stack import create_topics, fhir_count, kafka_plain, wait_for
from dev.stack_env import stack_env
from launcher.job_service import JobServiceClient
from tests.integration.test_pipeline_e2e import _valid
from tests.support.under_load import (
    SteadyPublisher,
    archived_offsets,
    drain,
    end_job,
    launch,
    published_offsets,
    settled_everything,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=20, help="drain/launch cycles (default 20)")
    parser.add_argument("--rate", type=float, default=100, help="messages a second (default 100)")
    parser.add_argument("--per-cycle", type=int, default=800, help="messages published per cycle (default 800)")
    parser.add_argument("--drain-after", type=float, default=3, help="seconds into a cycle's publishing (default 3)")
    args = parser.parse_args(argv)

    env = stack_env()
    run = uuid.uuid4().hex[:8]
    topic, job_name, system = f"drainloop-{run}", f"drainloop-{run}", f"urn:k2f-drainloop:{run}"
    create_topics(kafka_plain(env), [topic])
    config = local_config(env, [topic], job_name) | {
        "pipeline_options": {"source_id_system": system, "archive_window_seconds": 5},
    }
    rows = _valid(run, 0, args.per_cycle * args.cycles)
    left_total = 0
    with (
        AirflowApi(f"http://127.0.0.1:{env['AIRFLOW_PORT']}") as airflow,
        JobServiceClient(env["PRISM_ENDPOINT"]) as jobs,
        airflow.config(config),
    ):
        job_id = launch(airflow, jobs, job_name)
        try:
            for cycle in range(1, args.cycles + 1):
                chunk = rows[(cycle - 1) * args.per_cycle : cycle * args.per_cycle]
                publisher = SteadyPublisher(env, topic, chunk, args.rate)
                publisher.start()
                time.sleep(args.drain_after)
                started = time.monotonic()
                report = drain(airflow)
                drained = time.monotonic() - started
                publisher.finish()
                started = time.monotonic()
                job_id = launch(airflow, jobs, job_name)
                launched = time.monotonic() - started
                left_total += report["left_behind"]
                print(
                    f"cycle {cycle}: drained in {drained:.0f} s (settled {report['settled']}, left behind "
                    f"{report['left_behind']}), relaunched in {launched:.0f} s",
                    flush=True,
                )
            total = len(rows)
            wait_for(lambda: fhir_count(env, system) >= total, 1800, f"{total} Patients in HAPI", poll=5)
            wait_for(lambda: settled_everything(env, job_name, topic), 600, "every offset committed", poll=5)
        finally:
            end_job(jobs, job_id)
    stored = fhir_count(env, system)
    published = published_offsets(env, job_name, topic)
    missing = len(published - archived_offsets(env, topic))
    ok = stored == len(rows) == len(published) and missing == 0 and left_total == 0
    print(
        f"{args.cycles} cycles, {len(rows)} messages at {args.rate:g}/s: {stored} Patients in HAPI "
        f"({len(rows) - stored} lost or duplicated), {missing} not archived, {left_total} left behind by drains: "
        f"{'OK' if ok else 'FAILED'}",
        flush=True,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
