"""The DAGs end to end on the local stack, driven through Airflow's REST API as the UI drives them.

launch -> the job runs on Prism -> samples land in HAPI -> health is green -> the FHIR store rejects
for a while (a fault-injecting proxy in front of HAPI) so writes become retryable error records -> it
accepts again -> the replay DAG re-publishes them and they land. The drain DAG, under load:
test_delivery_under_load.py.
"""

from __future__ import annotations

import json
import uuid

import pytest

from dev.airflow_api import AirflowApi, local_config
from dev.fault_proxy import FaultProxy
from dev.local_stack import (
    ROOT,
    create_topics,
    fhir_count,
    kafka_plain,
    kafka_sasl,
    ndjson_lines,
    publish,
    wait_for,
)
from dev.synthetic import synthetic_rows
from launcher.job_service import JobServiceClient

pytestmark = pytest.mark.integration


def _samples() -> list[bytes]:
    # The Patient samples (0*): the clinical ones (1*) reference a Patient and are the demo's, not this test's.
    return [p.read_bytes().strip() for p in sorted((ROOT / "include" / "sample_messages").glob("0*.json"))]


def test_launch_health_and_replay_through_the_airflow_api(env):
    run = uuid.uuid4().hex[:8]
    topic, job_name, system = f"af-{run}", f"af-{run}", f"urn:k2f-af:{run}"
    create_topics(kafka_plain(env), [topic])
    job_id = None
    with (
        AirflowApi(f"http://127.0.0.1:{env['AIRFLOW_PORT']}") as airflow,
        JobServiceClient(env["PRISM_ENDPOINT"]) as jobs,
        FaultProxy(env["FHIR_BASE_URL"].rsplit("/fhir", 1)[0]) as proxy,
    ):
        config = local_config(env, [topic], job_name)
        config |= {
            "fhir_base_url": f"{proxy.url}/fhir",
            "pipeline_options": {"source_id_system": system, "archive_window_seconds": 5},
            # The error bucket is shared with other tests: this run's thresholds ignore their records.
            "health_max_new_errors": 1000000,
            "replay_max_objects": 100000,
            # Read only by the failure callback: never among a task's rendered fields.
            "alert_webhook_url": f"http://127.0.0.1:9/hook-{run}-token",
        }
        # The k2f Variable goes back to what it was afterwards (make demo sets its own whole).
        with airflow.config(config):
            try:
                assert {"k2f_launch", "k2f_health", "k2f_error_replay", "k2f_drain"} <= set(airflow.dag_ids())

                # Launch: prerequisites, the Beam operator, the deferred wait until running.
                run_id = airflow.trigger("k2f_launch")
                state = airflow.wait_for_run("k2f_launch", run_id, 900)
                assert state == "success", airflow.task_states("k2f_launch", run_id)
                job_id = airflow.xcom("k2f_launch", run_id, "wait_until_running")["job_id"]
                assert jobs.state(job_id) == "RUNNING"
                # What the UI's Rendered Template view shows: the settings the task ran with and the Beam
                # operator's arguments, and no alert setting.
                shown = airflow.rendered_fields("k2f_launch", run_id, "start_pipeline")
                assert shown["config"]["job_name"] == job_name and shown["pipeline_options"]["topics"] == topic
                assert "alert_webhook_url" not in shown["config"] and f"hook-{run}-token" not in json.dumps(shown)

                publish(kafka_sasl(env), topic, _samples())
                wait_for(lambda: fhir_count(env, system) == 6, 300, "the six sample Patients", poll=2)

                run_id = airflow.trigger("k2f_health")
                state = airflow.wait_for_run("k2f_health", run_id, 300)
                assert state == "success", airflow.task_states("k2f_health", run_id)

                # The store rejects (503) until told otherwise: five new messages become retryable errors.
                proxy.inject(503, count=100_000)
                rejected = synthetic_rows(5, seed=21, id_prefix=f"af-{run}-")
                publish(kafka_plain(env), topic, rejected)

                def write_errors() -> list[dict]:
                    return ndjson_lines(env["GCS_ERROR_BUCKET"], f"errors/stage=write/topic={topic}/")

                wait_for(lambda: len(write_errors()) >= 5, 300, "five write error records", poll=3)
                assert all(r["retryable"] and r["http_status"] == 503 for r in write_errors())
                proxy.clear()  # the store accepts again

                run_id = airflow.trigger("k2f_error_replay")
                assert airflow.wait_for_run("k2f_error_replay", run_id, 300) == "success"
                wait_for(lambda: fhir_count(env, system) == 11, 300, "the replayed Patients", poll=2)
                assert write_errors() == []  # moved to replayed/
                replayed = ndjson_lines(env["GCS_ERROR_BUCKET"], f"replayed/stage=write/topic={topic}/")
                assert len(replayed) == 5
                # The drain DAG is driven under load in test_delivery_under_load.py.
            finally:
                if job_id and jobs.state(job_id) == "RUNNING":
                    jobs.cancel(job_id)


@pytest.mark.parametrize("conf", [{"py_interpreter": "/bin/sh"}, {"fhir_base_url": "http://attacker.example/fhir"}])
def test_a_trigger_with_an_undeclared_key_launches_nothing_and_says_why(env, conf):
    key = next(iter(conf))
    job_name = f"af-refused-{uuid.uuid4().hex[:8]}"
    with (
        AirflowApi(f"http://127.0.0.1:{env['AIRFLOW_PORT']}") as airflow,
        JobServiceClient(env["PRISM_ENDPOINT"]) as jobs,
    ):
        with airflow.config(local_config(env, ["unused"], job_name)):
            run_id = airflow.trigger("k2f_launch", conf)
            assert airflow.wait_for_run("k2f_launch", run_id, 300) == "failed"
            states = airflow.task_states("k2f_launch", run_id)
            assert states["start_pipeline"] in ("upstream_failed", None), states
            assert states["wait_until_running"] in ("upstream_failed", None), states
            log = airflow.task_log("k2f_launch", run_id, "prerequisites.buckets")
        assert f"conf sets {key}, which this DAG does not accept" in log
        assert conf[key] not in log
        assert jobs.active_jobs(job_name) == []
