"""
### k2f_drain: stop the streaming job without losing messages

Trigger manually. On Dataflow, `plan_drain` finds the unfinished jobs of the configured name and the
Google provider's `DataflowStopJobOperator` drains each (drain_pipeline): it stops reading, finishes what
it holds and ends as DRAINED. On the local runner `cancel_local_jobs` cancels them through the job
service (Beam's job API has no drain); uncommitted messages are read again at the next launch. `wait_until_stopped`
then waits on the triggerer until no job of the name is left running.
"""

from __future__ import annotations

from airflow.providers.google.cloud.operators.dataflow import DataflowStopJobOperator
from airflow.sdk import DAG
from k2f_airflow.dag_defaults import dag_kwargs
from k2f_airflow.operators.drain import CancelLocalJobsOperator, PlanDrainOperator
from k2f_airflow.sensors.job_state import JobStoppedSensor

with DAG(**dag_kwargs("k2f_drain", __doc__, schedule=None, retries=1)):
    plan = PlanDrainOperator(task_id="plan_drain")
    drain = DataflowStopJobOperator.partial(task_id="drain_dataflow_job", drain_pipeline=True).expand_kwargs(
        plan.output
    )
    cancel = CancelLocalJobsOperator(task_id="cancel_local_jobs")
    stopped = JobStoppedSensor(task_id="wait_until_stopped", poke_interval=15, trigger_rule="none_failed")
    [drain, cancel] >> stopped
