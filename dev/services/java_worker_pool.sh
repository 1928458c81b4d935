#!/usr/bin/env bash
# Java SDK harness worker pool on $JAVA_WORKER_POOL_PORT (127.0.0.1 only): the EXTERNAL environment that the
# expansion service stamps on the Java transforms it expands (KafkaIO), so Prism runs them without Docker.
# For each worker Prism asks for, it starts one JVM running Beam's FnHarness (dev/beam/java_sdk_boot), and
# stops it when Prism stops the worker: a cancelled job's Kafka consumers end with the cancel. The pool
# itself is the same process-per-worker server as the Python pool (dev/beam/python_worker_pool.py).
source "$(dirname "$0")/../lib.sh"
source "$K2F_ROOT/dev/beam/java.sh"

K2F_BEAM_PYTHON="${K2F_BEAM_PYTHON:-$(k2f_python)}"
export K2F_BEAM_PYTHON

install() { beam_java_install; }

# The pool logs nothing below WARNING until a worker starts, so the open port is the signal.
health() { port_open "$JAVA_WORKER_POOL_PORT"; }

start() {
  if pid_alive java_worker_pool && health; then return 0; fi
  install
  port_free_or_die "$JAVA_WORKER_POOL_PORT" java_worker_pool
  : > "$K2F_LOG_DIR/java_worker_pool.log"
  # Each harness's JVM flags and classpath, built once here (one a line), read by dev/beam/java_sdk_boot.py.
  K2F_JAVA_HARNESS_ARGS="$(beam_java_args 512m)"
  export K2F_JAVA_HARNESS_ARGS
  cd "$K2F_ROOT"
  start_bg java_worker_pool "$K2F_BEAM_PYTHON" "$K2F_ROOT/dev/beam/python_worker_pool.py" \
    --port="$JAVA_WORKER_POOL_PORT" --container_executable="$K2F_ROOT/dev/beam/java_sdk_boot"
  wait_until 60 java_worker_pool health
  log "java_worker_pool healthy on 127.0.0.1:$JAVA_WORKER_POOL_PORT (one JVM per worker)"
}

stop() { stop_bg java_worker_pool 10; }

service_main "$@"
