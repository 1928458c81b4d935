"""What must hold before the streaming job starts, one function per check.

Each returns a one-line summary when the check passes and raises PrerequisiteFailed, whose message
names the fix, when it does not. Messages carry resource names and counts only: no secret value, no
message content.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k2f_airflow.config import K2fConfig, setting_name
from k2f_airflow.hooks.gcs import BucketProblem, StorageHook
from k2f_airflow.hooks.jobs import jobs_hook
from k2f_airflow.kafka_client import KafkaClient, KafkaProblem
from k2f_airflow.launch_flags import fhir_store_config


class PrerequisiteFailed(Exception):
    """A prerequisite does not hold; the message says what to fix."""


def buckets(cfg: K2fConfig, storage: StorageHook | None = None) -> str:
    cfg.require("archive_bucket", "error_bucket")
    storage = storage or StorageHook(cfg.gcp_conn_id)
    try:
        storage.check_writable(cfg.archive_bucket, "archive")
        storage.check_writable(cfg.error_bucket, "error")
    except BucketProblem as exc:
        raise PrerequisiteFailed(str(exc)) from None
    return f"buckets gs://{cfg.archive_bucket} and gs://{cfg.error_bucket} exist and are writable"


def kafka_secret(cfg: K2fConfig, access: Callable[[str], bytes] | None = None) -> str:
    """The secret exists, Airflow may read it, and it parses as the Kafka connection JSON."""
    from google.api_core import exceptions

    from beam_pipeline.contracts.kafka_secret import KafkaSecretError, parse_kafka_secret
    from beam_pipeline.secret_manager import access_secret

    cfg.require("kafka_secret_resource_name")
    name = cfg.kafka_secret_resource_name
    try:
        payload = (access or access_secret)(name)
    except exceptions.NotFound:
        raise PrerequisiteFailed(
            f"secret {name} does not exist: create it with the Kafka connection JSON "
            f"(gcloud secrets create / versions add) or fix {setting_name('kafka_secret_resource_name')}"
        ) from None
    except exceptions.PermissionDenied:
        raise PrerequisiteFailed(
            f"Airflow may not read secret {name}: grant its service account roles/secretmanager.secretAccessor"
        ) from None
    try:
        connection = parse_kafka_secret(payload)
    except KafkaSecretError as exc:
        raise PrerequisiteFailed(f"secret {name} is unusable: {exc}") from None
    return f"secret {name} parses ({connection.security_protocol}, {len(connection.bootstrap_servers.split(','))} "
    "bootstrap server(s))"


def kafka_topics(cfg: K2fConfig, kafka: KafkaClient | None = None) -> str:
    cfg.require("topics", "kafka_secret_resource_name")
    kafka = kafka or KafkaClient(cfg.kafka_secret_resource_name)
    topics = [*cfg.topic_list, *([cfg.reference_retry_topic] if cfg.reference_retry_topic else [])]
    try:
        missing = kafka.missing_topics(topics)
    except KafkaProblem as exc:
        raise PrerequisiteFailed(str(exc)) from None
    if missing:
        raise PrerequisiteFailed(
            f"Kafka has no topic(s) {', '.join(missing)}: create them, or fix {setting_name('topics')} "
            f"or {setting_name('reference_retry_topic')}"
        )
    return f"Kafka reachable; topics {', '.join(topics)} exist"


def fhir_store(cfg: K2fConfig, client_factory: Callable[[Any], Any] | None = None) -> str:
    """The store answers and is R4: the Healthcare API store configuration, else /metadata."""
    from beam_pipeline.fhir_store import FhirStoreClient
    from beam_pipeline.fhir_store.retry import RetryPolicy

    config = fhir_store_config(cfg)
    with (client_factory or FhirStoreClient)(config) as client:
        # A prerequisite answers in seconds: one quick retry, not the writer's long budget.
        report = client.check(RetryPolicy(max_attempts=2, total_timeout=15.0))
    if not report.ok:
        fix = (
            f"create the store with version R4 or fix {setting_name('hcapi_*')}, and grant Airflow's service "
            "account roles/healthcare.fhirResourceEditor"
            if config.healthcare_api is not None
            else f"start the server or fix {setting_name('fhir_base_url')}"
        )
        raise PrerequisiteFailed(f"FHIR store not usable: {'; '.join(report.problems)}: {fix}")
    return f"FHIR store is R4 ({report.fhir_version}, {report.software or 'unknown software'})"


def no_running_job(cfg: K2fConfig, jobs: Any = None) -> str:
    """Never two streaming jobs on one consumer group: no unfinished job of this name may exist."""
    jobs = jobs or jobs_hook(cfg)
    active = jobs.active_jobs(cfg.job_name)
    if active:
        listed = ", ".join(f"{j.job_id} ({j.state})" for j in active)
        raise PrerequisiteFailed(
            f"job {cfg.job_name} is already running: {listed}: drain it with the k2f_drain DAG first, "
            f"or launch under another {setting_name('job_name')} and consumer group"
        )
    return f"no job named {cfg.job_name} is running"


def mappings(cfg: K2fConfig) -> str:
    """Every mapping the job will use compiles against US Core and maps its samples: a broken mapping stops
    the launch here, naming the file, the line and the fix, instead of failing every message of a job."""
    from beam_pipeline.mapping.check import load_checked, summary
    from beam_pipeline.mapping.feed import MappingError

    try:
        sources, mapping_set = load_checked(cfg.mappings or None)
    except MappingError as exc:
        raise PrerequisiteFailed(f"the mapping set does not load: {exc}") from None
    except OSError as exc:
        raise PrerequisiteFailed(
            f"the mapping set at {cfg.mappings} cannot be read ({type(exc).__name__}): set "
            f"{setting_name('mappings')} to a folder or gs:// prefix the workers can read"
        ) from None
    return summary(sources, mapping_set)


CHECKS: dict[str, Callable[[K2fConfig], str]] = {
    "mappings": mappings,
    "buckets": buckets,
    "kafka_secret": kafka_secret,
    "kafka_topics": kafka_topics,
    "fhir_store": fhir_store,
    "no_running_job": no_running_job,
}
