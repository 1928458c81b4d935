#!/usr/bin/env bash
# Python SDK worker pool (Beam's worker pool servicer, served on 127.0.0.1 only by our launcher
# dev/beam/python_worker_pool.py) on $PY_WORKER_POOL_PORT: the EXTERNAL environment of the pipeline's
# Python steps (--environment_type=EXTERNAL
# --environment_config=127.0.0.1:$PY_WORKER_POOL_PORT, see launcher/local_stack_flags.py). For each
# worker Prism asks for it starts one SDK harness process through dev/beam/python_sdk_boot, which reads
# the job's options from Prism, as the SDK container's boot would.
source "$(dirname "$0")/../lib.sh"

# The pipeline's environment (apache-beam and requirements.txt): the workers import the project's code
# from this checkout, with these packages.
K2F_BEAM_PYTHON="${K2F_BEAM_PYTHON:-$(k2f_python)}"
export K2F_BEAM_PYTHON

install() {
  local have
  have="$("$K2F_BEAM_PYTHON" -c 'import apache_beam; print(apache_beam.__version__)' 2>/dev/null)" \
    || die "no apache_beam in K2F_BEAM_PYTHON=$K2F_BEAM_PYTHON"
  [[ "$have" == "$BEAM_VERSION" ]] \
    || die "apache-beam $have in $K2F_BEAM_PYTHON, but Prism is built for $BEAM_VERSION (BEAM_VERSION)"
}

# The pool logs nothing below WARNING until a worker starts, so the open port is the signal.
health() { port_open "$PY_WORKER_POOL_PORT"; }

start() {
  if pid_alive python_worker_pool && health; then return 0; fi
  install
  port_free_or_die "$PY_WORKER_POOL_PORT" python_worker_pool
  : > "$K2F_LOG_DIR/python_worker_pool.log"
  # Each worker's semi-persistent directory (the job's staged main session) goes here.
  export K2F_WORKER_DIR="$K2F_DATA_DIR/python_worker_pool"
  rm -rf "$K2F_WORKER_DIR" && mkdir -p "$K2F_WORKER_DIR"
  # Workers import beam_pipeline from this checkout; the venv's bin first on PATH for anything they spawn.
  cd "$K2F_ROOT"
  PATH="$(dirname "$K2F_BEAM_PYTHON"):$PATH" PYTHONPATH="$K2F_ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 \
    start_bg python_worker_pool "$K2F_BEAM_PYTHON" "$K2F_ROOT/dev/beam/python_worker_pool.py" \
    --port="$PY_WORKER_POOL_PORT" --container_executable="$K2F_ROOT/dev/beam/python_sdk_boot"
  wait_until 60 python_worker_pool health
  log "python_worker_pool healthy on 127.0.0.1:$PY_WORKER_POOL_PORT ($K2F_BEAM_PYTHON)"
}

stop() { stop_bg python_worker_pool 10; }

service_main "$@"
