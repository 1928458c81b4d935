"""Shared test setup: the local stack's settings come from dev/env.sh, the one place that defines them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def stack_env() -> dict[str, str]:
    """Every variable dev/env.sh exports, with the caller's overrides applied, as the scripts see them."""
    out = subprocess.run(
        ["bash", "-c", f"source {ROOT / 'dev' / 'env.sh'} && env -0"],
        check=True,
        capture_output=True,
        env={**os.environ, "K2F_ROOT": str(ROOT)},
    ).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


_ENV = stack_env()
for _key in ("FHIR_BASE_URL", "STORAGE_EMULATOR_HOST", "SECRET_MANAGER_ENDPOINT", "KAFKA_BOOTSTRAP"):
    os.environ.setdefault(_key, _ENV[_key])


@pytest.fixture(scope="session")
def env() -> dict[str, str]:
    return _ENV


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Anything not marked integration is a unit test, so `-m unit` selects it.
    for item in items:
        if "integration" not in item.keywords:
            item.add_marker(pytest.mark.unit)
