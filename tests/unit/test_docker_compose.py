"""docker-compose.yaml describes the same services on the same ports as the native stack (dev/env.sh)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

# compose service -> the dev/env.sh variables holding the ports it must publish
EXPECTED = {
    "kafka": ["KAFKA_PORT", "KAFKA_SASL_PORT"],
    "hapi": ["HAPI_PORT"],
    "gcs": ["GCS_PORT"],
    "secret-manager": ["SECRET_MANAGER_PORT"],
    "prism": ["PRISM_PORT", "PRISM_UI_PORT"],
    "python-worker-pool": ["PY_WORKER_POOL_PORT"],
    "java-worker-pool": ["JAVA_WORKER_POOL_PORT"],
    "expansion-service": ["EXPANSION_SERVICE_PORT"],
    "airflow": ["AIRFLOW_PORT"],
}
OFFICIAL_IMAGES = {
    "kafka": "apache/kafka:",
    "hapi": "hapiproject/hapi:",
    "gcs": "fsouza/fake-gcs-server:",
    "airflow": "apache/airflow:",
    "prism": "apache/beam_prism:",
}


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def _published(service: dict) -> set[int]:
    # "127.0.0.1:9092:9092" -> 9092 (the host side)
    return {int(str(p).split(":")[-2]) for p in service.get("ports", [])}


def test_every_native_service_is_in_compose():
    assert set(EXPECTED) <= set(_compose()["services"])


def _defaults() -> dict[str, str]:
    # The defaults written in dev/env.sh (`export X="${X:-default}"`), whatever this shell overrides.
    pattern = re.compile(r'^export (\w+)="\$\{\1:-([^}]*)\}"', re.MULTILINE)
    return dict(pattern.findall((ROOT / "dev" / "env.sh").read_text()))


def test_ports_match_the_native_defaults():
    services, defaults = _compose()["services"], _defaults()
    for name, port_vars in EXPECTED.items():
        wanted = {int(defaults[v]) for v in port_vars}
        assert wanted <= _published(services[name]), name


def test_official_images_and_versions_match_the_pins(env):
    services = _compose()["services"]
    for name, prefix in OFFICIAL_IMAGES.items():
        assert services[name]["image"].startswith(prefix), name
    assert services["kafka"]["image"].endswith(env["KAFKA_VERSION"])
    assert services["prism"]["image"].endswith(env["BEAM_VERSION"])
    lock = (ROOT / "requirements.lock").read_text()
    airflow_version = services["airflow"]["image"].split(":")[1].split("-")[0]
    assert f"apache-airflow=={airflow_version}\n" in lock


def test_buckets_are_created_with_the_native_names(env):
    command = " ".join(_compose()["services"]["gcs-buckets"]["command"])
    assert env["GCS_ARCHIVE_BUCKET"] in command and env["GCS_ERROR_BUCKET"] in command
