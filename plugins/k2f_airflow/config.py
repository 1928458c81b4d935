"""The one place that names the Airflow Variables the DAGs read, with their defaults.

Every Variable is `k2f_<field>` for a field of `K2fConfig`. They are read when a task runs (never when a
DAG file is parsed, so parsing needs no database and no network). On Cloud Composer with the Secret
Manager secrets backend a Variable `k2f_topics` is the secret `airflow-variables-k2f_topics`; locally,
`airflow variables set` or an environment variable `AIRFLOW_VAR_K2F_TOPICS` work the same way.

A value of "" means "not set": required settings then fail the task with a message naming the Variable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

PREFIX = "k2f_"
RUNNERS = ("dataflow", "local")


class ConfigError(ValueError):
    """A Variable is missing or malformed; the message names the Variable to set."""


def _setting(default: str | int, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class K2fConfig:
    # Which runner: "dataflow" (Google Cloud Dataflow) or "local" (the local stack's Prism job service).
    runner: str = _setting("dataflow", "dataflow or local")
    job_name: str = _setting("kafka-to-fhir", "streaming job name; one job per name (and consumer group)")
    topics: str = _setting("", "comma-separated Kafka topics (required)")
    kafka_secret_resource_name: str = _setting(
        "", "Secret Manager version of the Kafka connection JSON, projects/P/secrets/S/versions/V (required)"
    )
    kafka_consumer_group: str = _setting("kafka-to-fhir", "Kafka consumer group of the job")
    archive_bucket: str = _setting("", "bucket receiving every raw message (required)")
    error_bucket: str = _setting("", "bucket receiving the error records (required)")
    fhir_base_url: str = _setting("", "any FHIR R4 server; when empty the k2f_hcapi_* store is used")
    hcapi_project_id: str = _setting("", "Healthcare API project")
    hcapi_location: str = _setting("", "Healthcare API location")
    hcapi_dataset: str = _setting("", "Healthcare API dataset")
    hcapi_post_fhir_store: str = _setting("", "Healthcare API FHIR store written to")
    hcapi_get_fhir_store: str = _setting("", "Healthcare API FHIR store searched (default: the post store)")
    hcapi_version: str = _setting("v1", "Healthcare API version")
    pipeline_options: str = _setting(
        "{}", 'JSON object of further pipeline flags, e.g. {"max_num_workers": 4, "subnetwork": "..."}'
    )
    gcp_conn_id: str = _setting("google_cloud_default", "Airflow Connection for Google Cloud (Dataflow, GCS)")
    gcp_project: str = _setting("", "Dataflow project (default: the connection's project)")
    region: str = _setting("us-central1", "Dataflow region")
    temp_location: str = _setting("", "gs:// path for Dataflow temp and staging files (required on Dataflow)")
    py_file: str = _setting("", "pipeline entry point (default: beam_pipeline/dataflow_kafka_to_fhirstore.py)")
    py_interpreter: str = _setting("", "python that launches the pipeline (default: the worker's own)")
    local_job_endpoint: str = _setting("", "local runner: host:port of the Prism job service")
    local_worker_pool_port: str = _setting("", "local runner: port of the Python SDK worker pool")
    local_expansion_service: str = _setting("", "local runner: host:port of the KafkaIO expansion service")
    launch_timeout_seconds: int = _setting(900, "how long launch waits for the job to run")
    drain_timeout_seconds: int = _setting(1800, "how long drain waits for the job to stop")
    health_max_consumer_lag: int = _setting(10000, "health fails above this many unconsumed messages")
    health_max_new_errors: int = _setting(100, "health fails above this many new error records")
    health_max_data_freshness_seconds: int = _setting(600, "health fails above this Dataflow data freshness")
    health_lookback_minutes: int = _setting(10, "window of a manually triggered health run")
    health_resource_type: str = _setting("Patient", "FHIR resource type whose writes show progress")
    replay_max_attempts: int = _setting(5, "error records at this attempt count go to quarantine/")
    replay_retry_topic: str = _setting("", "topic replays go to (default: the record's original topic)")
    replay_max_objects: int = _setting(200, "error objects one replay run handles at most")
    alert_webhook_url: str = _setting("", "URL a failed health task POSTs its summary to (JSON)")
    alert_emails: str = _setting("", "comma-separated addresses a failed health task emails")

    # -- derived ------------------------------------------------------------------------------------

    def require(self, *names: str) -> None:
        """Fail with the Variables to set when any of `names` is empty."""
        missing = [variable_name(n) for n in names if getattr(self, n) in ("", None)]
        if missing:
            raise ConfigError(f"set the Airflow Variable(s) {', '.join(missing)}")

    @property
    def is_local(self) -> bool:
        return self.runner == "local"

    @property
    def topic_list(self) -> list[str]:
        return [t.strip() for t in self.topics.split(",") if t.strip()]

    @property
    def extra_pipeline_options(self) -> dict[str, Any]:
        try:
            value = json.loads(self.pipeline_options or "{}")
        except json.JSONDecodeError:
            raise ConfigError(f"{variable_name('pipeline_options')} is not JSON") from None
        if not isinstance(value, dict):
            raise ConfigError(f"{variable_name('pipeline_options')} must be a JSON object")
        return value

    def with_overrides(self, overrides: Mapping[str, Any]) -> K2fConfig:
        """This config with non-empty overrides applied (e.g. the launch DAG's params)."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return _validated(replace(self, **{k: v for k, v in overrides.items() if v not in (None, "")}))


def variable_name(setting: str) -> str:
    return PREFIX + setting


def settings_table() -> list[tuple[str, str, str]]:
    """(Variable, default, meaning) for every setting: what docs/airflow.md lists."""
    return [(variable_name(f.name), str(f.default), f.metadata["doc"]) for f in fields(K2fConfig)]


Getter = Callable[[str], str | None]


def _airflow_variable(name: str) -> str | None:
    # Imported here: the task SDK needs no database at import, but DAG parsing should not even import it.
    from airflow.sdk import Variable

    return Variable.get(name, default=None)


def load_config(getter: Getter | None = None) -> K2fConfig:
    """The settings from Airflow Variables (or `getter`, for tests), defaults where a Variable is unset."""
    get = getter or _airflow_variable
    values: dict[str, Any] = {}
    for f in fields(K2fConfig):
        raw = get(variable_name(f.name))
        if raw is None:
            continue
        values[f.name] = _coerce(f.name, raw, type(f.default))
    return _validated(K2fConfig(**values))


def _coerce(name: str, raw: Any, kind: type) -> Any:
    if kind is int:
        try:
            return int(str(raw).strip())
        except ValueError:
            raise ConfigError(f"{variable_name(name)} must be an integer") from None
    return str(raw).strip()


def _validated(config: K2fConfig) -> K2fConfig:
    if config.runner not in RUNNERS:
        raise ConfigError(f"{variable_name('runner')} must be one of {', '.join(RUNNERS)}")
    return config
