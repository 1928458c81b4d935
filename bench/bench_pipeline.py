"""Benchmark: the streaming job end to end on the local stack, beside the ceiling of the same HAPI.

    python bench/bench_pipeline.py [--messages 5000] [--bundle-size 200] [--warmup-messages 2000]
                                   [--paced-messages 300 --paced-rate 10]
                                   [--half-ceiling-seconds 20]

In one run, on the running local stack (`make up`; HAPI as it is configured, validation on or off):
0. warm-up: --warmup-messages Patients loaded into HAPI with the client, untimed (HAPI's JIT);
1. ceiling: the same number of synthetic Patients loaded straight into HAPI with the FHIR store client
   (batch bundles of --bundle-size, 4 in flight), resources per second;
2. pipeline: the job is started on Prism and warmed up, then the messages are published to Kafka as
   fast as the producer goes; throughput is messages over the time from the first produce to the last
   Patient readable in HAPI;
   the job writes through a counting proxy (dev/fault_proxy.py): the store requests per 1,000 messages of
   the burst, by kind (batch bundles, guard searches), and the entries per batch bundle;
3. latency: then --paced-messages are published at --paced-rate (below the job's capacity, so no
   queueing), then --half-ceiling-seconds of messages at half the ceiling measured in 1.; latency per
   message is HAPI's meta.lastUpdated minus the produce time (same machine clock), reported as p50 and
   p99, for the burst (where it is mostly waiting in Kafka) and each paced phase.
Every phase writes new Patients under its own identifier system, so they do the same work. Run it once
with HAPI as `make up` starts it (validation off) and once with HAPI_VALIDATE_US_CORE=true.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


import httpx  # noqa: E402

from beam_pipeline.fhir_store import FhirStoreClient, FhirStoreConfig, WriteItem  # noqa: E402
from beam_pipeline.us_core import Ok, TransformConfig, transform  # noqa: E402
from dev.fault_proxy import FaultProxy, Seen  # noqa: E402
from dev.latency import latencies, percentile, produce, stored_at  # noqa: E402
from dev.local_stack import (  # noqa: E402
    cancel_job,
    create_topics,
    fhir_count,
    kafka_plain,
    launch_local_job,
    validation_on,
    wait_for,
)
from dev.stack_env import stack_env  # noqa: E402
from dev.stack_resources import STORE_CPUS_HELP, cpu_set, require_disk, service_cpu_seconds, store_pinned  # noqa: E402
from dev.synthetic import synthetic_rows  # noqa: E402


def ceiling(
    env: dict[str, str],
    rows: list[bytes],
    bundle_size: int,
    tag: str = "ceiling",
    source_times_ms: list[int] | None = None,
) -> tuple[float, dict[str, float], float]:
    """Resources per second, the CPU seconds each service used meanwhile, and the wall seconds.
    `source_times_ms`: each row's source time, written with its resources as the job writes a message's
    Kafka timestamp (a meta.tag code each: the store indexes every new one); none by default."""
    system = f"urn:k2f-bench:{tag}-{uuid.uuid4().hex[:8]}"
    config = TransformConfig(source_id_system=system, structural_validation=False)
    items = []
    for i, row in enumerate(rows):
        result = transform(row, config=config)
        assert isinstance(result, Ok)
        at_ms = source_times_ms[i] if source_times_ms is not None else None
        items.extend(WriteItem(r.resource, r.identifier, source_time_ms=at_ms) for r in result.resources)
    store = FhirStoreConfig(base_url=env["FHIR_BASE_URL"], bundle_size=bundle_size, max_bundles_in_flight=4)
    with FhirStoreClient(store) as client:
        cpu_before, own_before = service_cpu_seconds(env), time.process_time()
        started = time.monotonic()
        outcomes = client.write(items)
        elapsed = time.monotonic() - started
        cpu = {k: v - cpu_before.get(k, 0.0) for k, v in service_cpu_seconds(env).items()}
        cpu["this benchmark (client)"] = time.process_time() - own_before
    assert all(o.ok for o in outcomes), "the ceiling load had failures"
    assert fhir_count(env, system) == len(rows)
    return len(rows) / elapsed, cpu, elapsed


def pipeline(
    env: dict[str, str], rows: list[bytes], bundle_size: int, paced: list[tuple[int, float]], *, counted: bool = True
) -> dict[str, Any]:
    from confluent_kafka import Producer

    run = uuid.uuid4().hex[:8]
    topic, system = f"bench-{run}", f"urn:k2f-bench:pipeline-{run}"
    create_topics(kafka_plain(env), [topic], partitions=4)
    # The job writes through a counting proxy: what it asks of the store, per message of the burst.
    base = urlsplit(env["FHIR_BASE_URL"])
    proxy = FaultProxy(f"{base.scheme}://{base.netloc}").start()
    store_url = f"{proxy.url}{base.path}" if counted else env["FHIR_BASE_URL"]
    job_id = launch_local_job(
        env, f"bench-{run}", [topic], f"--kafka_consumer_group=bench-{run}", f"--source_id_system={system}",
        f"--bundle_size={bundle_size}", f"--fhir_base_url={store_url}",
    )  # fmt: skip
    try:
        producer = Producer({**kafka_plain(env), "linger.ms": 5})
        warmup = synthetic_rows(50, seed=3, id_prefix=f"warm-{run}-")
        for row in warmup:
            producer.produce(topic, row)
        producer.flush(30)
        wait_for(lambda: fhir_count(env, system) >= 50, 300, "the warm-up messages", poll=1)
        total = len(warmup)

        cpu_before, own_before = service_cpu_seconds(env), time.process_time()
        proxy.clear()
        burst = produce(producer, topic, rows, per_second=None)
        total += len(rows)
        wait_for(lambda: fhir_count(env, system) >= total, 1800, "every message in HAPI", poll=1)
        cpu = {k: v - cpu_before.get(k, 0.0) for k, v in service_cpu_seconds(env).items()}
        cpu["this benchmark (producer, proxy)"] = time.process_time() - own_before
        requests = request_kinds(proxy.seen, base.path)
        occupancy = bundles_in_flight(proxy.seen, base.path)
        stored = stored_at(env, system)
        started, finished = min(burst.values()), max(stored[i] for i in burst)
        result: dict[str, Any] = {
            "rate": len(rows) / (finished - started),
            "burst": latencies(burst, stored),
            "cpu": cpu,
            "wall": finished - started,
            "requests": requests,
            "occupancy": occupancy,
            "paced": [],
        }
        for phase, (count, rate) in enumerate(paced):
            paced_rows = synthetic_rows(count, seed=7 + phase, id_prefix=f"paced{phase}-{run}-")
            paced_at = produce(producer, topic, paced_rows, per_second=rate)
            total += count
            wait_for(lambda n=total: fhir_count(env, system) >= n, 600, "the paced messages in HAPI", poll=1)
            result["paced"].append((count, rate, latencies(paced_at, stored_at(env, system))))
        return result
    finally:
        cancel_job(env, job_id)
        proxy.stop()


def is_batch_bundle(request: Seen, base_path: str) -> bool:
    """A batch bundle: a POST to the store's base."""
    return request.method == "POST" and urlsplit(request.path).path.rstrip("/") == base_path.rstrip("/")


def request_kinds(seen: Iterable[Seen], base_path: str) -> dict[str, int]:
    """The store requests by kind: batch bundles (POST to the base), searches, the rest."""
    kinds: dict[str, int] = {}
    for request in seen:
        path = urlsplit(request.path).path.rstrip("/")
        if is_batch_bundle(request, base_path):
            kind = "batch bundles"
        elif path.endswith("/_search") or request.method == "GET" and "?" in request.path:
            kind = "searches"
        else:
            kind = f"other ({request.method})"
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def bundles_in_flight(seen: Iterable[Seen], base_path: str) -> dict[int, float]:
    """The share of the time, from the first batch bundle's arrival at the store to the last one's answer,
    that the store had n of them at once (n -> share): the ceiling's client keeps 4 in flight."""
    spans = [(s.arrived, s.at) for s in seen if is_batch_bundle(s, base_path)]
    if not spans:
        return {}
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    shares: dict[int, float] = {}
    level, last = 0, events[0][0]
    for at, step in events:
        shares[level] = shares.get(level, 0.0) + at - last
        level, last = level + step, at
    total = sum(shares.values()) or 1.0
    return {n: t / total for n, t in sorted(shares.items())}


def _p50_p99(ordered: list[float]) -> str:
    return f"p50 {statistics.median(ordered):.2f} s, p99 {percentile(ordered, 0.99):.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000, help="Patients in the ceiling load and the burst")
    parser.add_argument("--bundle-size", type=int, default=200, help="entries per batch bundle (--bundle_size)")
    parser.add_argument(
        "--warmup-messages",
        type=int,
        default=2000,
        help="Patients loaded into HAPI with the client, untimed, before the ceiling (0 leaves it out)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="ceiling and pipeline measured alternately this many times"
    )
    parser.add_argument("--store-cpus", help=STORE_CPUS_HELP)
    parser.add_argument(
        "--uncounted",
        action="store_true",
        help="the job writes straight to HAPI, not through the counting proxy (no request counts)",
    )
    parser.add_argument("--paced-messages", type=int, default=300, help="messages for the steady-rate latency phase")
    parser.add_argument("--paced-rate", type=float, default=10.0, help="messages per second in that phase")
    parser.add_argument(
        "--half-ceiling-seconds",
        type=float,
        default=20.0,
        help="length of the phase paced at half the measured ceiling (0 leaves it out)",
    )
    args = parser.parse_args()
    env = {**stack_env(), **{k: v for k, v in os.environ.items() if k.startswith(("K2F_", "STORAGE_", "SECRET_"))}}
    os.environ.update({k: env[k] for k in ("STORAGE_EMULATOR_HOST", "SECRET_MANAGER_ENDPOINT", "FHIR_BASE_URL")})
    require_disk(env)
    with httpx.Client(base_url=env["FHIR_BASE_URL"], timeout=60) as fhir:
        validation = "on" if validation_on(fhir) else "off"
    run = uuid.uuid4().hex[:6]
    with store_pinned(env, cpu_set(args.store_cpus)):
        rounds = measure(env, args, run)
    report(env, args, validation, rounds)


def measure(
    env: dict[str, str], args: argparse.Namespace, run: str
) -> list[tuple[float, dict[str, float], float, dict[str, Any]]]:
    """The warm-up, then the rounds: (ceiling rate, its CPU per service, its wall seconds, the pipeline's run)."""
    if args.warmup_messages > 0:
        # A HAPI just restarted runs its first thousands of writes on a cold JIT (and validator): without
        # this the ceiling, measured first, is low and the pipeline after it looks faster than it.
        ceiling(env, synthetic_rows(args.warmup_messages, seed=4, id_prefix=f"w{run}-"), args.bundle_size, "warmup")
    rounds = []
    for number in range(args.rounds):
        # Alternated, each on fresh Patients: HAPI's rate drifts by a fifth over minutes (its JIT, its
        # database), so a single pair's ratio follows the drift; the median ratio of the pairs does not.
        rows = synthetic_rows(args.messages, seed=5 + number, id_prefix=f"b{run}-{number}-")
        ceiling_rate, ceiling_cpu, ceiling_wall = ceiling(env, rows, args.bundle_size)
        paced = []
        if number == args.rounds - 1:
            paced = [(args.paced_messages, args.paced_rate)]
            if args.half_ceiling_seconds > 0:
                paced.append((int(ceiling_rate / 2 * args.half_ceiling_seconds), ceiling_rate / 2))
        r = pipeline(env, rows, args.bundle_size, paced, counted=not args.uncounted)
        rounds.append((ceiling_rate, ceiling_cpu, ceiling_wall, r))
        print(f"round {number + 1}: ceiling {ceiling_rate:.1f}/s, pipeline {r['rate']:.1f}/s", flush=True)
    return rounds


def report(
    env: dict[str, str],
    args: argparse.Namespace,
    validation: str,
    rounds: list[tuple[float, dict[str, float], float, dict[str, Any]]],
) -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; HAPI at {env['FHIR_BASE_URL']}")
    print(f"HAPI's US Core validation: {validation}")
    if args.store_cpus:
        print(f"HAPI pinned to CPU {args.store_cpus}, every other service and this benchmark to the others")
    print(f"messages: {args.messages} a round, {args.rounds} rounds, bundle size {args.bundle_size}")
    heads = ("ceiling/s", "pipeline/s", "ratio", "HAPI ms/Patient: ceiling", "pipeline")
    print(f"{'round':6} {heads[0]:>10} {heads[1]:>11} {heads[2]:>6} {heads[3]:>25} {heads[4]:>9}")
    per_patient = args.messages / 1000  # CPU seconds over this: milliseconds a Patient
    for number, (ceiling_rate, ceiling_cpu, _, r) in enumerate(rounds, 1):
        print(
            f"{number:<6} {ceiling_rate:10.1f} {r['rate']:11.1f} {r['rate'] / ceiling_rate:6.0%} "
            f"{ceiling_cpu.get('hapi', 0) / per_patient:25.1f} {r['cpu'].get('hapi', 0) / per_patient:9.1f}"
        )
    ratios = [r["rate"] / ceiling_rate for ceiling_rate, _, _, r in rounds]
    print(f"ratio pipeline/ceiling, median of {len(ratios)} rounds: {statistics.median(ratios):.0%}")
    ceiling_rate, ceiling_cpu, ceiling_wall, r = rounds[-1]
    print("the last round:")
    print("latency produce -> readable in HAPI:")
    print(f"  burst of {args.messages} (queueing included): {_p50_p99(r['burst'])}")
    for count, rate, measured in r["paced"]:
        print(f"  paced, {count} at {rate:.1f}/s: {_p50_p99(measured)}")
    per_thousand = 1000 / args.messages
    asked = ", ".join(f"{kind} {n * per_thousand:.1f}" for kind, n in sorted(r["requests"].items()))
    bundles = r["requests"].get("batch bundles", 0)
    print(f"store requests per 1,000 messages of the burst: {asked or 'none'}")
    print(
        f"  entries per batch bundle: {args.messages / bundles if bundles else float('nan'):.1f} (Patients / bundles)"
    )
    occupancy = r["occupancy"]
    if occupancy:
        mean = sum(n * share for n, share in occupancy.items())
        shares = ", ".join(f"{n}: {share:.0%}" for n, share in occupancy.items())
        print(
            f"  batch bundles at the store at once: mean {mean:.2f} (share of the burst's write time with n: {shares})"
        )
    for phase, cpu, wall in (("the ceiling load", ceiling_cpu, ceiling_wall), ("the burst", r["cpu"], r["wall"])):
        print(f"CPU seconds per service while {phase} went through ({wall:.0f} s wall, {os.cpu_count()} cores):")
        for name, seconds in sorted(cpu.items(), key=lambda kv: -kv[1]):
            if seconds >= 0.5:
                print(f"  {name:32} {seconds:7.1f} s  ({seconds / wall:.0%} of one core)")


if __name__ == "__main__":
    main()
