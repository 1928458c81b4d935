"""Shared test setup: the local stack's settings come from dev/env.sh, the one place that defines them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dev.stack_env import stack_env

ROOT = Path(__file__).resolve().parents[1]


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
