"""The local Airflow through its REST API (the one the UI uses): Variables, DAGs, DAG runs, XComs.

Used by `make demo` (dev/demo.py) and the Airflow end-to-end test, so both drive Airflow the way a user
does, through the API server, never through its database.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx

FINISHED = {"success", "failed"}


def local_variables(env: Mapping[str, str], topics: list[str], job_name: str) -> dict[str, str]:
    """The k2f_* Variables that point the DAGs at the local stack (docs/airflow.md, "Locally")."""
    return {
        "k2f_runner": "local",
        "k2f_job_name": job_name,
        "k2f_kafka_consumer_group": job_name,
        "k2f_topics": ",".join(topics),
        "k2f_kafka_secret_resource_name": env["KAFKA_SECRET_RESOURCE"],
        "k2f_archive_bucket": env["GCS_ARCHIVE_BUCKET"],
        "k2f_error_bucket": env["GCS_ERROR_BUCKET"],
        "k2f_fhir_base_url": env["FHIR_BASE_URL"],
        "k2f_local_job_endpoint": env["PRISM_ENDPOINT"],
        "k2f_local_worker_pool_port": env["PY_WORKER_POOL_PORT"],
        "k2f_local_expansion_service": f"127.0.0.1:{env['EXPANSION_SERVICE_PORT']}",
    }


class AirflowApi:
    def __init__(self, base_url: str, username: str = "admin", password: str = "admin") -> None:
        token = httpx.post(
            f"{base_url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        token.raise_for_status()
        self._http = httpx.Client(
            base_url=f"{base_url}/api/v2",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=30,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AirflowApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_variables(self, values: Mapping[str, str]) -> None:
        for key, value in values.items():
            response = self._http.patch(f"/variables/{key}", json={"key": key, "value": value})
            if response.status_code == 404:
                response = self._http.post("/variables", json={"key": key, "value": value})
            response.raise_for_status()

    def dag_ids(self) -> list[str]:
        response = self._http.get("/dags", params={"limit": 100})
        response.raise_for_status()
        return sorted(d["dag_id"] for d in response.json()["dags"])

    def is_paused(self, dag_id: str) -> bool:
        response = self._http.get(f"/dags/{dag_id}")
        response.raise_for_status()
        return response.json()["is_paused"]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._http.patch(f"/dags/{dag_id}", json={"is_paused": paused}).raise_for_status()

    def runs(self, dag_id: str, run_type: str | None = None) -> list[dict[str, Any]]:
        """The DAG's runs, newest first (at most 100: enough to tell a new run from the ones before it)."""
        params: dict[str, Any] = {"limit": 100, "order_by": "-run_after"}
        if run_type:
            params["run_type"] = run_type
        response = self._http.get(f"/dags/{dag_id}/dagRuns", params=params)
        response.raise_for_status()
        return response.json()["dag_runs"]

    def delete_run(self, dag_id: str, run_id: str) -> None:
        response = self._http.delete(f"/dags/{dag_id}/dagRuns/{run_id}")
        if response.status_code != 404:  # already gone is what the caller wanted
            response.raise_for_status()

    def import_errors(self) -> list[dict[str, Any]]:
        response = self._http.get("/importErrors")
        response.raise_for_status()
        return response.json()["import_errors"]

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        self._http.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
        response = self._http.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": dict(conf or {})})
        response.raise_for_status()
        return response.json()["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        response = self._http.get(f"/dags/{dag_id}/dagRuns/{run_id}")
        response.raise_for_status()
        return response.json()["state"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float, poll: float = 2.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = self.run_state(dag_id, run_id)
            if state in FINISHED or time.monotonic() > deadline:
                return state
            time.sleep(poll)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        response = self._http.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        response.raise_for_status()
        return {t["task_id"]: t["state"] for t in response.json()["task_instances"]}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:  # noqa: ANN401
        response = self._http.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}")
        response.raise_for_status()
        return response.json()["value"]
