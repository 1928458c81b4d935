#!/usr/bin/env bash
# Beam's Java expansion service on $EXPANSION_SERVICE_PORT: expands apache_beam.io.kafka.ReadFromKafka
# (and WriteToKafka) into KafkaIO for pipelines submitted to the local runner. The transforms it returns
# run in an EXTERNAL environment: the Java worker pool on $JAVA_WORKER_POOL_PORT (java_worker_pool.sh).
source "$(dirname "$0")/../lib.sh"
source "$K2F_ROOT/dev/beam/java.sh"

install() { beam_java_install; }

health() {
  port_open "$EXPANSION_SERVICE_PORT" \
    && grep -q "Starting expansion service" "$K2F_LOG_DIR/expansion_service.log" 2>/dev/null
}

start() {
  if pid_alive expansion_service && health; then return 0; fi
  install
  port_free_or_die "$EXPANSION_SERVICE_PORT" expansion_service
  : > "$K2F_LOG_DIR/expansion_service.log"
  # --filesToStage: without it every expanded transform's environment lists this JVM's whole classpath
  # (~140 MB of jars) as artifacts, which each submission downloads and uploads to Prism, and Prism keeps
  # in memory for the life of the job service. The Java worker pool has that classpath already, so the
  # environment carries one small file instead: the pom that describes it.
  # --experiments: which Kafka read KafkaIO expands to is the expansion service's choice (it ignores the
  # pipeline's experiments); the job's own launch on Dataflow passes the same (beam_pipeline/kafka).
  # Our launcher (dev/beam/launchers) runs Beam's ExpansionService on 127.0.0.1 only, same arguments.
  local experiment
  experiment="$(cd "$K2F_ROOT" && "$(k2f_python)" -c \
    'from beam_pipeline.kafka.connection import KAFKA_READ_EXPERIMENT as e; print(e)')" \
    || die "could not read KAFKA_READ_EXPERIMENT from beam_pipeline/kafka/connection.py"
  beam_java_start expansion_service 512m dev.k2f.beam.LoopbackExpansionService \
    "$EXPANSION_SERVICE_PORT" \
    --defaultEnvironmentType=EXTERNAL --defaultEnvironmentConfig="127.0.0.1:$JAVA_WORKER_POOL_PORT" \
    --filesToStage="$K2F_ROOT/dev/beam/pom.xml" --experiments="$experiment"
  wait_until 60 expansion_service health
  log "expansion_service healthy on 127.0.0.1:$EXPANSION_SERVICE_PORT (Java transforms run on :$JAVA_WORKER_POOL_PORT)"
}

stop() { stop_bg expansion_service 10; }

service_main "$@"
