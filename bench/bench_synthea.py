"""Benchmark: a whole Synthea population through the streaming job, beside the ceiling of the same HAPI.

    python bench/bench_synthea.py [--patients 30 | --population DIR] [--bundle-size 200]
                                  [--retry-delays 10,30,60,120,300,600] [--timeout 3600]

On the running local stack (`make up`; HAPI as it is configured):
1. ceiling: every resource the population maps to, loaded straight into HAPI with the FHIR store client
   (batch bundles of --bundle-size, 4 in flight), the directory first, then patients, encounters and the
   rest (the order their references need), resources per second (as bench/bench_pipeline.py measures it);
2. pipeline: a streaming job with a retry topic is started on Prism, then every row is published in the
   exporter's order (rows before the organizations, providers and payers they refer to); throughput is
   resources (and messages) over the time from the first produce to the last resource in the store.
Both write under their own identifier system, so they do the same work. --patients N generates the
population first (dev/synthea_generate.sh: Synthea 3.3.0, seed 42, cached).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beam_pipeline.contracts.reference_retry import DEFAULT_DELAYS  # noqa: E402
from beam_pipeline.fhir_store import FhirStoreClient, FhirStoreConfig, WriteItem  # noqa: E402
from beam_pipeline.us_core import Ok, TransformConfig, transform  # noqa: E402
from dev.local_stack import cancel_job, create_topics, kafka_plain, launch_local_job, publish  # noqa: E402
from dev.stack_env import stack_env  # noqa: E402
from dev.synthea_e2e import expected_counts, population, publish_and_wait, store_counts  # noqa: E402
from launcher.job_service import JobServiceClient  # noqa: E402

# The ceiling's load order: what the references need (the pipeline derives the same from the mappings).
TIERS = (("Organization", "Location", "Practitioner"), ("Patient",), ("Encounter",))


def ceiling(env: dict[str, str], messages: list[bytes], bundle_size: int) -> tuple[int, float]:
    """(resources, resources per second) loaded straight into the store."""
    system = f"urn:k2f-bench:synthea-ceiling-{uuid.uuid4().hex[:8]}"
    config = TransformConfig(source_id_system=system, structural_validation=False)
    items: dict[str, WriteItem] = {}
    for raw in messages:
        result = transform(raw, config=config)
        if isinstance(result, Ok):
            for mapped in result.resources:
                # One write per business identifier, as the store keeps one resource for it.
                items[f"{mapped.resource['resourceType']}|{mapped.identifier}"] = WriteItem(
                    mapped.resource, mapped.identifier
                )
    tiers: list[list[WriteItem]] = [[] for _ in range(len(TIERS) + 1)]
    for item in items.values():
        rtype = item.resource["resourceType"]
        tiers[next((n for n, types in enumerate(TIERS) if rtype in types), len(TIERS))].append(item)
    store = FhirStoreConfig(base_url=env["FHIR_BASE_URL"], bundle_size=bundle_size, max_bundles_in_flight=4)
    with FhirStoreClient(store) as client:
        started = time.monotonic()
        failed = sum(not o.ok for tier in tiers for o in client.write(tier))
        elapsed = time.monotonic() - started
    assert failed == 0, f"the ceiling load had {failed} failures"
    return len(items), len(items) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--patients", type=int, default=30, help="generate a population of N patients (default 30)")
    source.add_argument("--population", type=Path, help="a Synthea CSV export folder instead")
    parser.add_argument("--bundle-size", type=int, default=200, help="resources per batch bundle (both loads)")
    parser.add_argument(
        "--retry-delays", default=DEFAULT_DELAYS, help="the job's --reference_retry_delays (default: its own)"
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the store")
    args = parser.parse_args()
    env = {**os.environ, **stack_env()}
    folder = args.population
    if folder is None:
        generated = subprocess.run(
            ["bash", str(ROOT / "dev" / "synthea_generate.sh"), str(args.patients)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        folder = Path(generated.stdout.strip().splitlines()[-1])
    messages = population(folder)
    print(f"population {folder}: {len(messages)} messages", flush=True)

    resources, ceiling_rate = ceiling(env, messages, args.bundle_size)
    print(f"ceiling: {resources} resources at {ceiling_rate:.1f}/s", flush=True)

    run = uuid.uuid4().hex[:8]
    topic, retry_topic, system = f"synthea-bench-{run}", f"synthea-bench-{run}-retry", f"urn:k2f-bench:synthea-{run}"
    create_topics(kafka_plain(env), [topic], partitions=2)
    create_topics(kafka_plain(env), [retry_topic], partitions=len(args.retry_delays.split(",")))
    expected = expected_counts(messages, TransformConfig(source_id_system=system))
    job_id = launch_local_job(
        env, f"synthea-bench-{run}", [topic], f"--kafka_consumer_group=synthea-bench-{run}",
        f"--source_id_system={system}", f"--bundle_size={args.bundle_size}",
        f"--reference_retry_topic={retry_topic}", f"--reference_retry_delays={args.retry_delays}",
    )  # fmt: skip
    try:
        landing = publish_and_wait(
            lambda batch: publish(kafka_plain(env), topic, batch),
            [messages],
            expected,
            lambda: store_counts(env["FHIR_BASE_URL"], system, expected),
            timeout=args.timeout,
            progress=lambda line: print(f"pipeline: {line}", flush=True),
            poll=5,
        )
        with JobServiceClient(env["PRISM_ENDPOINT"]) as jobs:
            counters = jobs.counters(job_id)
    finally:
        cancel_job(env, job_id)
    written = sum(landing.landed.values())
    rate = written / landing.total_seconds
    print(f"""
Synthea population through the pipeline, {platform.node()}, {os.cpu_count()} cores, HAPI validation as configured
  population:   {folder} ({len(messages)} messages, {sum(expected.values())} resources)
  ceiling:      {ceiling_rate:.1f} resources/s (the client straight into HAPI, in reference order)
  pipeline:     {rate:.1f} resources/s, {landing.rate:.1f} messages/s over {landing.total_seconds:.0f} s
                ({rate / ceiling_rate:.0%} of the ceiling); {"complete" if landing.complete else "NOT complete"}
  last row:     landed {landing.after_last_row:.0f} s after publishing ended
  retries:      {counters.get("reference_retry/deferred", 0)} deferrals to the retry topic, \
{counters.get("reference_retry/dead_lettered_after_retries", 0)} dead-lettered after the last delay
""")  # fmt: skip


if __name__ == "__main__":
    main()
