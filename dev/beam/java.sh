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
}

# beam_java_start NAME HEAP MAIN_CLASS ARGS...: the JVM the same way for both services.
beam_java_start() {
  local name="$1" heap="$2"; shift 2
  start_bg "$name" java -Xms64m "-Xmx$heap" -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError \
    -Djava.util.logging.config.file="$K2F_ROOT/dev/beam/logging.properties" \
    -cp "$BEAM_JAVA_LIBS/*" "$@"
}
