"""
### k2f_error_replay: send retryable error records back to Kafka

Scheduled (every 30 minutes by default, `K2F_REPLAY_SCHEDULE`). Every error object the pipeline wrote
under `errors/` in the error bucket since the last replay is handled once: retryable records below
`k2f_replay_max_attempts` are re-published to their topic (or `k2f_replay_retry_topic`) with headers
carrying the attempt number and original coordinates, and the object moves to `replayed/`; the rest go
to `quarantine/`. A rerun replays nothing twice. Counts are in the task's `summary` XCom.
"""

from __future__ import annotations

from airflow.sdk import DAG
from k2f_airflow.dag_defaults import REPLAY_SCHEDULE, dag_kwargs
from k2f_airflow.notify import notify_failure
from k2f_airflow.operators.replay import ReplayErrorsOperator

with DAG(**dag_kwargs("k2f_error_replay", __doc__, REPLAY_SCHEDULE, retries=1, on_failure_callback=notify_failure)):
    ReplayErrorsOperator(task_id="replay_errors")
