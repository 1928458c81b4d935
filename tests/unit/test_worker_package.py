"""What setup.py ships to Dataflow workers: every module of beam_pipeline, and nothing of the launcher,
the local stack or the tests. A package setuptools cannot see is installed empty on the workers, and the
job then fails there with an ImportError that no local run shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
    assert _shipped_packages() == expected


def test_launcher_and_local_stack_code_is_not_shipped():
    assert not {p for p in _shipped_packages() if not p.startswith("beam_pipeline")}
