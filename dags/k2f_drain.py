"""
### k2f_drain: stop the streaming job without losing messages

Trigger manually. On Dataflow, `plan_drain` finds the unfinished jobs of the configured name and the
Google provider's `DataflowStopJobOperator` drains each (drain_pipeline): it stops reading, finishes what
it holds and ends as DRAINED. On the local runner (Beam's job API has no drain) `request_local_drain`
asks the job to stop taking messages, `wait_until_settled` waits until what it took has settled
(committed offsets equal offsets read), and `cancel_local_jobs` cancels it. `wait_until_stopped` then
waits on the triggerer until no job of the name is left running, and `report_drain` says how many
messages the job settled and whether any was left to the next launch (which reads it again).
"""

from __future__ import annotations

from airflow.providers.google.cloud.operators.dataflow import DataflowStopJobOperator
from airflow.sdk import DAG
from k2f_airflow.dag_defaults import dag_kwargs
from k2f_airflow.operators.drain import (
    CancelLocalJobsOperator,
    PlanDrainOperator,
    ReportDrainOperator,
    RequestLocalDrainOperator,
)
from k2f_airflow.sensors.job_state import JobStoppedSensor
from k2f_airflow.sensors.offsets import OffsetsSettledSensor

with DAG(**dag_kwargs("k2f_drain", __doc__, schedule=None, retries=1)):
    plan = PlanDrainOperator(task_id="plan_drain")
    drain = DataflowStopJobOperator.partial(task_id="drain_dataflow_job", drain_pipeline=True).expand_kwargs(
        plan.output
    )
    request = RequestLocalDrainOperator(task_id="request_local_drain")
    settled = OffsetsSettledSensor(task_id="wait_until_settled", requested_at_ms=request.output)
    # Cancelled even when the wait failed: a stop was asked for, and what the job held is not committed.
    cancel = CancelLocalJobsOperator(task_id="cancel_local_jobs", trigger_rule="all_done")
    stopped = JobStoppedSensor(task_id="wait_until_stopped", poke_interval=15, trigger_rule="none_failed")
    report = ReportDrainOperator(task_id="report_drain", trigger_rule="none_failed")
    request >> settled >> cancel
    [drain, cancel] >> stopped >> report
