#!/usr/bin/env bash
# The Secret Manager stand-in (dev/secret_manager/server.py), seeded with the local Kafka secret.
source "$(dirname "$0")/../lib.sh"

STATE="$K2F_DATA_DIR/secret_manager/secrets.json"

install() { k2f_python >/dev/null; }

health() { port_open "$SECRET_MANAGER_PORT" && port_open "$SECRET_MANAGER_REST_PORT"; }

start() {
  if pid_alive secret_manager && health; then seed; return 0; fi
  port_free_or_die "$SECRET_MANAGER_PORT" secret_manager
  port_free_or_die "$SECRET_MANAGER_REST_PORT" secret_manager
  start_bg secret_manager "$(k2f_python)" "$K2F_ROOT/dev/secret_manager/server.py" \
    --port "$SECRET_MANAGER_PORT" --rest_port "$SECRET_MANAGER_REST_PORT" --state "$STATE"
  wait_until 30 secret_manager health
  seed
  log "secret manager stand-in healthy on 127.0.0.1:$SECRET_MANAGER_PORT (gRPC) and :$SECRET_MANAGER_REST_PORT (REST)"
}

# The Kafka secret in the original sample's shape, through the real client; rerunning adds nothing.
seed() {
  "$(k2f_python)" "$K2F_ROOT/dev/seed_secret.py"
}

stop() { stop_bg secret_manager 5; }

service_main "$@"
