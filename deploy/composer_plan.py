"""The Cloud Composer deployment as commands: print them (a dry run), or run them with --execute.

    python3 deploy/composer_plan.py --environment ENV --location LOCATION [--config k2f.json] [--execute]

What it deploys (docs/airflow.md, "Cloud Composer runbook"):
1. a clean staging copy of the tracked files Composer needs (no caches, no local state): the DAG files,
   the plugins package, the pipeline package with setup.py and requirements.txt, the mapping set
   (mappings/) and the US Core package it is checked against (include/fhir/), and the launcher package;
2. `gcloud composer environments storage dags|plugins import` of that copy into the environment's bucket
   (the pipeline and launcher go into dags/, which is on the workers' sys.path);
3. the PyPI packages the plugins and the launcher need, pinned as in this repository;
4. the Kafka ConfigProvider jar (java/kafka-config-provider, built with Maven) in the bucket's data/ folder
   and the environment variable that tells the launcher where it is, so the Dataflow workers resolve the
   Kafka login from Secret Manager and the job graph holds only the secret's name (docs/security.md);
5. the `k2f` Airflow Variable from the JSON file given by --config, validated first.
Nothing here reads credentials: gcloud uses its own login.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from beam_pipeline.kafka.expansion import PROVIDER_JAR_ENV  # noqa: E402

# The pipeline package and what its launcher needs beside it to ship the package to Dataflow workers, and
# the launcher package the Airflow hooks read job states from.
PIPELINE = ("beam_pipeline", "setup.py", "requirements.txt")
# What the pipeline carries beside its code (beam_pipeline/shipped.py): the mapping set and the US Core
# package, in dags/ as in the repository, so the launch reads and checks the same files.
SHIPPED = ("mappings/", "include/fhir/")
LAUNCHER = "launcher/"
# Packages Composer needs beyond its image: the pipeline's (requirements.txt) and the replay's Kafka client.
EXTRA_PACKAGES = ("confluent-kafka",)
PROVIDER = ROOT / "java" / "kafka-config-provider"
PROVIDER_JAR = "kafka-config-provider.jar"
# Where Composer mounts the bucket's data/ folder on its workers.
COMPOSER_DATA = "/home/airflow/gcs/data"


@dataclass(frozen=True)
class Plan:
    staging: str
    files: dict[str, list[str]]  # "dags" / "plugins" -> repository paths staged for that folder
    packages: list[str]
    commands: list[list[str]]


def tracked_files(root: Path = ROOT) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, check=True, capture_output=True).stdout
    return sorted(name for name in out.decode().split("\0") if name)


def staged_files(tracked: list[str]) -> dict[str, list[str]]:
    """Which tracked files go to the bucket's dags/ and plugins/ folders."""
    dags = [f for f in tracked if f.startswith("dags/") and f.endswith(".py")]
    packages = ("beam_pipeline/", LAUNCHER)
    pipeline = [f for f in tracked if f in PIPELINE or (f.startswith(packages) and not f.endswith(".md"))]
    pipeline += [f for f in tracked if f.startswith(SHIPPED)]
    plugins = [f for f in tracked if f.startswith("plugins/") and f.endswith(".py")]
    return {"dags": dags + pipeline, "plugins": plugins}


def pinned_packages(root: Path = ROOT) -> list[str]:
    """requirements.txt's pins plus the extras, each at the version requirements.lock pins."""
    lock = {}
    for line in (root / "requirements.lock").read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            lock[name.lower()] = version
    packages = []
    for line in (root / "requirements.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "-")):
            packages.append(line)
    packages += [f"{name}=={lock[name]}" for name in EXTRA_PACKAGES]
    return packages


def kafka_version(root: Path = ROOT) -> str:
    """The Kafka client version the provider is built against: the local stack's (dev/env.sh)."""
    for line in (root / "dev" / "env.sh").read_text().splitlines():
        if "KAFKA_VERSION=" in line and ":-" in line:
            return line.split(":-", 1)[1].split("}", 1)[0]
    raise ValueError("KAFKA_VERSION not found in dev/env.sh")


def validate_config(path: Path) -> dict:
    """The k2f Variable's JSON, checked with the plugins' own rules (ConfigError names the bad key)."""
    sys.path.insert(0, str(ROOT / "plugins"))
    from k2f_airflow.config import config_from_mapping

    values = json.loads(path.read_text())
    config_from_mapping(values)
    return values


def _inside(path: str) -> str:
    """A repository path as it lies inside the bucket's dags/ or plugins/ folder."""
    return path.split("/", 1)[1] if path.startswith(("dags/", "plugins/")) else path


# Inside the checkout's git-ignored state folder, not a shared /tmp path another user could plant.
STAGING = ROOT / ".stack" / "composer-stage"


def plan(environment: str, location: str, config: Path | None, staging: str = str(STAGING)) -> Plan:
    files = staged_files(tracked_files())
    packages = pinned_packages()
    env = ["--environment", environment, "--location", location]
    commands: list[list[str]] = [["rm", "-rf", staging], ["mkdir", "-p", f"{staging}/dags", f"{staging}/plugins"]]
    for folder, paths in files.items():
        # Files keep their repository paths minus the top folder: dags/x.py -> dags/x.py,
        # beam_pipeline/a.py -> dags/beam_pipeline/a.py, plugins/k2f_airflow/b.py -> plugins/k2f_airflow/b.py.
        for path in paths:
            commands.append(["install", "-D", "-m", "0644", str(ROOT / path), f"{staging}/{folder}/{_inside(path)}"])
    for folder, paths in files.items():
        for entry in sorted({_inside(p).split("/")[0] for p in paths}):
            source = f"{staging}/{folder}/{entry}"
            commands.append(
                ["gcloud", "composer", "environments", "storage", folder, "import", *env, "--source", source]
            )
    # Built from a copy, so the checkout gets no target/ folder.
    jar = f"{staging}/provider/target/{PROVIDER_JAR}"
    commands.append(["cp", "-r", str(PROVIDER), f"{staging}/provider"])
    commands.append(["env", f"KAFKA_VERSION={kafka_version()}", "mvn", "-q", "-B", "-f", f"{staging}/provider/pom.xml",
                     "package"])  # fmt: skip
    commands.append(["gcloud", "composer", "environments", "storage", "data", "import", *env, "--source", jar])
    commands.append(["gcloud", "composer", "environments", "update", environment, "--location", location,
                     f"--update-env-variables={PROVIDER_JAR_ENV}={COMPOSER_DATA}/{PROVIDER_JAR}"])  # fmt: skip
    pypi = [f"--update-pypi-package={p}" for p in packages]
    commands.append(["gcloud", "composer", "environments", "update", environment, "--location", location, *pypi])
    if config is not None:
        value = json.dumps(validate_config(config), sort_keys=True)
        commands.append(["gcloud", "composer", "environments", "run", environment, "--location", location,
                         "variables", "set", "--", "k2f", value])  # fmt: skip
    return Plan(staging, files, packages, commands)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make composer-plan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--environment", required=True, help="the Cloud Composer environment's name (ENV=)")
    parser.add_argument("--location", required=True, help="its region, e.g. us-central1 (LOCATION=)")
    parser.add_argument("--config", type=Path, help="JSON file with the k2f Variable (CONFIG=); omitted: not set")
    parser.add_argument("--execute", action="store_true", help="run the commands (EXECUTE=1) instead of printing")
    args = parser.parse_args(argv)
    if not args.environment.strip() or not args.location.strip():
        print("error: name the environment and its location: make composer-plan ENV=... LOCATION=...", file=sys.stderr)
        return 2
    try:
        result = plan(args.environment, args.location, args.config)
    except (OSError, ValueError) as exc:  # ConfigError is a ValueError; it names the key, never a value
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.execute:
        print("# dry run: these commands deploy kafka-to-fhir to Cloud Composer (run with EXECUTE=1)")
        for command in result.commands:
            print(shlex.join(command))
        return 0
    for i, command in enumerate(result.commands, 1):
        print(f"[{i}/{len(result.commands)}] {shlex.join(command[:8])}{' ...' if len(command) > 8 else ''}")
        if subprocess.run(command, check=False).returncode != 0:
            print(f"error: step {i} failed; fix it and run again (every step is safe to repeat)", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
