"""
### k2f_launch: start the kafka-to-fhir streaming job

Trigger manually. Every prerequisite is checked first, one task each, and a failing one says what to
fix: the archive and error buckets, the Kafka secret, Kafka and its topics, the FHIR store (R4), and
that no job of the same name is already running. Then the Beam operator submits the job (Dataflow, or
the local runner when `k2f_runner` is `local`) and `wait_until_running` waits until it runs; its XCom
holds the job id.

Settings: the `k2f_*` Airflow Variables (docs/airflow.md). The params override two of them for one run.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param, TaskGroup
from k2f_airflow.dag_defaults import dag_kwargs
from k2f_airflow.operators.launch import LaunchPipelineOperator
from k2f_airflow.operators.prerequisites import PrerequisiteCheckOperator
from k2f_airflow.prerequisites import CHECKS
from k2f_airflow.sensors.job_state import JobRunningSensor

with DAG(
    **dag_kwargs("k2f_launch", __doc__, schedule=None, retries=0),
    params={
        "job_name": Param(None, type=["null", "string"], description="overrides k2f_job_name for this run"),
        "topics": Param(None, type=["null", "string"], description="overrides k2f_topics for this run"),
    },
):
    with TaskGroup("prerequisites") as prerequisites:
        for check in CHECKS:
            PrerequisiteCheckOperator(task_id=check, check=check)

    start = LaunchPipelineOperator(task_id="start_pipeline")
    running = JobRunningSensor(
        task_id="wait_until_running",
        job_id="{{ ti.xcom_pull(task_ids='start_pipeline')['job_id'] }}",
        poke_interval=10,
    )
    prerequisites >> start >> running
