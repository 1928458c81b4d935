"""`make demo-synthea`, after the stack is up: a whole Synthea population through the pipeline, as a hospital's
feed would go. Launches a streaming job through Airflow (with the job's retry topic), publishes every row
of every table in the exporter's order, and prints what landed per resource type against what the mapping
writes, the rate, and where to look.

    python dev/demo_synthea.py [--population tests/data/synthea-10] [--patients N] [--timeout 1800]

Idempotent: a rerun reuses the running job and re-publishes; the resources are updated in place (the
counts stay those the mapping writes). Everything goes under its own identifier system, so the counts are
this demo's, whatever else the store holds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewPartitions

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beam_pipeline.contracts.reference_retry import DEFAULT_DELAYS  # noqa: E402
from beam_pipeline.us_core import TransformConfig  # noqa: E402
from dev.airflow_api import AirflowApi, local_config  # noqa: E402
from dev.demo import launch, step, wait  # noqa: E402
from dev.kafka_publish import create_topics, kafka_plain, kafka_sasl, publish  # noqa: E402
from dev.synthea_e2e import (  # noqa: E402
    expected_counts,
    linked_encounters,
    patient_ids,
    population,
    publish_and_wait,
    store_counts,
)
from dev.synthea_population import POPULATION  # noqa: E402
from launcher.job_service import JobServiceClient  # noqa: E402

TOPIC = "synthea"
RETRY_TOPIC = "synthea-retry"
JOB_NAME = "kafka-to-fhir-synthea"
SYSTEM = "urn:kafka-to-fhir:synthea-demo"


def _ensure_topics(env: dict[str, str]) -> None:
    admin = AdminClient(kafka_plain(env))
    existing = admin.list_topics(timeout=30).topics
    if TOPIC not in existing:
        create_topics(kafka_plain(env), [TOPIC], partitions=2)
    delays = len(DEFAULT_DELAYS.split(","))  # one partition of the retry topic per delay
    if RETRY_TOPIC not in existing:
        create_topics(kafka_plain(env), [RETRY_TOPIC], partitions=delays)
    elif len(existing[RETRY_TOPIC].partitions) < delays:  # made by a version with fewer delays
        for future in admin.create_partitions([NewPartitions(RETRY_TOPIC, delays)]).values():
            future.result(timeout=30)


def _messages_settled(jobs: JobServiceClient, job_id: str) -> int:
    """Messages whose outcome is durable and archived (the offset commit's count; a row read back from the
    retry topic counts again)."""
    return jobs.counters(job_id).get("commit_offsets/messages_settled", 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=Path, default=POPULATION, help="a Synthea CSV export folder")
    parser.add_argument("--patients", type=int, default=None, help="only the first N patients' rows")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the store")
    args = parser.parse_args()
    env = dict(os.environ)
    env["AIRFLOW_URL"] = f"http://127.0.0.1:{env['AIRFLOW_PORT']}"
    _ensure_topics(env)

    chosen = patient_ids(args.population)[: args.patients] if args.patients else None
    messages = population(args.population, chosen)
    expected = expected_counts(messages, TransformConfig(source_id_system=SYSTEM))
    step(
        f"{len(messages)} rows from {args.population} (the dry run says they write {sum(expected.values())} resources)"
    )

    config = {
        **local_config(env, [TOPIC], JOB_NAME),
        "reference_retry_topic": RETRY_TOPIC,
        "pipeline_options": json.dumps({"source_id_system": SYSTEM}),
    }
    with AirflowApi(env["AIRFLOW_URL"]) as airflow:
        wait(lambda: "k2f_launch" in airflow.dag_ids(), 120, "Airflow to parse the DAGs")
        airflow.set_config(config)
        step(f"Airflow Variable k2f set for the Synthea demo (retry topic '{RETRY_TOPIC}')")
        job_id = launch(env, airflow, JOB_NAME)
    step(f"streaming job {JOB_NAME} running on Prism as {job_id}")

    with JobServiceClient(env["PRISM_ENDPOINT"]) as jobs:
        settled_before = _messages_settled(jobs, job_id)
        landing = publish_and_wait(
            lambda batch: publish(kafka_sasl(env), TOPIC, batch),
            [messages],
            expected,
            lambda: store_counts(env["FHIR_BASE_URL"], SYSTEM, expected),
            timeout=args.timeout,
            progress=step,
            poll=10,
            # A rerun finds every resource there already: the job must also have settled what was published.
            settled=lambda: _messages_settled(jobs, job_id) - settled_before >= len(messages),
        )
        counters = jobs.counters(job_id)
    linked = linked_encounters(env["FHIR_BASE_URL"], SYSTEM)
    base = env["FHIR_BASE_URL"]
    rows = "\n".join(
        f"    {rtype:20} {landing.landed.get(rtype, 0):>7} of {n:>7}" for rtype, n in sorted(expected.items())
    )
    print(f"""
What happened ({"every resource landed" if landing.complete else f"NOT complete after {args.timeout:.0f} s"})
  {landing.published} messages published in the exporter's order, to '{TOPIC}'
  resources in the store, per type (of those the mapping writes):
{rows}
  Encounters linked to their organization: {linked} of {expected.get("Encounter", 0)}
  rate: {landing.rate:.1f} messages/s over {landing.total_seconds:.0f} s; the last row landed
        {landing.after_last_row:.0f} s after publishing ended
  rows that waited in the retry topic: {counters.get("reference_retry/deferred", 0)} times
  rows dead-lettered after every retry: {counters.get("reference_retry/dead_lettered_after_retries", 0)}
  Look at them:
    {base}/Patient?identifier={SYSTEM}|
    {base}/Encounter?identifier={SYSTEM}|&_include=Encounter:service-provider
    {base}/Observation?subject:Patient.identifier={SYSTEM}|&_count=20
  Airflow UI: {env["AIRFLOW_URL"]} (admin / admin); Beam (Prism) UI: http://127.0.0.1:{env["PRISM_UI_PORT"]}
  Stop the job: trigger k2f_drain in the Airflow UI; the stack: make down
""")  # fmt: skip
    if not landing.complete:
        sys.exit(1)


if __name__ == "__main__":
    started = time.monotonic()
    main()
    step(f"done in {time.monotonic() - started:.0f} s")
