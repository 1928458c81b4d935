#!/usr/bin/env bash
# Airflow 3 (API server with the UI, scheduler, DAG processor, triggerer) on SQLite, reading this
# checkout's dags/ and plugins/, as `airflow standalone` runs it but through our own `run` below, so that
# nothing listens beyond 127.0.0.1. UI and REST API on 127.0.0.1:$AIRFLOW_PORT, login in
# $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated (admin / admin by default, local only, mode 0600).
source "$(dirname "$0")/../lib.sh"

export AIRFLOW_HOME="$K2F_STATE_DIR/airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$K2F_ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$K2F_ROOT/plugins"
# Tasks import beam_pipeline and launcher (contracts, job states); on Composer both are uploaded into dags/.
export PYTHONPATH="$K2F_ROOT${PYTHONPATH:+:$PYTHONPATH}"
# SQLite allows one writer at a time and sqlite3 gives up after 5 s by default: a test's trigger that met
# a scheduled run's burst of writes got "database is locked" as a 500 (seen once in test_airflow_e2e).
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db?timeout=30"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW_USER:-admin}:admin"
export AIRFLOW__API__PORT="$AIRFLOW_PORT"
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$AIRFLOW_PORT"
# Workers call back to the API server; its default port (8080) is HAPI's here.
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$AIRFLOW_PORT/execution/"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=10
export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=True
# The scheduler's health check server binds 0.0.0.0 unless told otherwise.
export AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST=127.0.0.1
export AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT="$AIRFLOW_HEALTH_PORT"
# Sized for a 2-core machine: the defaults fork 32 LocalExecutor workers and several API workers.
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW_PARALLELISM:-4}"
export AIRFLOW__API__WORKERS=1

install() { k2f_python >/dev/null; }

health() {
  curl -fsS --max-time 5 "http://127.0.0.1:$AIRFLOW_PORT/api/v2/monitor/health" 2>/dev/null \
    | grep -q '"scheduler":{"status":"healthy"'
}

start() {
  if pid_alive airflow && health; then return 0; fi
  port_free_or_die "$AIRFLOW_PORT" airflow
  local bin
  bin="$(dirname "$(k2f_python)")"
  mkdir -p "$AIRFLOW_HOME"
  local pw="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
  [[ -f "$pw" ]] || (umask 077 && printf '{"%s": "%s"}\n' "${AIRFLOW_USER:-admin}" "${AIRFLOW_PASSWORD:-admin}" > "$pw")
  chmod 600 "$pw"
  PATH="$bin:$PATH" start_bg airflow bash "$K2F_ROOT/dev/services/airflow.sh" run
  wait_until 300 airflow health
  log "airflow healthy: UI http://127.0.0.1:$AIRFLOW_PORT (login ${AIRFLOW_USER:-admin}/${AIRFLOW_PASSWORD:-admin})"
}

stop() { stop_bg airflow 30; }

# run: what `airflow standalone` does (create or migrate the database with the default connections, then
# the four components), in the foreground of the service's process group. standalone cannot be told to
# keep its components private: the scheduler and the triggerer each start a log server that binds every
# interface (uvicorn with host "", no setting for the address). With the LocalExecutor, tasks write their
# logs under $AIRFLOW_HOME/logs and the API server reads them from there, so --skip-serve-logs loses
# nothing here. The API server binds AIRFLOW__API__HOST (127.0.0.1, above).
run() {
  # The components sign and check each other's tokens (the execution API) with one JWT secret. Started
  # together on a fresh AIRFLOW_HOME, each would generate its own before airflow.cfg holds one, and tasks
  # would fail with "Invalid auth token"; so the secret is made once, kept 0600, and given to all.
  local keys="$AIRFLOW_HOME/signing_keys.env"
  [[ -f "$keys" ]] || (umask 077 && python -c 'import secrets
print(f"AIRFLOW__API_AUTH__JWT_SECRET={secrets.token_urlsafe(64)}")
print(f"AIRFLOW__API__SECRET_KEY={secrets.token_urlsafe(32)}")' > "$keys")
  set -a && source "$keys" && set +a
  python -c 'from airflow.utils.db import initdb; initdb()'
  airflow scheduler --skip-serve-logs &
  airflow triggerer --skip-serve-logs &
  airflow dag-processor &
  airflow api-server &
  # One component gone means Airflow is broken: end them all, so health fails and `start` restarts it.
  wait -n || true
  log "an Airflow component exited; stopping the others"
  kill -TERM -- "-$$" 2>/dev/null || true
}

if [[ "${1:-}" == run ]]; then run; else service_main "$@"; fi
