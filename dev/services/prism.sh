#!/usr/bin/env bash
# Beam's Prism runner as a long-running portable job service on $PRISM_PORT (web UI on $PRISM_UI_PORT),
# built from the Go module proxy at the pinned Beam version. Pipelines reach it with
# --runner=PortableRunner --job_endpoint=$PRISM_ENDPOINT (launcher/local_stack_flags.py); it runs their
# Python steps on the Python worker pool and their Java steps (KafkaIO) on the Java worker pool.
source "$(dirname "$0")/../lib.sh"

PRISM_MODULE="github.com/apache/beam/sdks/v2"
# Prism's job service listens on ":PORT" (every interface) and has no flag for the address; its UI already
# binds localhost. The build patches that one listen address to 127.0.0.1 in a copy of the module's Go
# sources (the module cache stays untouched) and fails if the line is not there, so a new Beam version
# cannot silently bring back an open port.
PRISM_LISTEN_FROM='net.Listen("tcp", fmt.Sprintf(":%d", port))'
PRISM_LISTEN_TO='net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))'
# The Kafka read (beam_pipeline/kafka/connection.py, KAFKA_READ_EXPERIMENT) returns from each call as soon as
# no record is waiting and asks to be resumed at once, and Prism resumes it at once: a busy loop that kept
# 0.6-0.85 of this machine's two cores busy while a job sat idle. The second patch gives an unbounded
# element's resume that asked for no delay one of 100 ms, through Prism's own path for SDK-requested delays
# (Dataflow paces such resumes itself). It adds at most that to a message's latency; idle, the job then
# costs about 0.13 core (docs/local-runner.md, item 10).
PRISM_RESUME_FROM='		if r.Delay <= 0 {'
PRISM_RESUME_TO='		if r.Delay <= 0 && !r.Bounded {\n			r.Delay = 100 * time.Millisecond\n		}\n		if r.Delay <= 0 {'
# Keyed by version and by the patches' text, so a new pin or a changed patch builds a new binary instead of
# reusing a stale one (never an unpatched binary from an older checkout).
PRISM_BIN="$K2F_CACHE_DIR/prism/$BEAM_VERSION-k2f-$(printf '%s\n' "$PRISM_LISTEN_FROM" "$PRISM_LISTEN_TO" \
  "$PRISM_RESUME_FROM" "$PRISM_RESUME_TO" | sha256sum | cut -c1-12)/prism"

# Replaces the one line holding FROM in FILE (awk escapes in TO); fails unless exactly one line does, so a
# new Beam version cannot silently drop a patch.
patch_line() {
  local file="$1" from="$2" to="$3"
  [[ "$(grep -cF -- "$from" "$file")" == 1 ]] \
    || die "prism v$BEAM_VERSION: '$from' is not in $(basename "$file") once: update dev/services/prism.sh"
  awk -v from="$from" -v to="$to" \
    '{ i = index($0, from); if (i) $0 = substr($0, 1, i - 1) to substr($0, i + length(from)); print }' \
    "$file" > "$file.patched" && mv "$file.patched" "$file"
}

install() {
  [[ -x "$PRISM_BIN" ]] && return 0
  log "building prism v$BEAM_VERSION from the Go module proxy (first run only; minutes on a cold Go cache)"
  local src work
  src="$(go mod download -json "$PRISM_MODULE@v$BEAM_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$src" ]] || die "could not download $PRISM_MODULE@v$BEAM_VERSION"
  work="$(mktemp -d)"
  cp -r "$src/go.mod" "$src/go.sum" "$src/go" "$work/" && chmod -R u+w "$work"
  patch_line "$work/go/pkg/beam/runners/prism/internal/jobservices/server.go" "$PRISM_LISTEN_FROM" "$PRISM_LISTEN_TO"
  patch_line "$work/go/pkg/beam/runners/prism/internal/engine/elementmanager.go" "$PRISM_RESUME_FROM" "$PRISM_RESUME_TO"
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
