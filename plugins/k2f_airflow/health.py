"""Health of the running job, one function per check, thresholds from K2fConfig.

Each returns a one-line summary when healthy, raises Unhealthy with a short summary when not, and
NotApplicable when the runner cannot answer (data freshness on the local runner). Summaries carry
counts, names and states only, never message content.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from beam_pipeline.contracts.bucket_layout import ERRORS_PREFIX, partition_value
from k2f_airflow.config import K2fConfig, setting_name
from k2f_airflow.hooks.gcs import StorageHook
from k2f_airflow.hooks.jobs import DataflowJobsHook, jobs_hook
from k2f_airflow.kafka_client import KafkaClient, PartitionLag


class Unhealthy(Exception):
    """A check found a problem; the message is the alert's summary."""


class NotApplicable(Exception):
    """The check has nothing to measure here (e.g. no Dataflow metrics on the local runner)."""


def job_state(cfg: K2fConfig, since: datetime, jobs: Any = None) -> str:
    active = (jobs or jobs_hook(cfg)).active_jobs(cfg.job_name)
    running = [j for j in active if j.state == "RUNNING"]
    if not running:
        states = ", ".join(f"{j.job_id} {j.state}" for j in active) or "none"
        raise Unhealthy(f"job {cfg.job_name} is not running (unfinished jobs: {states}); launch it with k2f_launch")
    return f"job {cfg.job_name} RUNNING ({', '.join(j.job_id for j in running)})"


def total_lag(cfg: K2fConfig, kafka: KafkaClient | None = None) -> int:
    kafka = kafka or KafkaClient(cfg.kafka_secret_resource_name)
    return sum(p.lag for p in kafka.consumer_lag(cfg.kafka_consumer_group, cfg.topic_list))


def in_flight_summary(partitions: list[PartitionLag]) -> str:
    """Per partition: messages the job has read and not yet settled (committed offsets stop before them)."""
    parts = [
        f"{p.topic}/{p.partition} {p.in_flight} in flight (read {p.read_gap} past committed)"
        for p in partitions
        if p.in_flight is not None
    ]
    return "; ".join(parts) if parts else "no commit from the pipeline yet"


def consumer_lag(cfg: K2fConfig, since: datetime, kafka: KafkaClient | None = None) -> str:
    kafka = kafka or KafkaClient(cfg.kafka_secret_resource_name)
    partitions = kafka.consumer_lag(cfg.kafka_consumer_group, cfg.topic_list)
    lag = sum(p.lag for p in partitions)
    limit = cfg.health_max_consumer_lag
    summary = (
        f"consumer group {cfg.kafka_consumer_group} is {lag} message(s) behind on {cfg.topics}; "
        f"{in_flight_summary(partitions)}"
    )
    if lag > limit:
        raise Unhealthy(f"{summary} (more than {setting_name('health_max_consumer_lag')}={limit})")
    return summary


def data_freshness(cfg: K2fConfig, since: datetime, jobs: Any = None) -> str:
    jobs = jobs or jobs_hook(cfg)
    if not isinstance(jobs, DataflowJobsHook):
        raise NotApplicable("data freshness is a Dataflow metric; the local runner has none")
    running = [j for j in jobs.active_jobs(cfg.job_name) if j.state == "RUNNING"]
    if not running:
        raise NotApplicable(f"no running job {cfg.job_name} to measure")
    freshness = jobs.data_freshness_seconds(running[0].job_id)
    if freshness is None:
        raise NotApplicable(f"Cloud Monitoring has no data freshness for {running[0].job_id} yet")
    limit = cfg.health_max_data_freshness_seconds
    summary = f"data freshness of {running[0].job_id} is {freshness:.0f} s"
    if freshness > limit:
        raise Unhealthy(f"{summary} (more than {setting_name('health_max_data_freshness_seconds')}={limit} s)")
    return summary


def _operator_fixable(line: bytes) -> bool:
    """A write failure only an operator can end (credentials, IAM, the store's address, a token source, a
    store that keeps changing under our writes): retryable, so the replay sends it again once fixed, and any
    one of them alerts, whatever the count threshold."""
    from beam_pipeline.fhir_store import errors
    from beam_pipeline.fhir_store.retry import OPERATOR_FIXABLE_STATUSES

    try:
        record = json.loads(line)
    except ValueError:
        return False
    code = record.get("code") if isinstance(record, dict) else None
    if code in (errors.AUTH_ERROR, errors.CONFLICT):
        return True
    return code == errors.HTTP_ERROR and record.get("http_status") in OPERATOR_FIXABLE_STATUSES


def new_errors(cfg: K2fConfig, since: datetime, storage: StorageHook | None = None) -> str:
    """Error records in objects the pipeline wrote to the error bucket since `since`, by stage; unhealthy
    above the threshold, or at the first write failure an operator must fix (_operator_fixable)."""
    bucket = (storage or StorageHook(cfg.gcp_conn_id)).bucket(cfg.error_bucket)
    by_stage: dict[str, int] = {}
    fixable = 0
    # The job's own topics only: the bucket may serve other jobs (their records are theirs to alert on).
    topics = set(cfg.topic_list)
    for blob in bucket.list_blobs(prefix=f"{ERRORS_PREFIX}/"):
        if blob.time_created is None or blob.time_created < since:
            continue
        if topics and partition_value(blob.name, "topic") not in topics:
            continue
        stage = partition_value(blob.name, "stage")
        lines = [line for line in blob.download_as_bytes().splitlines() if line.strip()]
        by_stage[stage] = by_stage.get(stage, 0) + len(lines)
        fixable += sum(1 for line in lines if _operator_fixable(line))
    total = sum(by_stage.values())
    detail = ", ".join(f"{stage}: {n}" for stage, n in sorted(by_stage.items())) or "none"
    summary = f"{total} new error record(s) since {since:%Y-%m-%d %H:%M} UTC ({detail})"
    if fixable:
        raise Unhealthy(
            f"{summary}; {fixable} of them the FHIR store refused for credentials, permissions or its address, "
            "or could not get a token: fix that, then the replay DAG sends them again"
        )
    if total > cfg.health_max_new_errors:
        raise Unhealthy(f"{summary} (more than {setting_name('health_max_new_errors')}={cfg.health_max_new_errors})")
    return summary


def fhir_progress(
    cfg: K2fConfig,
    since: datetime,
    client_factory: Callable[[Any], Any] | None = None,
    kafka: KafkaClient | None = None,
) -> str:
    """Resources were written since `since`, or there was nothing waiting in Kafka to write."""
    from beam_pipeline.fhir_store import FhirStoreClient
    from k2f_airflow.launch_flags import fhir_store_config

    kind = cfg.health_resource_type
    with (client_factory or FhirStoreClient)(fhir_store_config(cfg)) as client:
        written = client.count(kind, {"_lastUpdated": f"gt{since.isoformat(timespec='seconds')}"})
    summary = f"{written} {kind} resource(s) written since {since:%Y-%m-%d %H:%M} UTC"
    if written == 0:
        lag = total_lag(cfg, kafka)
        if lag > 0:
            raise Unhealthy(f"{summary} while {lag} message(s) wait in Kafka: writes are stalled")
    return summary


CHECKS: dict[str, Callable[[K2fConfig, datetime], str]] = {
    "job_state": job_state,
    "consumer_lag": consumer_lag,
    "data_freshness": data_freshness,
    "new_errors": new_errors,
    "fhir_progress": fhir_progress,
}
