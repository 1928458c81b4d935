"""
### k2f_health: is the streaming job healthy?

Scheduled (every 5 minutes by default, `K2F_HEALTH_SCHEDULE`). Each check is a task: job state, Kafka
consumer-group lag, Dataflow data freshness (skipped on the local runner), error records written since
the last run, and FHIR writes progressing. A failing check fails its task with a short summary and
alerts through the `alert_webhook_url` / `alert_emails` settings. Thresholds: the `health_*` settings
(keys of the Airflow Variable `k2f`, docs/airflow.md).
"""

from __future__ import annotations

from airflow.sdk import DAG
from k2f_airflow.dag_defaults import HEALTH_SCHEDULE, dag_kwargs
from k2f_airflow.health import CHECKS
from k2f_airflow.notify import notify_failure
from k2f_airflow.operators.health import HealthCheckOperator

# retries=0: the next scheduled run is the retry; an alert per failure is what matters here.
with DAG(**dag_kwargs("k2f_health", __doc__, HEALTH_SCHEDULE, retries=0, on_failure_callback=notify_failure)):
    for check in CHECKS:
        HealthCheckOperator(task_id=check, check=check)
