#!/usr/bin/env bash
# Airflow 3 standalone (API server with the UI, scheduler, DAG processor, triggerer) on SQLite, reading
# this checkout's dags/ and plugins/. UI and REST API on 127.0.0.1:$AIRFLOW_PORT, login in
# $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated (admin / admin by default, local only).
source "$(dirname "$0")/../lib.sh"

export AIRFLOW_HOME="$K2F_STATE_DIR/airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$K2F_ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$K2F_ROOT/plugins"
# Tasks import beam_pipeline (the plugins reuse its contracts); on Composer it is uploaded into dags/.
export PYTHONPATH="$K2F_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW_USER:-admin}:admin"
export AIRFLOW__API__PORT="$AIRFLOW_PORT"
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$AIRFLOW_PORT"
# Workers call back to the API server; its default port (8080) is HAPI's here.
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$AIRFLOW_PORT/execution/"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=10
export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=True
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
  [[ -f "$pw" ]] || printf '{"%s": "%s"}\n' "${AIRFLOW_USER:-admin}" "${AIRFLOW_PASSWORD:-admin}" > "$pw"
  PATH="$bin:$PATH" start_bg airflow "$bin/airflow" standalone
  wait_until 300 airflow health
  log "airflow healthy: UI http://127.0.0.1:$AIRFLOW_PORT (login ${AIRFLOW_USER:-admin}/${AIRFLOW_PASSWORD:-admin})"
}

stop() { stop_bg airflow 30; }

service_main "$@"
