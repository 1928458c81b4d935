"""`make demo`, after the stack is up: launch the job through Airflow, publish the samples, show the result.

Idempotent: a rerun reuses the running demo job (one job per consumer group) and re-publishes the
samples, which update the same Patients.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import httpx
from google.cloud import storage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beam_pipeline.us_core import transform  # noqa: E402
from beam_pipeline.us_core.terminology import DEFAULT_SOURCE_ID_SYSTEM  # noqa: E402
from dev.airflow_api import AirflowApi, local_config  # noqa: E402
from dev.kafka_publish import create_topics, kafka_plain, kafka_sasl, publish  # noqa: E402
from launcher.job_service import JobServiceClient  # noqa: E402

TOPIC = "patients"
JOB_NAME = "kafka-to-fhir-demo"


def step(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def wait(condition, timeout: float, what: str) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(2)
    step(f"gave up after {timeout:.0f}s waiting for {what}")
    return False


def launch(env: dict[str, str], airflow: AirflowApi, job_name: str = JOB_NAME) -> str:
    with JobServiceClient(env["PRISM_ENDPOINT"]) as jobs:
        running = jobs.active_jobs(job_name)
    if running:
        step(f"job {job_name} is already running ({running[0].job_id}); reusing it")
        return running[0].job_id
    step("triggering the k2f_launch DAG (prerequisite checks, then the Beam operator starts the job)")
    run_id = airflow.trigger("k2f_launch")
    state = airflow.wait_for_run("k2f_launch", run_id, timeout=900)
    tasks = airflow.task_states("k2f_launch", run_id)
    step(f"k2f_launch {state}: " + ", ".join(f"{t}={s}" for t, s in sorted(tasks.items())))
    if state != "success":
        raise SystemExit(f"the launch DAG did not succeed; see its task logs at {env['AIRFLOW_URL']}")
    return airflow.xcom("k2f_launch", run_id, "wait_until_running")["job_id"]


def main() -> None:
    env = dict(os.environ)
    env["AIRFLOW_URL"] = f"http://127.0.0.1:{env['AIRFLOW_PORT']}"
    if not _topic_exists(env):
        create_topics(kafka_plain(env), [TOPIC], partitions=2)
    config = local_config(env, [TOPIC], JOB_NAME)
    with AirflowApi(env["AIRFLOW_URL"]) as airflow:
        wait(lambda: "k2f_launch" in airflow.dag_ids(), 120, "Airflow to parse the DAGs")
        # The whole Variable, not a part: nothing a test or an earlier run left in it survives.
        airflow.set_config(config)
        step(f"Airflow Variable k2f set for the local stack ({len(config)} settings, the rest defaults)")
        job_id = launch(env, airflow)
    step(f"streaming job {JOB_NAME} running on Prism as {job_id}")

    samples = sorted((ROOT / "include" / "sample_messages").glob("*.json"))
    values = [p.read_bytes().strip() for p in samples]
    kinds = [json.loads(v).get("MESSAGE_TYPE", "patient") for v in values]
    patients = [v for v, k in zip(values, kinds, strict=True) if k == "patient"]
    # Who gives care (organizations, clinicians): what encounters refer to besides their patient.
    directory = [v for v, k in zip(values, kinds, strict=True) if k in ("organization", "provider")]
    encounters = [v for v, k in zip(values, kinds, strict=True) if k == "encounter"]
    clinical = [v for v, k in zip(values, kinds, strict=True) if k != "patient" and v not in directory]
    before = outcomes(env, job_id)
    # In the order they refer to one another: a row refers to its Patient (and Encounter) by identifier,
    # which must exist by then (a row that comes first is a retryable error record, replayed later).
    batches = (
        (patients, "Patient"),
        (directory, "Organization and Practitioner"),
        (encounters, "Encounter"),
        ([v for v in clinical if v not in encounters], "clinical"),
    )
    for batch, what in batches:
        publish(kafka_sasl(env), TOPIC, batch)
        step(f"published {len(batch)} {what} sample messages to '{TOPIC}' through the SASL listener")
        target = before["read"] + len(batch)

        def settled(target: int = target) -> bool:
            now = outcomes(env, job_id)
            return now["read"] >= target and now["done"] >= now["read"]

        wait(settled, 300, f"every {what} message's outcome")
        before = outcomes(env, job_id)
    wait(lambda: outcomes(env, job_id)["archived"] >= before["read"], 180, "the archive")

    ids = [json.loads(v)["Id"] for v in patients]

    def count(resource_type: str, **search: str) -> int:
        # The search goes in params whole: httpx would drop a query already in the URL.
        params = {**search, "_summary": "count"}
        url = f"{env['FHIR_BASE_URL']}/{resource_type}"
        return httpx.get(url, params=params, headers={"Cache-Control": "no-cache"}, timeout=30).json()["total"]

    found = sum(count("Patient", identifier=f"{DEFAULT_SOURCE_ID_SYSTEM}|{i}") > 0 for i in ids)
    # The clinical samples all belong to one Patient: its record, by type, through a chained search.
    owner = {json.loads(v)["PATIENT"] for v in clinical}
    record = {}
    # The resource types the mapping makes of them (the dry-run mapping, as `python -m beam_pipeline.dry_run`).
    types = {r.resource["resourceType"] for v in clinical for r in transform(v).resources}
    for resource_type in sorted(types):
        chained = {"patient.identifier": f"{DEFAULT_SOURCE_ID_SYSTEM}|{next(iter(owner))}"} if owner else {}
        record[resource_type] = count(resource_type, **chained)

    client = storage.Client(project=env["GCP_PROJECT"])
    archive = [b.name for b in client.list_blobs(env["GCS_ARCHIVE_BUCKET"], prefix=f"archive/topic={TOPIC}/")]
    listed = client.list_blobs(env["GCS_ERROR_BUCKET"], prefix="errors/")
    # This job's own: tests may write error objects under the same topic name (objects name their job).
    errors = [b.name for b in listed if f"topic={TOPIC}/" in b.name and f"-{JOB_NAME}-" in b.name]
    with JobServiceClient(env["PRISM_ENDPOINT"]) as jobs:
        counters = {k: v for k, v in jobs.counters(job_id).items() if not k.startswith("beam/")}

    print(f"""
What happened
  Patients in HAPI:  {found} of {len(ids)} Patient sample messages
     e.g. {env['FHIR_BASE_URL']}/Patient?identifier={DEFAULT_SOURCE_ID_SYSTEM}|{ids[0]}
     all: {env['FHIR_BASE_URL']}/Patient?identifier={DEFAULT_SOURCE_ID_SYSTEM}|&_count=50
  Clinical record:   {", ".join(f"{t} {n}" for t, n in record.items())}
                     of Patient {", ".join(owner)} ({len(clinical)} clinical sample messages)
  Archive objects:   {len(archive)} in gs://{env['GCS_ARCHIVE_BUCKET']}/archive/topic={TOPIC}/
                     (GCS emulator at {env['STORAGE_EMULATOR_HOST']})
  Error objects:     {len(errors)} in gs://{env['GCS_ERROR_BUCKET']}/errors/
  Job counters:      {json.dumps(counters, sort_keys=True)}

  Airflow UI:        {env['AIRFLOW_URL']}  (login admin / admin)
                     DAGs k2f_launch, k2f_health, k2f_error_replay, k2f_drain
  Beam (Prism) UI:   http://127.0.0.1:{env['PRISM_UI_PORT']}
  Try your own messages without Kafka:
                     python -m beam_pipeline.dry_run --input include/sample_messages/02_*.json
  Stop the job:      trigger k2f_drain in the Airflow UI (locally a drain is a cancel)
  Stop the stack:    make down
""")  # fmt: skip


def outcomes(env: dict[str, str], job_id: str) -> dict[str, int]:
    """Messages the job has read, finished (written, dead-lettered or filtered) and archived so far."""
    with JobServiceClient(env["PRISM_ENDPOINT"]) as jobs:
        counters = jobs.counters(job_id)
    read = sum(v for k, v in counters.items() if k.startswith("parse_and_validate/"))
    done = counters.get("write_to_fhir_store/resources_written", 0) + counters.get("parse_and_validate/filtered", 0)
    done += sum(v for k, v in counters.items() if k.startswith("dead_letter/"))
    return {"read": read, "done": done, "archived": counters.get("windowed_files/archive_lines_written", 0)}


def _topic_exists(env: dict[str, str]) -> bool:
    from confluent_kafka.admin import AdminClient

    return TOPIC in AdminClient(kafka_plain(env)).list_topics(timeout=30).topics


if __name__ == "__main__":
    main()
