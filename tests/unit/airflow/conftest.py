"""Airflow unit tests: a throwaway AIRFLOW_HOME (never the local stack's), plugins/ importable as on Airflow."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="k2f-airflow-unit-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
for path in (ROOT / "plugins", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import json  # noqa: E402

from k2f_airflow.config import VARIABLE, K2fConfig  # noqa: E402

LOCAL = {
    "runner": "local",
    "job_name": "k2f-unit",
    "topics": "patients,patients-b",
    "kafka_secret_resource_name": "projects/p/secrets/kafka/versions/latest",
    "archive_bucket": "archive",
    "error_bucket": "errors",
    "fhir_base_url": "http://fhir.test/fhir",
    "local_job_endpoint": "127.0.0.1:8073",
    "local_worker_pool_port": "50000",
    "local_expansion_service": "127.0.0.1:8097",
}
DATAFLOW = {
    **LOCAL,
    "runner": "dataflow",
    "fhir_base_url": "",
    "hcapi_project_id": "hc-project",
    "hcapi_location": "us-central1",
    "hcapi_dataset": "ds",
    "hcapi_post_fhir_store": "post",
    "hcapi_get_fhir_store": "get",
    "gcp_project": "df-project",
    "region": "europe-west1",
    "temp_location": "gs://tmp-bucket/tmp",
    "pipeline_options": '{"max_num_workers": 3}',
}


@pytest.fixture
def local_cfg() -> K2fConfig:
    return K2fConfig(**LOCAL)


@pytest.fixture
def dataflow_cfg() -> K2fConfig:
    return K2fConfig(**DATAFLOW)


@pytest.fixture
def variables(monkeypatch):
    """Set the k2f Variable the way the secrets backend chain sees it (AIRFLOW_VAR_K2F)."""

    def set_all(values: dict[str, object]) -> None:
        monkeypatch.setenv(f"AIRFLOW_VAR_{VARIABLE.upper()}", json.dumps(values))

    return set_all


class FakeTI:
    def __init__(self) -> None:
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value

    def xcom_pull(self, task_ids: str | None = None, key: str = "return_value") -> object:
        return self.xcom.get(key)


def rendered(op, context):  # noqa: ANN001, ANN201
    """The operator as Airflow runs it: its templated fields rendered with the run's context first."""
    op.render_template_fields(context)
    return op


def variable_context(context: dict) -> dict:
    """`context` with the `var` accessors a task's templates read the Variables through."""
    from airflow.sdk.execution_time.context import VariableAccessor

    return {**context, "var": {"value": VariableAccessor(deserialize_json=False), "json": VariableAccessor(True)}}


@pytest.fixture
def context():
    return {"ti": FakeTI(), "params": {}}
