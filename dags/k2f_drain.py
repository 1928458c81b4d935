"""
### k2f_drain: stop the streaming job without losing messages

Trigger manually. On Dataflow the job is drained (DataflowStopJobOperator with drain_pipeline): it stops
reading, finishes what it holds and ends as DRAINED. On the local runner it is cancelled through the
job service (Beam's job API has no drain); uncommitted messages are read again at the next launch.
`wait_until_stopped` then waits until no job of the name is left running.
"""

from __future__ import annotations

from airflow.sdk import DAG
from k2f_airflow.dag_defaults import dag_kwargs
from k2f_airflow.operators.drain import DrainPipelineOperator
from k2f_airflow.sensors.job_state import JobStoppedSensor

with DAG(**dag_kwargs("k2f_drain", __doc__, schedule=None, retries=1)):
    drain = DrainPipelineOperator(task_id="drain_pipeline")
    stopped = JobStoppedSensor(task_id="wait_until_stopped", poke_interval=15)
    drain >> stopped
