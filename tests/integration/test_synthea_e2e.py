"""Real Synthea rows end to end, without anyone's help: one patient of the committed population
(tests/data/synthea-10: its rows fill every table, allergies and coverages included) and the organizations,
providers and payers their rows refer to, published to Kafka table by table in the exporter's order, so
encounters, coverages and the rows behind them arrive before what they refer to. The job retries those
through its retry topic; no replay is run. Then the store holds exactly the resources the mapping writes,
per type (counted through this run's identifiers: none missing, none twice), every Encounter linked to its
organization, no error record; the time the last row took is printed. The directory is published once
the job has sent rows to its retry topic (as after a population of any size).
"""

from __future__ import annotations

import time
import uuid

import pytest

from beam_pipeline.us_core import TransformConfig
from dev.local_stack import (
    cancel_job,
    create_topics,
    kafka_plain,
    kafka_sasl,
    launch_local_job,
    ndjson_lines,
    publish,
    wait_for,
)
from dev.synthea_e2e import expected_counts, linked_encounters, population_parts, publish_and_wait, store_counts
from launcher.job_service import JobServiceClient

pytestmark = pytest.mark.integration

# The one patient with allergies; with them, coverages, care plans, devices and immunizations.
PATIENTS = ("2e23caa4-d831-1f47-c522-0518bab7bd3d",)
# A retry every 2 s for up to a minute: a row lands 2 s at most after its target, whenever that comes. Equal
# delays keep the retry topic in due order on one partition.
RETRY_DELAYS = ",".join(["2"] * 30)


def _deferred(env, job_id: str) -> int:
    with JobServiceClient(env["PRISM_ENDPOINT"]) as jobs:
        return jobs.counters(job_id).get("reference_retry/deferred", 0)


def test_synthea_rows_land_in_the_exporters_order_without_a_replay(env):
    run = uuid.uuid4().hex[:8]
    system = f"urn:k2f-synthea-e2e:{run}"
    topic, retry_topic = f"synthea-e2e-{run}", f"synthea-e2e-{run}-retry"
    create_topics(kafka_plain(env), [topic])
    create_topics(kafka_plain(env), [retry_topic], partitions=1)
    rows, directory = population_parts(patients=PATIENTS)
    expected = expected_counts(rows + directory, TransformConfig(source_id_system=system))
    assert {"AllergyIntolerance", "Coverage", "Encounter", "Organization", "Practitioner"} <= set(expected)

    job_id = launch_local_job(
        env,
        f"synthea-e2e-{run}",
        [topic],
        f"--kafka_consumer_group=synthea-e2e-{run}",
        f"--source_id_system={system}",
        "--archive_window_seconds=5",
        f"--reference_retry_topic={retry_topic}",
        f"--reference_retry_delays={RETRY_DELAYS}",
    )
    try:
        # The directory comes once rows have come before it, as it does after a population of any size:
        # within one runner bundle the write order alone would put it first.
        landing = publish_and_wait(
            lambda batch: publish(kafka_sasl(env), topic, batch),
            [rows, directory],
            expected,
            lambda: store_counts(env["FHIR_BASE_URL"], system, expected),
            timeout=420,
            progress=lambda line: print(f"synthea e2e: {line}", flush=True),
            between=lambda: wait_for(lambda: _deferred(env, job_id) > 0, 300, "rows sent to the retry topic", 1),
        )
        print(
            f"synthea e2e: {landing.published} messages, {sum(expected.values())} resources in "
            f"{landing.total_seconds:.0f} s ({landing.rate:.0f} messages/s); the last row landed "
            f"{landing.after_last_row:.0f} s after it was published"
        )
        assert landing.landed == expected
        assert linked_encounters(env["FHIR_BASE_URL"], system) == expected["Encounter"]
        time.sleep(6)  # the last error window (5 s) reaches the bucket
        for stage in ("parse", "validate", "map", "write"):
            assert ndjson_lines(env["GCS_ERROR_BUCKET"], f"errors/stage={stage}/topic={topic}/") == [], stage
    finally:
        cancel_job(env, job_id)
