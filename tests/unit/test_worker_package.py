"""What setup.py ships to Dataflow workers: every module of beam_pipeline, and nothing of the launcher,
the local stack or the tests. A package setuptools cannot see is installed empty on the workers, and the
job then fails there with an ImportError that no local run shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from beam_pipeline.shipped import SHIPPED_PACKAGES

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _shipped_packages() -> set[str]:
    # setup.py's own find_packages call, run as setup() would (from the repository root).
    code = (
        "import setuptools, runpy\n"
        "seen = {}\n"
        "setuptools.setup = lambda **kw: seen.update(kw)\n"
        "runpy.run_path('setup.py')\n"
        "print('\\n'.join(seen['packages']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_every_directory_of_the_worker_package_is_shipped():
    expected = {
        ".".join(path.relative_to(ROOT).parts)
        for path in (ROOT / "beam_pipeline").rglob("*")
        if path.is_dir() and path.name != "__pycache__" and any(path.glob("*.py"))
    } | {"beam_pipeline"}
    # The mapping files and the US Core package travel as package data (beam_pipeline/shipped.py).
    assert _shipped_packages() == expected | set(SHIPPED_PACKAGES)


def test_the_shipped_files_are_installed_where_the_pipeline_looks(tmp_path):
    # setup.py builds the package as the worker installs it; then, apart from the checkout, the package is
    # asked for its files.
    build = tmp_path / "lib"
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build", "--build-base", str(tmp_path / "build"), "--build-lib", str(build)],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    code = (
        "from beam_pipeline.shipped import shipped_path\n"
        "print(shipped_path('mappings', 'synthea', 'patient.yaml'))\n"
        "print(shipped_path('include/fhir', 'hl7.fhir.us.core-6.1.0.tgz'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=build, capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(build)})  # fmt: skip
    mapping, package = (Path(line) for line in done.stdout.splitlines())
    assert build in mapping.parents and build in package.parents
    assert mapping.read_text() == (ROOT / "mappings" / "synthea" / "patient.yaml").read_text()
    assert package.read_bytes() == (ROOT / "include" / "fhir" / "hl7.fhir.us.core-6.1.0.tgz").read_bytes()


def test_launcher_and_local_stack_code_is_not_shipped():
    assert not {p for p in _shipped_packages() if not p.startswith("beam_pipeline")}
