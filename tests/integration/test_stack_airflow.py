"""Airflow 3 standalone runs from this checkout: healthy components, login, REST API, no import errors."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(env):
    base = f"http://127.0.0.1:{env['AIRFLOW_PORT']}"
    token = (
        httpx.post(f"{base}/auth/token", json={"username": "admin", "password": "admin"}, timeout=30)
        .raise_for_status()
        .json()["access_token"]
    )
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        yield client


def test_every_component_is_healthy(env):
    health = httpx.get(f"http://127.0.0.1:{env['AIRFLOW_PORT']}/api/v2/monitor/health", timeout=30).json()
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", component


def test_login_is_required_and_works(env, api):
    anonymous = httpx.get(f"http://127.0.0.1:{env['AIRFLOW_PORT']}/api/v2/dags", timeout=30)
    assert anonymous.status_code in (401, 403)
    assert api.get("/api/v2/dags").status_code == 200


def test_reads_this_checkouts_dags_without_import_errors(api):
    config = api.get("/api/v2/version").json()
    assert config["version"].startswith("3.")
    errors = api.get("/api/v2/importErrors").json()
    assert errors["total_entries"] == 0, [e["filename"] for e in errors["import_errors"]]
