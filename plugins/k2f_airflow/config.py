"""The DAGs' settings: one JSON Airflow Variable, `k2f`, read once per task instance.

`k2f` holds a JSON object whose keys are the fields of `K2fConfig`; absent keys take their defaults and
an unknown key or a value of the wrong type fails the task with a message naming the key. One Variable
means one lookup per task: on Cloud Composer with the Secret Manager secrets backend it is the one secret
`airflow-variables-k2f`, where per-field Variables cost a secret lookup each. Locally, `airflow variables
set k2f '{...}'` or an environment variable `AIRFLOW_VAR_K2F` work the same way. It is read when a task
runs, never when a DAG file is parsed, so parsing needs no database and no network.

A value of "" means "not set": required settings then fail the task with a message naming the key.
Deployments that still have the old per-field `k2f_<field>` Variables: docs/airflow.md, "Migrating".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from beam_pipeline.contracts.job_settings import (
    DEFAULT_CONSUMER_GROUP,
    DEFAULT_JOB_NAME,
    DEFAULT_PROFILE_VALIDATION,
    PROFILE_VALIDATION_MODES,
    comma_list,
)

VARIABLE = "k2f"
RUNNERS = ("dataflow", "local")
# Read only by the failure callback (notify.py), never by a task: a webhook URL often embeds its token, so
# these are left out of the settings a task renders (the UI's Rendered Template view shows those).
CALLBACK_SETTINGS = frozenset({"alert_webhook_url", "alert_emails"})


class ConfigError(ValueError):
    """A Variable is missing or malformed; the message names the Variable to set."""


def _setting(default: str | int, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class K2fConfig:
    # Which runner: "dataflow" (Google Cloud Dataflow) or "local" (the local stack's Prism job service).
    runner: str = _setting("dataflow", "dataflow or local")
    job_name: str = _setting(DEFAULT_JOB_NAME, "streaming job name; one job per name (and consumer group)")
    topics: str = _setting("", "comma-separated Kafka topics (required)")
    kafka_secret_resource_name: str = _setting(
        "", "Secret Manager version of the Kafka connection JSON, projects/P/secrets/S/versions/V (required)"
    )
    kafka_consumer_group: str = _setting(DEFAULT_CONSUMER_GROUP, "Kafka consumer group of the job")
    archive_bucket: str = _setting("", "bucket receiving every raw message (required)")
    error_bucket: str = _setting("", "bucket receiving the error records (required)")
    fhir_base_url: str = _setting("", "any FHIR R4 server; when empty the hcapi_* store is used")
    hcapi_project_id: str = _setting("", "Healthcare API project")
    hcapi_location: str = _setting("", "Healthcare API location")
    hcapi_dataset: str = _setting("", "Healthcare API dataset")
    hcapi_post_fhir_store: str = _setting("", "Healthcare API FHIR store written to")
    hcapi_get_fhir_store: str = _setting("", "Healthcare API FHIR store searched (default: the post store)")
    hcapi_version: str = _setting("v1", "Healthcare API version")
    mappings: str = _setting(
        "", "folder or gs:// prefix of the mapping set (default: the mappings/ shipped beside the pipeline)"
    )
    profile_validation: str = _setting(
        "",
        f"{', '.join(PROFILE_VALIDATION_MODES)}: what a mapped resource breaking a US Core profile it claims "
        f"does (--profile_validation; default: the pipeline's, {DEFAULT_PROFILE_VALIDATION})",
    )
    pipeline_options: str = _setting(
        "{}", 'JSON object of further pipeline flags, e.g. {"max_num_workers": 4, "subnetwork": "..."}'
    )
    gcp_conn_id: str = _setting("google_cloud_default", "Airflow Connection for Google Cloud (Dataflow, GCS)")
    gcp_project: str = _setting("", "Dataflow project (default: the connection's project)")
    region: str = _setting("us-central1", "Dataflow region")
    temp_location: str = _setting("", "gs:// path for Dataflow temp and staging files (required on Dataflow)")
    py_file: str = _setting("", "pipeline entry point (default: beam_pipeline/dataflow_kafka_to_fhirstore.py)")
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
    reference_retry_topic: str = _setting(
        "", "topic the job retries rows through whose reference target has not arrived (--reference_retry_topic)"
    )
    replay_retry_topic: str = _setting("", "topic replays go to (default: the record's original topic)")
    replay_max_objects: int = _setting(200, "error objects one replay run handles at most")
    alert_webhook_url: str = _setting("", "URL a failed health task POSTs its summary to (JSON)")
    alert_emails: str = _setting("", "comma-separated addresses a failed health task emails")

    # -- derived ------------------------------------------------------------------------------------

    def require(self, *names: str) -> None:
        """Fail with the Variables to set when any of `names` is empty."""
        missing = [n for n in names if getattr(self, n) in ("", None)]
        if missing:
            raise ConfigError(f"set {', '.join(missing)} in the Airflow Variable {VARIABLE} (docs/airflow.md)")

    @property
    def is_local(self) -> bool:
        return self.runner == "local"

    @property
    def topic_list(self) -> list[str]:
        return comma_list(self.topics)

    @property
    def extra_pipeline_options(self) -> dict[str, Any]:
        try:
            value = json.loads(self.pipeline_options or "{}")
        except json.JSONDecodeError:
            raise ConfigError(f"{setting_name('pipeline_options')} is not JSON") from None
        if not isinstance(value, dict):
            raise ConfigError(f"{setting_name('pipeline_options')} must be a JSON object")
        return value

    def with_overrides(self, overrides: Mapping[str, Any]) -> K2fConfig:
        """This config with non-empty overrides applied (e.g. the launch DAG's params)."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return _validated(replace(self, **{k: v for k, v in overrides.items() if v not in (None, "")}))


def setting_name(setting: str) -> str:
    """How messages name a setting: its key inside the `k2f` Variable."""
    return f"{VARIABLE}.{setting}"


def settings_table() -> list[tuple[str, str, str]]:
    """(key, default, meaning) for every setting: what docs/airflow.md lists."""
    return [(f.name, str(f.default), f.metadata["doc"]) for f in fields(K2fConfig)]


def task_settings(config: K2fConfig) -> dict[str, Any]:
    """The settings a task works with, as a plain mapping `config_from_mapping` reads back: every setting
    but the callback's (CALLBACK_SETTINGS)."""
    return {f.name: getattr(config, f.name) for f in fields(config) if f.name not in CALLBACK_SETTINGS}


Getter = Callable[[str], str | None]


def variable_text(name: str = VARIABLE) -> str | None:
    # Imported here: the task SDK needs no database at import, but DAG parsing should not even import it.
    from airflow.sdk import Variable

    return Variable.get(name, default=None)


def load_config(getter: Getter | None = None) -> K2fConfig:
    """The settings from the `k2f` Variable (or `getter`, for tests): one lookup, validated."""
    return parse_config((getter or variable_text)(VARIABLE))


def parse_config(raw: Any) -> K2fConfig:
    """The settings from the Variable's value: its JSON text (as `{{ var.value.k2f }}` renders it), or a
    mapping; None or "" when the Variable is not set. ConfigError naming the problem, never a value."""
    if raw is None or (isinstance(raw, str | bytes) and not raw.strip()):
        raise ConfigError(
            f"the Airflow Variable {VARIABLE} is not set: set it to a JSON object of settings "
            "(docs/airflow.md lists them; the old k2f_<setting> Variables are no longer read, see 'Migrating')"
        )
    try:
        values = json.loads(raw) if isinstance(raw, str | bytes) else raw
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"the Airflow Variable {VARIABLE} is not JSON (line {exc.lineno}, column {exc.colno})"
        ) from None
    return config_from_mapping(values)


def config_from_mapping(values: Any) -> K2fConfig:
    """K2fConfig from a mapping of setting -> value; ConfigError naming the first bad key."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"the Airflow Variable {VARIABLE} must be a JSON object of settings")
    known = {f.name: f for f in fields(K2fConfig)}
    unknown = sorted(k for k in values if k not in known)
    if unknown:
        raise ConfigError(f"unknown setting(s) in the Airflow Variable {VARIABLE}: {', '.join(map(str, unknown))}")
    coerced = {name: _coerce(name, value, type(known[name].default)) for name, value in values.items()}
    return _validated(K2fConfig(**coerced))


def _coerce(name: str, raw: Any, kind: type) -> Any:
    if kind is int:
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise ConfigError(f"{setting_name(name)} must be an integer")
        try:
            return int(str(raw).strip())
        except ValueError:
            raise ConfigError(f"{setting_name(name)} must be an integer") from None
    if name == "pipeline_options" and isinstance(raw, dict):
        return json.dumps(raw, sort_keys=True)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)  # a port or a count written as a JSON number
    if not isinstance(raw, str):
        raise ConfigError(f"{setting_name(name)} must be a string")
    return raw.strip()


def _validated(config: K2fConfig) -> K2fConfig:
    if config.runner not in RUNNERS:
        raise ConfigError(f"{setting_name('runner')} must be one of {', '.join(RUNNERS)}")
    if config.profile_validation and config.profile_validation not in PROFILE_VALIDATION_MODES:
        raise ConfigError(f"{setting_name('profile_validation')} must be one of {', '.join(PROFILE_VALIDATION_MODES)}")
    return config
