"""Stopping the job in any way loses nothing: offsets move only past messages whose outcome is durable.

One job, one consumer group, and messages published at 100 a second throughout. Six times, mid-stream,
something stops or disturbs the job while publishing goes on: the drain DAG; SIGKILL of the Python SDK
worker pool, of the Java worker pool, of Prism (each then started again, and the job relaunched through
k2f_launch); a Kafka broker restart; a 20-second GCS outage. At the end every message is in HAPI exactly
once (one Patient per business identifier, none missing), every offset of the topic is committed and in
the archive at least once, and no process the killed worker pool had started is left behind.
Before the job committed offsets itself (KafkaIO committed them as its bundles were finalized), the
drain alone lost messages: 112 of 3,000 in the run that found it.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable

import pytest

from dev.airflow_api import AirflowApi, local_config
from dev.local_stack import ROOT, create_topics, fhir_count, kafka_plain, ndjson_lines, wait_for
from launcher.job_service import JobServiceClient
from tests.integration.test_pipeline_e2e import _valid
from tests.support.under_load import (
    SteadyPublisher,
    archive_lines,
    archived_offsets,
    drain,
    end_job,
    kill_leader,
    launch,
    published_offsets,
    service,
    settled_everything,
    stack_processes,
)

pytestmark = pytest.mark.integration

PER_SECOND = 100
PER_PHASE = 400  # 4 s of publishing; the stop comes after 2 s, the rest arrives while the job stops
STOP_AFTER_S = 2.0


def test_no_stop_loses_a_message(env):
    run = uuid.uuid4().hex[:8]
    topic, job_name, system = f"stop-{run}", f"stop-{run}", f"urn:k2f-stop:{run}"
    create_topics(kafka_plain(env), [topic])
    config = local_config(env, [topic], job_name) | {
        "pipeline_options": {"source_id_system": system, "archive_window_seconds": 2},
    }
    with (
        AirflowApi(f"http://127.0.0.1:{env['AIRFLOW_PORT']}") as airflow,
        JobServiceClient(env["PRISM_ENDPOINT"]) as jobs,
        airflow.config(config),
    ):
        job_id = launch(airflow, jobs, job_name)
        reports: dict[str, dict] = {}

        def by_drain() -> None:
            reports["drain"] = drain(airflow)
            assert jobs.state(job_id) == "CANCELLED"

        def by_killing(name: str) -> Callable[[], None]:
            def stop() -> None:
                group = kill_leader(env, name)
                try:
                    # Its workers outlive it (re-parented to init): `make status` names them, and stopping the
                    # service stops them, as `make down` does for the whole stack.
                    status = subprocess.run(
                        ["bash", str(ROOT / "dev/stack.sh"), "status", name], capture_output=True, text=True
                    ).stdout
                    left = stack_processes(env, group)
                    service("down", name)
                    assert not left or "stray: pid" in status, status
                    assert stack_processes(env, group) == [], f"processes of the killed {name} outlived its stop"
                finally:
                    service("up", name)  # the rest of the suite needs it
                end_job(jobs, job_id)

            return stop

        def restarting(name: str, down_seconds: float) -> Callable[[], None]:
            def disturb() -> None:
                service("down", name)
                try:
                    time.sleep(down_seconds)
                finally:
                    service("up", name)

            return disturb

        stops: list[tuple[str, Callable[[], None], bool]] = [
            ("drain DAG", by_drain, True),
            ("SIGKILL python_worker_pool", by_killing("python_worker_pool"), True),
            ("SIGKILL java_worker_pool", by_killing("java_worker_pool"), True),
            ("SIGKILL prism", by_killing("prism"), True),
            ("Kafka broker restart", restarting("kafka", 0), False),
            ("20-second GCS outage", restarting("gcs", 20), False),
        ]
        rows = _valid(run, 0, PER_PHASE * len(stops))
        started = time.monotonic()

        def progress(what: str) -> None:  # shown with pytest -s: where the test's minutes go
            print(f"[{time.monotonic() - started:6.1f} s] {what}", flush=True)

        try:
            for i, (what, stop, relaunch) in enumerate(stops):
                publisher = SteadyPublisher(env, topic, rows[i * PER_PHASE : (i + 1) * PER_PHASE], PER_SECOND)
                publisher.start()
                time.sleep(STOP_AFTER_S)
                # Mid-stream means the job is storing this phase's messages when it stops: a job still
                # starting up would make it the stop of an idle job (and the drain's report empty).
                before = i * PER_PHASE
                wait_for(lambda n=before: fhir_count(env, system) > n, 120, f"the job storing before: {what}", 0.2)
                progress(f"{what}: the job is storing")
                stop()
                progress(f"{what}: done")
                assert publisher.finish() == PER_PHASE, what
                if relaunch:
                    job_id = launch(airflow, jobs, job_name)
                    progress(f"{what}: relaunched")
                # The next stop comes when the job has caught up: each one meets a job in its steady state.
                done = (i + 1) * PER_PHASE
                wait_for(lambda n=done: fhir_count(env, system) >= n, 600, f"the job to catch up after: {what}", poll=1)
                progress(f"{what}: caught up")
                if i == 0:
                    # A drained job's successor reads again only what the drained job had not settled, and
                    # that was never archived (the read step held it back before the archive).
                    wait_for(lambda n=done: len(archived_offsets(env, topic)) >= n, 120, "the archive", poll=2)
                    lines = archive_lines(env, topic)
                    assert len(lines) == len(set(lines)) == done, "a drained job's successor re-read what it settled"

            total = len(rows)
            wait_for(lambda: settled_everything(env, job_name, topic), 300, "every offset committed", poll=3)
            progress("every offset committed")
            assert fhir_count(env, system) == total, "a message made two Patients"
            published = published_offsets(env, job_name, topic)
            assert len(published) == total
            missing = published - archived_offsets(env, topic)
            assert not missing, f"{len(missing)} message(s) not archived"
            assert ndjson_lines(env["GCS_ERROR_BUCKET"], f"errors/stage=write/topic={topic}/") == []
            assert reports["drain"]["left_behind"] == 0 and reports["drain"]["settled"] > 0, reports["drain"]
        finally:
            end_job(jobs, job_id)
