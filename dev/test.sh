#!/usr/bin/env bash
# `make test`: install what is missing, start the stack services that are not already running, lint, run
# the unit and integration tests, and stop only what this run started (a developer's running stack stays).
# Integration tests check US Core validation in HAPI, so a stack started here has it on (set before
# dev/env.sh, which defaults it to off for `make up`).
# With no arguments, lint and the unit tests run while the stack starts (they need no service, and the
# services spend most of their start waiting on the JVM), then the integration tests; arguments go to one
# pytest run after the stack is up, as before.
export HAPI_VALIDATE_US_CORE="${HAPI_VALIDATE_US_CORE:-true}"
source "$(dirname "$0")/lib.sh"
cd "$K2F_ROOT"
t0=$SECONDS
services=(kafka secret_manager gcs hapi expansion_service java_worker_pool python_worker_pool prism airflow)
started=()
for s in "${services[@]}"; do
  bash "dev/services/$s.sh" health >/dev/null 2>&1 || started+=("$s")
done
offline_log="$(mktemp)"
offline_pid=""
cleanup() {
  if [[ -n "$offline_pid" ]]; then pkill -P "$offline_pid" 2>/dev/null || true; kill "$offline_pid" 2>/dev/null || true; fi
  rm -f "$offline_log"
  if ((${#started[@]})); then bash dev/stack.sh down "${started[@]}"; fi
}
trap cleanup EXIT

python="$(k2f_python)"
if (($# == 0)); then
  # The browser test's Chromium comes from apt meanwhile too; if it cannot install, that test names the fix.
  ( (ensure_browser || true) && make -s lint && "$python" -m pytest -m unit -q) >"$offline_log" 2>&1 &
  offline_pid=$!
fi
bash dev/stack.sh up "${services[@]}"
log "stack ready after $((SECONDS - t0))s"

if (($# == 0)); then
  status=0
  wait "$offline_pid" || status=$?
  offline_pid=""
  cat "$offline_log"
  ((status == 0)) || die "lint or unit tests failed (above); the integration tests did not run"
  log "lint and unit tests passed after $((SECONDS - t0))s"
  "$python" -m pytest -m integration
else
  make -s lint
  ensure_browser || true  # if it cannot install, the browser test fails naming the fix
  "$python" -m pytest "$@"
fi
log "make test finished in $((SECONDS - t0))s"
