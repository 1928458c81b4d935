"""
### k2f_launch: start the kafka-to-fhir streaming job

Trigger manually. Every prerequisite is checked first, one task each, and a failing one says what to
fix: the archive and error buckets, the Kafka secret, Kafka and its topics, the FHIR store (R4), and
that no job of the same name is already running. `start_pipeline` is the Beam provider's
`BeamRunPythonPipelineOperator` with its arguments rendered from the settings (Dataflow, or the local runner
when the setting `runner` is `local`); `wait_until_running` waits on the triggerer until the job runs; its
XCom holds the job id.

Settings: the Airflow Variable `k2f` (docs/airflow.md), rendered into each task's `config` field (the task's
Rendered Template view). The params below override two of them for one run; a run whose conf holds any
other key is refused before any task acts.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param, TaskGroup
from k2f_airflow.dag_defaults import dag_kwargs
from k2f_airflow.operators.launch import StartPipelineOperator
from k2f_airflow.operators.prerequisites import PrerequisiteCheckOperator
from k2f_airflow.prerequisites import CHECKS
from k2f_airflow.sensors.job_state import JobRunningSensor

with DAG(
    **dag_kwargs("k2f_launch", __doc__, schedule=None, retries=0),
    params={
        "job_name": Param(None, type=["null", "string"], description="overrides the job_name setting for this run"),
        "topics": Param(None, type=["null", "string"], description="overrides the topics setting for this run"),
    },
):
    with TaskGroup("prerequisites") as prerequisites:
        for check in CHECKS:
            PrerequisiteCheckOperator(task_id=check, check=check)

    start = StartPipelineOperator(task_id="start_pipeline")
    running = JobRunningSensor(
        task_id="wait_until_running",
        job_id="{{ ti.xcom_pull(task_ids='start_pipeline', key='dataflow_job_id') or '' }}",
        known_job_ids=start.known_job_ids,
        poke_interval=10,
    )
    prerequisites >> start >> running
