"""The pipeline's flags as the launch operator passes them, and the FHIR store config the checks use.

Flag names are the pipeline's own (beam_pipeline/job_flags.py, docs/contracts.md contract 1); the values come from
K2fConfig. beam_pipeline is imported inside the functions so that parsing a DAG never imports Beam.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from k2f_airflow.config import ConfigError, K2fConfig, setting_name

ENTRY_POINT = "dataflow_kafka_to_fhirstore.py"
REPROCESS_ENTRY_POINT = "reprocess.py"
_HCAPI = ("project_id", "location", "dataset", "post_fhir_store", "get_fhir_store", "version")


def store_flags(cfg: K2fConfig) -> dict[str, Any]:
    """--fhir_base_url for any R4 server, else the original sample's --hcapi_* flags."""
    if cfg.fhir_base_url:
        return {"fhir_base_url": cfg.fhir_base_url}
    cfg.require("hcapi_project_id", "hcapi_location", "hcapi_dataset", "hcapi_post_fhir_store")
    flags = {f"hcapi_{n}": getattr(cfg, f"hcapi_{n}") for n in _HCAPI}
    return {k: v for k, v in flags.items() if v}


def pipeline_options(cfg: K2fConfig) -> dict[str, Any]:
    """Flags every runner gets (the Beam operator's `pipeline_options`), k2f_pipeline_options last."""
    cfg.require("topics", "kafka_secret_resource_name", "archive_bucket", "error_bucket")
    kafka = {
        "topics": ",".join(cfg.topic_list),
        "kafka_secret_resource_name": cfg.kafka_secret_resource_name,
        "kafka_consumer_group": cfg.kafka_consumer_group,
    }
    if cfg.reference_retry_topic:
        kafka["reference_retry_topic"] = cfg.reference_retry_topic
    return job_options(cfg, {**kafka, "gcs_archive_bucket": cfg.archive_bucket, "streaming": True})


def job_options(cfg: K2fConfig, source: dict[str, Any]) -> dict[str, Any]:
    """What the streaming job and a reprocess share: the source's flags, the error bucket, the FHIR store,
    the mappings and their profile validation, Dataflow's temp location, then k2f_pipeline_options."""
    cfg.require("error_bucket")
    options: dict[str, Any] = {**source, "gcs_error_bucket": cfg.error_bucket, **store_flags(cfg)}
    if cfg.mappings:
        options["mappings"] = cfg.mappings
    if cfg.profile_validation:
        options["profile_validation"] = cfg.profile_validation
    if not cfg.is_local:
        cfg.require("temp_location")
        options["temp_location"] = cfg.temp_location
    options.update(cfg.extra_pipeline_options)
    return options


def local_runner(cfg: K2fConfig, *, streaming: bool = True, job_name: str | None = None) -> tuple[str, dict[str, Any]]:
    """(runner, options) that send the job to the local stack, from the pipeline's own local settings."""
    from launcher.local_stack_flags import LocalStack

    cfg.require("local_job_endpoint", "local_worker_pool_port")
    options = LocalStack(cfg.local_job_endpoint, cfg.local_worker_pool_port).runner_options(streaming=streaming)
    runner = str(options.pop("runner"))
    options["job_name"] = job_name or cfg.job_name
    if streaming:
        cfg.require("local_expansion_service")
        options["expansion_service"] = cfg.local_expansion_service
    return runner, options


def default_py_file(entry_point: str = ENTRY_POINT) -> str:
    """The entry point next to the importable beam_pipeline package (the dags/ folder on Composer)."""
    spec = importlib.util.find_spec("beam_pipeline")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"beam_pipeline is not importable: put it on the workers' PYTHONPATH (on Composer, upload it to the "
            f"dags/ folder) or set {setting_name('py_file')}"
        )
    return str(Path(next(iter(spec.submodule_search_locations))) / entry_point)


def fhir_flags(cfg: K2fConfig) -> dict[str, Any]:
    """The flags FhirStoreConfig.from_flags reads: the store plus any fhir_* / write flags of the extras."""
    extras = {k: v for k, v in cfg.extra_pipeline_options.items() if k.startswith(("fhir_", "write_mode"))}
    return {**extras, **store_flags(cfg)}


def fhir_store_config(cfg: K2fConfig) -> Any:
    """The pipeline's FhirStoreConfig for this deployment, its auth secret read as the entry point and the
    workers read it (FhirStoreConfig.resolve_secret)."""
    from beam_pipeline.fhir_store import FhirStoreConfig
    from beam_pipeline.secret_manager import access_secret

    return FhirStoreConfig.from_flags(fhir_flags(cfg)).resolve_secret(access_secret)
