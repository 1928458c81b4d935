#!/usr/bin/env bash
# Beam's Prism runner as a long-running portable job service on $PRISM_PORT (web UI on $PRISM_UI_PORT),
# built from the Go module proxy at the pinned Beam version. Pipelines reach it with
# --runner=PortableRunner --job_endpoint=$PRISM_ENDPOINT (launcher/local_stack_flags.py); it runs their
# Python steps on the Python worker pool and their Java steps (KafkaIO) on the Java worker pool.
source "$(dirname "$0")/../lib.sh"

# Keyed by version, so a new pin builds a new binary instead of reusing a stale one ("-loopback": built with
# the one-line patch below, never an unpatched binary from an older checkout).
PRISM_BIN="$K2F_CACHE_DIR/prism/$BEAM_VERSION-loopback/prism"
PRISM_MODULE="github.com/apache/beam/sdks/v2"
# Prism's job service listens on ":PORT" (every interface) and has no flag for the address; its UI already
# binds localhost. The build patches that one listen address to 127.0.0.1 in a copy of the module's Go
# sources (the module cache stays untouched) and fails if the line is not there, so a new Beam version
# cannot silently bring back an open port.
PRISM_LISTEN_FROM='net.Listen("tcp", fmt.Sprintf(":%d", port))'
PRISM_LISTEN_TO='net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))'

install() {
  [[ -x "$PRISM_BIN" ]] && return 0
  log "building prism v$BEAM_VERSION from the Go module proxy (first run only; minutes on a cold Go cache)"
  local src work server
  src="$(go mod download -json "$PRISM_MODULE@v$BEAM_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$src" ]] || die "could not download $PRISM_MODULE@v$BEAM_VERSION"
  work="$(mktemp -d)"
  cp -r "$src/go.mod" "$src/go.sum" "$src/go" "$work/" && chmod -R u+w "$work"
  server="$work/go/pkg/beam/runners/prism/internal/jobservices/server.go"
  grep -qF "$PRISM_LISTEN_FROM" "$server" \
    || die "prism v$BEAM_VERSION no longer listens with $PRISM_LISTEN_FROM: update dev/services/prism.sh"
  awk -v from="$PRISM_LISTEN_FROM" -v to="$PRISM_LISTEN_TO" \
    '{ i = index($0, from); if (i) $0 = substr($0, 1, i - 1) to substr($0, i + length(from)); print }' \
    "$server" > "$server.patched" && mv "$server.patched" "$server"
  mkdir -p "$(dirname "$PRISM_BIN")"
  (cd "$work" && go build -o "$PRISM_BIN.tmp" ./go/cmd/prism) >&2 || die "building prism failed"
  mv "$PRISM_BIN.tmp" "$PRISM_BIN"
  rm -rf "$work"
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
