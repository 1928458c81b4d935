"""The local Airflow through its REST API (the one the UI uses): Variables, DAGs, DAG runs, XComs.

Used by `make demo` (dev/demo.py) and the Airflow tests, so both drive Airflow the way a user
does, through the API server, never through its database.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

# plugins/ is on Airflow's path, not a package of this repository: put it on ours to share its names.
_PLUGINS = str(Path(__file__).resolve().parents[1] / "plugins")
if _PLUGINS not in sys.path:
    sys.path.append(_PLUGINS)

from k2f_airflow.config import VARIABLE  # noqa: E402

FINISHED = {"success", "failed"}


def local_config(env: Mapping[str, str], topics: list[str], job_name: str) -> dict[str, str]:
    """The whole `k2f` Variable that points the DAGs at the local stack (docs/airflow.md, "Locally")."""
    return {
        "runner": "local",
        "job_name": job_name,
        "kafka_consumer_group": job_name,
        "topics": ",".join(topics),
        "kafka_secret_resource_name": env["KAFKA_SECRET_RESOURCE"],
        "archive_bucket": env["GCS_ARCHIVE_BUCKET"],
        "error_bucket": env["GCS_ERROR_BUCKET"],
        "fhir_base_url": env["FHIR_BASE_URL"],
        "local_job_endpoint": env["PRISM_ENDPOINT"],
        "local_worker_pool_port": env["PY_WORKER_POOL_PORT"],
        "local_expansion_service": f"127.0.0.1:{env['EXPANSION_SERVICE_PORT']}",
    }


class AirflowApi:
    def __init__(self, base_url: str, username: str = "admin", password: str = "admin") -> None:
        token = httpx.post(f"{base_url}/auth/token", json={"username": username, "password": password}, timeout=30)
        token.raise_for_status()
        self._http = httpx.Client(
            base_url=f"{base_url}/api/v2",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=30,
        )
        # DAGs this client unpaused to trigger them: paused again on close, so a scheduled one (health every
        # 5 minutes, the error replay every 30) does not keep running under the tests that follow.
        self._unpaused: list[str] = []

    def close(self) -> None:
        try:
            for dag_id in self._unpaused:
                self.set_paused(dag_id, True)
        finally:
            self._http.close()

    def __enter__(self) -> AirflowApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_variable(self, key: str) -> str | None:
        response = self._http.get(f"/variables/{key}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()["value"]

    def set_variable(self, key: str, value: str) -> None:
        response = self._http.patch(f"/variables/{key}", json={"key": key, "value": value})
        if response.status_code == 404:
            response = self._http.post("/variables", json={"key": key, "value": value})
        response.raise_for_status()

    def delete_variable(self, key: str) -> None:
        response = self._http.delete(f"/variables/{key}")
        if response.status_code != 404:
            response.raise_for_status()

    def set_config(self, config: Mapping[str, Any]) -> None:
        """Replace the whole `k2f` Variable: nothing of an earlier run's settings survives."""
        self.set_variable(VARIABLE, json.dumps(dict(config), sort_keys=True))

    @contextmanager
    def config(self, config: Mapping[str, Any]) -> Iterator[None]:
        """The `k2f` Variable set to `config` inside the block, and put back as it was afterwards."""
        before = self.get_variable(VARIABLE)
        self.set_config(config)
        try:
            yield
        finally:
            if before is None:
                self.delete_variable(VARIABLE)
            else:
                self.set_variable(VARIABLE, before)

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The task try's log as text (the API returns structured events; their text joined)."""
        response = self._http.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": True},
        )
        response.raise_for_status()
        content = response.json().get("content", "")
        if isinstance(content, str):
            return content
        lines = []
        for entry in content:
            if not isinstance(entry, dict):
                lines.append(str(entry))
                continue
            lines.append(str(entry.get("event", "")))
            # A failure's exception travels beside the event, as the UI shows it.
            lines += [f"{e.get('exc_type')}: {e.get('exc_value')}" for e in entry.get("error_detail") or []]
        return "\n".join(lines)

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
        if self.is_paused(dag_id):  # a paused DAG's runs stay queued
            self.set_paused(dag_id, False)
            self._unpaused.append(dag_id)
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

    def rendered_fields(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """The task's rendered template fields, as the UI's Rendered Template view shows them."""
        response = self._http.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
        response.raise_for_status()
        return response.json()["rendered_fields"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:  # noqa: ANN401
        response = self._http.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}")
        response.raise_for_status()
        return response.json()["value"]
