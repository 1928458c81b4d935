"""Benchmark: the streaming job end to end on the local stack, beside the ceiling of the same HAPI.

    python bench/bench_pipeline.py [--messages 5000] [--bundle-size 200] [--paced-messages 300 --paced-rate 10]

In one run, on the running local stack (`make up`; HAPI as it is configured, validation on or off):
1. ceiling: the same number of synthetic Patients loaded straight into HAPI with the FHIR store client
   (batch bundles of --bundle-size, 4 in flight), resources per second;
2. pipeline: the job is started on Prism and warmed up, then the messages are published to Kafka as
   fast as the producer goes; throughput is messages over the time from the first produce to the last
   Patient readable in HAPI;
3. latency: then --paced-messages are published at --paced-rate (below the job's capacity, so no
   queueing); latency per message is HAPI's meta.lastUpdated minus the produce time (same machine
   clock), reported as p50 and p99, for the burst (where it is mostly waiting in Kafka) and paced.
Both phases write new Patients under their own identifier system, so they do the same work.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from beam_pipeline.fhir_store import FhirStoreClient, FhirStoreConfig, WriteItem  # noqa: E402
from beam_pipeline.us_core import Ok, TransformConfig, transform  # noqa: E402
from tests.conftest import stack_env  # noqa: E402
from tests.support.local_stack import (  # noqa: E402
    cancel_job,
    create_topics,
    fhir_count,
    kafka_plain,
    launch_local_job,
    wait_for,
)
from tests.support.synthetic import synthetic_rows  # noqa: E402


def ceiling(env: dict[str, str], rows: list[bytes], bundle_size: int) -> float:
    system = f"urn:k2f-bench:ceiling-{uuid.uuid4().hex[:8]}"
    config = TransformConfig(source_id_system=system, structural_validation=False)
    items = []
    for row in rows:
        result = transform(row, config=config)
        assert isinstance(result, Ok)
        items.extend(WriteItem(r.resource, r.identifier) for r in result.resources)
    store = FhirStoreConfig(base_url=env["FHIR_BASE_URL"], bundle_size=bundle_size, max_bundles_in_flight=4)
    with FhirStoreClient(store) as client:
        started = time.monotonic()
        outcomes = client.write(items)
        elapsed = time.monotonic() - started
    assert all(o.ok for o in outcomes), "the ceiling load had failures"
    assert fhir_count(env, system) == len(rows)
    return len(rows) / elapsed


def last_updated(env: dict[str, str], system: str) -> dict[str, float]:
    """Source Id -> epoch seconds HAPI stored it, paging through every Patient of the system."""
    out: dict[str, float] = {}
    url = f"{env['FHIR_BASE_URL']}/Patient"
    params: dict | None = {"identifier": f"{system}|", "_elements": "identifier,meta", "_count": 1000}
    with httpx.Client(timeout=120) as http:
        while url:
            page = http.get(url, params=params).json()
            params = None
            for entry in page.get("entry", []):
                resource = entry["resource"]
                [ident] = [i["value"] for i in resource["identifier"] if i.get("system") == system]
                out[ident] = datetime.fromisoformat(resource["meta"]["lastUpdated"]).timestamp()
            url = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), None)
    return out


def service_cpu_seconds(env: dict[str, str]) -> dict[str, float]:
    """CPU seconds used so far by each local service's process group (the stack starts each with setsid)."""
    tick = os.sysconf("SC_CLK_TCK")
    pid_files = (Path(env["K2F_STATE_DIR"]) / "run").glob("*.pid")
    groups = {int(f.read_text()): f.stem for f in pid_files if f.read_text().strip()}
    out = {name: 0.0 for name in groups.values()}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state ppid pgrp ... utime (12th) stime (13th).
        name = groups.get(int(fields[2]))
        if name:
            out[name] += (int(fields[11]) + int(fields[12])) / tick
    return out


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def produce(producer: object, topic: str, rows: list[bytes], per_second: float | None) -> dict[str, float]:
    """Publish rows (as fast as the producer goes, or paced); source Id -> produce time."""
    produced: dict[str, float] = {}
    start = time.time()
    for n, row in enumerate(rows):
        if per_second:
            time.sleep(max(0.0, start + n / per_second - time.time()))
        produced[json.loads(row)["Id"]] = time.time()
        producer.produce(topic, row)
        producer.poll(0)
    producer.flush(60)
    return produced


def pipeline(env: dict[str, str], rows: list[bytes], bundle_size: int, paced: int, paced_rate: float) -> dict[str, Any]:
    from confluent_kafka import Producer

    run = uuid.uuid4().hex[:8]
    topic, system = f"bench-{run}", f"urn:k2f-bench:pipeline-{run}"
    create_topics(kafka_plain(env), [topic], partitions=4)
    job_id = launch_local_job(
        env, f"bench-{run}", [topic], f"--kafka_consumer_group=bench-{run}", f"--source_id_system={system}",
        f"--bundle_size={bundle_size}",
    )  # fmt: skip
    try:
        producer = Producer({**kafka_plain(env), "linger.ms": 5})
        warmup = synthetic_rows(50, seed=3, id_prefix=f"warm-{run}-")
        for row in warmup:
            producer.produce(topic, row)
        producer.flush(30)
        wait_for(lambda: fhir_count(env, system) >= 50, 300, "the warm-up messages", poll=1)

        cpu_before = service_cpu_seconds(env)
        burst = produce(producer, topic, rows, per_second=None)
        wait_for(lambda: fhir_count(env, system) >= len(warmup) + len(rows), 1800, "every message in HAPI", poll=1)
        cpu = {k: v - cpu_before.get(k, 0.0) for k, v in service_cpu_seconds(env).items()}
        stored = last_updated(env, system)
        started, finished = min(burst.values()), max(stored[i] for i in burst)
        burst_latency = sorted(stored[i] - burst[i] for i in burst)

        paced_rows = synthetic_rows(paced, seed=7, id_prefix=f"paced-{run}-")
        paced_at = produce(producer, topic, paced_rows, per_second=paced_rate)
        total = len(warmup) + len(rows) + len(paced_rows)
        wait_for(lambda: fhir_count(env, system) >= total, 600, "the paced messages in HAPI", poll=1)
        stored = last_updated(env, system)
        paced_latency = sorted(stored[i] - paced_at[i] for i in paced_at)
        return {
            "rate": len(rows) / (finished - started),
            "burst_p50": statistics.median(burst_latency),
            "burst_p99": percentile(burst_latency, 0.99),
            "paced_p50": statistics.median(paced_latency),
            "paced_p99": percentile(paced_latency, 0.99),
            "cpu": cpu,
            "wall": finished - started,
        }
    finally:
        cancel_job(env, job_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--bundle-size", type=int, default=200)
    parser.add_argument("--paced-messages", type=int, default=300, help="messages for the latency phase")
    parser.add_argument("--paced-rate", type=float, default=10.0, help="messages per second in the latency phase")
    args = parser.parse_args()
    env = {**stack_env(), **{k: v for k, v in os.environ.items() if k.startswith(("K2F_", "STORAGE_", "SECRET_"))}}
    os.environ.update({k: env[k] for k in ("STORAGE_EMULATOR_HOST", "SECRET_MANAGER_ENDPOINT", "FHIR_BASE_URL")})
    rows = synthetic_rows(args.messages, seed=5, id_prefix=f"b{uuid.uuid4().hex[:6]}-")
    ceiling_rate = ceiling(env, rows, args.bundle_size)
    result = pipeline(env, rows, args.bundle_size, args.paced_messages, args.paced_rate)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; HAPI at {env['FHIR_BASE_URL']} as it runs")
    print(f"messages: {args.messages}, bundle size {args.bundle_size}")
    print(f"{'':34} {'Patients/s':>10}")
    print(f"{'ceiling: client straight to HAPI':34} {ceiling_rate:10.1f}")
    print(f"{'pipeline: Kafka -> Prism -> HAPI':34} {result['rate']:10.1f}")
    print(f"ratio pipeline/ceiling: {result['rate'] / ceiling_rate:.0%}")
    r = result
    print("latency produce -> readable in HAPI:")
    print(f"  burst of {args.messages} (queueing included): p50 {r['burst_p50']:.1f} s, p99 {r['burst_p99']:.1f} s")
    paced = f"{args.paced_messages} at {args.paced_rate:g}/s"
    print(f"CPU seconds per service while the burst went through ({r['wall']:.0f} s wall, {os.cpu_count()} cores):")
    for name, seconds in sorted(r["cpu"].items(), key=lambda kv: -kv[1]):
        if seconds >= 0.5:
            print(f"  {name:20} {seconds:7.1f} s  ({seconds / r['wall']:.0%} of one core)")
    print(f"  paced, {paced}: p50 {r['paced_p50']:.2f} s, p99 {r['paced_p99']:.2f} s")


if __name__ == "__main__":
    main()
