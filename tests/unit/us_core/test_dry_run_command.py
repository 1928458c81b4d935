"""The dry-run CLI answers to both its commands: beam_pipeline.dry_run and its first name, beam_pipeline.transform."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "include/sample_messages/01_original_readme_sample.json"


def _run(module: str, *flags: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", module, "--input", str(SAMPLE), *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, check=True)


def test_the_old_command_is_an_alias_of_the_new():
    new, old = _run("beam_pipeline.dry_run"), _run("beam_pipeline.transform")
    assert new.stdout == old.stdout and '"status":"ok"' in new.stdout


def test_structural_validation_takes_either_spelling():
    for flags in (["--structural_validation"], ["--no_structural_validation"]):
        assert '"status":"ok"' in _run("beam_pipeline.dry_run", *flags).stdout
