#!/usr/bin/env bash
# Re-pin requirements.lock: resolve the requirement files afresh in a scratch environment and freeze it.
source "$(dirname "$0")/lib.sh"
cd "$K2F_ROOT"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
"${K2F_PYTHON:-python3.11}" -m venv "$scratch/venv"
"$scratch/venv/bin/pip" install -q --disable-pip-version-check -r requirements-dev.txt -r requirements-airflow.txt
{
  echo "# Every package of the project environment at an exact version: a pip constraints file (-c)."
  echo "# Regenerate with: make lock"
  "$scratch/venv/bin/pip" freeze --exclude-editable
} > requirements.lock
log "requirements.lock: $(grep -vc '^#' requirements.lock) packages"
