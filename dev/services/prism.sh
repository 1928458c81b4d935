#!/usr/bin/env bash
# Beam's Prism runner as a long-running portable job service on $PRISM_PORT (web UI on $PRISM_UI_PORT),
# built from the Go module proxy at the pinned Beam version. Pipelines reach it with
# --runner=PortableRunner --job_endpoint=$PRISM_ENDPOINT (beam_pipeline/runner_options.py); it runs their
# Python steps on the Python worker pool and their Java steps (KafkaIO) on the Java worker pool.
source "$(dirname "$0")/../lib.sh"

# Keyed by version, so a new pin builds a new binary instead of reusing a stale one.
PRISM_BIN="$K2F_CACHE_DIR/prism/$BEAM_VERSION/prism"

install() {
  [[ -x "$PRISM_BIN" ]] && return 0
  log "building prism v$BEAM_VERSION from the Go module proxy (first run only; minutes on a cold Go cache)"
  GOBIN="$(dirname "$PRISM_BIN")" go install "github.com/apache/beam/sdks/v2/go/cmd/prism@v$BEAM_VERSION" >&2
}

health() {
  port_open "$PRISM_PORT" && http_ok "http://127.0.0.1:$PRISM_UI_PORT/"
}

start() {
  if pid_alive prism && health; then return 0; fi
  install
  port_free_or_die "$PRISM_PORT" prism
  port_free_or_die "$PRISM_UI_PORT" prism
  : > "$K2F_LOG_DIR/prism.log"
  # A negative idle timeout keeps it up between jobs; jobs and their state live in its memory only.
  start_bg prism "$PRISM_BIN" -job_port "$PRISM_PORT" -web_port "$PRISM_UI_PORT" \
    -idle_shutdown_timeout=-1ns -log_kind=text
  wait_until 30 prism health
  log "prism healthy: jobs on $PRISM_ENDPOINT, UI on http://127.0.0.1:$PRISM_UI_PORT"
}

stop() { stop_bg prism 10; }

service_main "$@"
