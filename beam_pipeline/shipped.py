"""Files the pipeline carries beside its code (the mapping files, the US Core package): where they are.

In a checkout, and in Cloud Composer's dags/ folder (deploy/composer_plan.py keeps the layout), they sit at
the repository root beside beam_pipeline/. On a Dataflow worker setup.py installs them as package data of
beam_pipeline (SHIPPED_PACKAGES); the two places are tried in that order.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Installed package name -> the repository folder it is built from (setup.py's package_dir).
SHIPPED_PACKAGES = {"beam_pipeline.shipped_mappings": "mappings", "beam_pipeline.shipped_fhir": "include/fhir"}


def shipped_path(folder: str, *names: str) -> Path:
    """`folder` (a SHIPPED_PACKAGES value) joined with `names`, where this installation has it."""
    local = ROOT.joinpath(folder, *names)
    if local.exists():
        return local
    package = next(name for name, source in SHIPPED_PACKAGES.items() if source == folder)
    return Path(__file__).resolve().parent.joinpath(package.split(".", 1)[1], *names)
