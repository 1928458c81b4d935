"""`make composer-plan`: the printed plan deploys every DAG, every plugin module and the pipeline package,
and sets a validated k2f Variable, without calling gcloud."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _printed_plan(tmp_path, *extra: str) -> list[list[str]]:
    # A PATH whose gcloud fails loudly: a dry run must not call it.
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "gcloud").write_text(f"#!/bin/sh\ntouch {tmp_path}/gcloud-was-called\nexit 3\n")
    (fake / "gcloud").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    out = subprocess.run(
        ["make", "-s", "composer-plan", "ENV=k2f-prod", "LOCATION=europe-west1", *extra],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert not (tmp_path / "gcloud-was-called").exists()
    return [shlex.split(line) for line in out.splitlines() if line and not line.startswith("#")]


def _repo(pattern: str) -> set[str]:
    return {str(p.relative_to(ROOT)) for p in ROOT.glob(pattern) if "__pycache__" not in p.parts}


def _deployed(commands: list[list[str]]) -> dict[str, set[str]]:
    """Bucket folder -> the repository files that end up in it (staged, then imported)."""
    imported = {
        (c[4], c[c.index("--source") + 1])
        for c in commands
        if c[:4] == ["gcloud", "composer", "environments", "storage"]
    }
    out: dict[str, set[str]] = {"dags": set(), "plugins": set()}
    for c in commands:
        if c[0] != "install":
            continue
        source, target = c[-2], c[-1]
        for folder, src in imported:
            if target == src or target.startswith(src + "/"):
                out[folder].add(str(Path(source).relative_to(ROOT)))
    return out


def test_the_plan_deploys_every_dag_plugin_module_and_the_pipeline_package(tmp_path):
    commands = _printed_plan(tmp_path)
    deployed = _deployed(commands)
    assert _repo("dags/*.py") and _repo("dags/*.py") <= deployed["dags"]
    assert _repo("beam_pipeline/**/*.py") <= deployed["dags"]  # dags/ is on the workers' sys.path
    assert _repo("launcher/*.py") and _repo("launcher/*.py") <= deployed["dags"]
    assert {"setup.py", "requirements.txt"} <= deployed["dags"]
    # The mapping set and the US Core package go beside the pipeline package, as in the repository.
    assert _repo("mappings/**/*.yaml") and _repo("mappings/**/*.yaml") <= deployed["dags"]
    assert _repo("mappings/terminology/*.json") <= deployed["dags"]
    assert "include/fhir/hl7.fhir.us.core-6.1.0.tgz" in deployed["dags"]
    assert _repo("plugins/k2f_airflow/**/*.py") and _repo("plugins/k2f_airflow/**/*.py") <= deployed["plugins"]
    assert not any("tests/" in f or f.startswith("dev/") for files in deployed.values() for f in files)
    # The plugin package keeps its name in plugins/, the pipeline package in dags/.
    targets = {c[-1] for c in commands if c[0] == "install"}
    assert any(t.endswith("/plugins/k2f_airflow/config.py") for t in targets)
    assert any(t.endswith("/dags/beam_pipeline/job_flags.py") for t in targets)


def test_the_plan_pins_the_packages_as_the_repository_does(tmp_path):
    [update] = [c for c in _printed_plan(tmp_path) if any(a.startswith("--update-pypi-package=") for a in c)]
    assert update[4:7] == ["k2f-prod", "--location", "europe-west1"]
    packages = {a.removeprefix("--update-pypi-package=") for a in update[7:]}
    required = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line and line[0] != "#"]
    assert set(required) <= packages
    assert any(p.startswith("confluent-kafka==") for p in packages)


def test_the_variable_is_validated_before_anything_runs(tmp_path):
    good = tmp_path / "k2f.json"
    good.write_text(json.dumps({"runner": "dataflow", "topics": "member-details"}))
    [run] = [c for c in _printed_plan(tmp_path, f"CONFIG={good}") if c[3:4] == ["run"]]
    assert run[-4:] == ["set", "--", "k2f", json.dumps({"runner": "dataflow", "topics": "member-details"})]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"k2f_topics": "an old per-field key"}))
    with pytest.raises(subprocess.CalledProcessError) as failed:
        _printed_plan(tmp_path, f"CONFIG={bad}")
    assert "unknown setting(s) in the Airflow Variable k2f: k2f_topics" in failed.value.stderr


def test_the_plan_ships_the_kafka_config_provider_and_tells_the_launcher_where_it_is(tmp_path):
    commands = _printed_plan(tmp_path)
    [build] = [c for c in commands if "mvn" in c]
    assert build[build.index("-f") + 1].endswith("/provider/pom.xml") and build[-1] == "package"
    [data] = [c for c in commands if c[:6] == ["gcloud", "composer", "environments", "storage", "data", "import"]]
    assert data[-1].endswith("/kafka-config-provider.jar")
    [env] = [c for c in commands if any(a.startswith("--update-env-variables=") for a in c)]
    assert (
        env[-1]
        == "--update-env-variables=K2F_KAFKA_CONFIG_PROVIDER_JAR=/home/airflow/gcs/data/kafka-config-provider.jar"
    )
    # Built before it is uploaded, uploaded before the launcher is told about it.
    assert commands.index(build) < commands.index(data) < commands.index(env)
