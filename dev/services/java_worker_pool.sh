#!/usr/bin/env bash
# Java SDK harness worker pool (org.apache.beam.fn.harness.ExternalWorkerService) on $JAVA_WORKER_POOL_PORT:
# the EXTERNAL environment that the expansion service stamps on the Java transforms it expands (KafkaIO),
# so Prism runs them without Docker. Prism asks it to start one harness (a thread in this JVM) per job.
source "$(dirname "$0")/../lib.sh"
source "$K2F_ROOT/dev/beam/java.sh"

install() { beam_java_install; }

health() {
  port_open "$JAVA_WORKER_POOL_PORT" \
    && grep -q "External worker service started" "$K2F_LOG_DIR/java_worker_pool.log" 2>/dev/null
}

start() {
  if pid_alive java_worker_pool && health; then return 0; fi
  install
  port_free_or_die "$JAVA_WORKER_POOL_PORT" java_worker_pool
  : > "$K2F_LOG_DIR/java_worker_pool.log"
  # Our launcher (dev/beam/launchers) runs Beam's ExternalWorkerService on the EXTERNAL address of its
  # options (JSON in PIPELINE_OPTIONS, as the upstream entry point reads them), 127.0.0.1 only.
  PIPELINE_OPTIONS="{\"options\": {\"defaultEnvironmentType\": \"EXTERNAL\", \
\"defaultEnvironmentConfig\": \"127.0.0.1:$JAVA_WORKER_POOL_PORT\"}}" \
    beam_java_start java_worker_pool 1g dev.k2f.beam.LoopbackWorkerPool
  wait_until 60 java_worker_pool health
  log "java_worker_pool healthy on 127.0.0.1:$JAVA_WORKER_POOL_PORT"
}

stop() { stop_bg java_worker_pool 10; }

service_main "$@"
