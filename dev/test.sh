#!/usr/bin/env bash
# `make test`: install what is missing, start the stack services that are not already running, lint, run
# the unit and integration tests, and stop only what this run started (a developer's running stack stays).
# Integration tests check US Core validation in HAPI, so a stack started here has it on (set before
# dev/env.sh, which defaults it to off for `make up`).
export HAPI_VALIDATE_US_CORE="${HAPI_VALIDATE_US_CORE:-true}"
source "$(dirname "$0")/lib.sh"
cd "$K2F_ROOT"
t0=$SECONDS
services=(kafka secret_manager gcs hapi expansion_service java_worker_pool python_worker_pool prism airflow)
started=()
for s in "${services[@]}"; do
  bash "dev/services/$s.sh" health >/dev/null 2>&1 || started+=("$s")
done
cleanup() {
  if ((${#started[@]})); then bash dev/stack.sh down "${started[@]}"; fi
}
trap cleanup EXIT

python="$(k2f_python)"
bash dev/stack.sh up "${services[@]}"
log "stack ready after $((SECONDS - t0))s"

make -s lint
ensure_browser || true  # if it cannot install, the browser test fails naming the fix
"$python" -m pytest "$@"
log "make test finished in $((SECONDS - t0))s"
