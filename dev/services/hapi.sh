#!/usr/bin/env bash
# HAPI FHIR JPA server (R4, H2 file database), built from Maven Central artifacts by dev/hapi/pom.xml.
# On start it installs US Core 6.1.0 from $US_CORE_PACKAGE (once; the installer skips what is stored)
# and, with HAPI_VALIDATE_US_CORE=true, rejects resources that fail their declared profiles.
source "$(dirname "$0")/../lib.sh"

SRC="$K2F_ROOT/dev/hapi"
DATA="$K2F_DATA_DIR/hapi"

# The built jar is cached per hash of the sources, so a fresh clone with the same sources reuses it.
jar_path() {
  local hash
  hash="$(cd "$SRC" && find pom.xml src -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)"
  echo "$K2F_CACHE_DIR/hapi/$hash/local-hapi-fhir.jar"
}

install() {
  local jar
  jar="$(jar_path)"
  [[ -f "$jar" ]] && return 0
  log "building the HAPI FHIR server (first run only: Maven Central downloads, a few minutes)"
  local build
  build="$(mktemp -d)"
  cp -r "$SRC/pom.xml" "$SRC/src" "$build/"
  mvn -q -B -Dstyle.color=never -f "$build/pom.xml" package -DskipTests > "$build/build.log" 2>&1 \
    || { cat "$build/build.log" >&2; die "HAPI build failed"; }
  mkdir -p "$(dirname "$jar")"
  mv "$build/target/local-hapi-fhir.jar" "$jar"
  rm -rf "$build"
}

health() {
  http_ok "http://127.0.0.1:$HAPI_PORT/fhir/metadata" && grep -q "K2F-READY" "$K2F_LOG_DIR/hapi.log" 2>/dev/null
}

start() {
  if pid_alive hapi && health; then return 0; fi
  install
  port_free_or_die "$HAPI_PORT" hapi
  [[ -r "$US_CORE_PACKAGE" ]] || die "US Core package not found at $US_CORE_PACKAGE; set US_CORE_PACKAGE"
  mkdir -p "$DATA"
  : > "$K2F_LOG_DIR/hapi.log"
  HAPI_DATA_DIR="$DATA" start_bg hapi java -Xms256m -Xmx${HAPI_HEAP:-1g} -XX:+UseParallelGC -jar "$(jar_path)"
  # A cold start installs US Core into the database (2-3 minutes on 2 busy cores) before it is ready.
  wait_until "${HAPI_START_TIMEOUT:-600}" hapi health
  log "hapi healthy at $FHIR_BASE_URL (US Core validation: $HAPI_VALIDATE_US_CORE)"
}

stop() { stop_bg hapi 30; }

service_main "$@"
