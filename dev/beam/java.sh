# shellcheck shell=bash
# The Java side of the local runner, shared by dev/services/expansion_service.sh and
# dev/services/java_worker_pool.sh: one classpath (dev/beam/pom.xml) serves both processes.
#
# BEAM_JAVA_VERSION differs from BEAM_VERSION on purpose: Maven Central has no Java artifact for the pinned
# Python SDK's release yet, and no shaded beam-sdks-java-io-expansion-service for recent releases at all,
# so the classpath is assembled from the newest release that has every module (docs/local-runner.md).
# Cross-language expansion is versioned by URN and payload schema, so a Python SDK a few releases ahead
# of the Java SDK expands and runs KafkaIO fine (the integration tests check it).
: "${BEAM_JAVA_VERSION:?set in dev/env.sh}"

BEAM_JAVA_LIBS="$K2F_CACHE_DIR/beam-java/$BEAM_JAVA_VERSION/libs"

beam_java_install() {
  maven_fetch "$BEAM_JAVA_LIBS" "$K2F_ROOT/dev/beam/pom.xml"
  beam_java_launchers >/dev/null
  kafka_config_provider_jar >/dev/null
}

# The Kafka ConfigProvider that resolves the SASL login from Secret Manager on the worker
# (java/kafka-config-provider): on the classpath of the expansion service and of the Java harnesses.
kafka_config_provider_jar() { maven_jar "$K2F_ROOT/java/kafka-config-provider" kafka-config-provider; }

# Our entry points for both services (dev/beam/launchers/): Beam's own mains bind every interface, these
# bind 127.0.0.1 only.
beam_java_launchers() { maven_jar "$K2F_ROOT/dev/beam/launchers" local-beam-launchers; }

# beam_java_args HEAP: the JVM's flags and classpath, one a line, the same for both services and for each
# Java SDK harness the worker pool starts (dev/beam/java_sdk_boot.py reads them from the pool's environment).
beam_java_args() {
  local launchers provider
  launchers="$(beam_java_launchers)"
  provider="$(kafka_config_provider_jar)"
  printf '%s\n' -Xms64m "-Xmx$1" -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError \
    "-Djava.util.logging.config.file=$K2F_ROOT/dev/beam/logging.properties" \
    -cp "$BEAM_JAVA_LIBS/*:$launchers:$provider"
}

# beam_java_start NAME HEAP MAIN_CLASS ARGS...: the JVM the same way for both services.
beam_java_start() {
  local name="$1" lines args; shift
  lines="$(beam_java_args "$1")"; shift
  mapfile -t args <<< "$lines"
  start_bg "$name" java "${args[@]}" "$@"
}
