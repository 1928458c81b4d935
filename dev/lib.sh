# shellcheck shell=bash
# Shared helpers for the service scripts in dev/services/. Each service script sources this file and
# implements: install (idempotent, cached under $K2F_CACHE_DIR), start (idempotent, returns only when the
# service is healthy), stop, health (exit 0 when healthy).
set -euo pipefail
# shellcheck source=dev/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

K2F_RUN_DIR="$K2F_STATE_DIR/run"
K2F_LOG_DIR="$K2F_STATE_DIR/logs"
K2F_DATA_DIR="$K2F_STATE_DIR/data"
mkdir -p "$K2F_RUN_DIR" "$K2F_LOG_DIR" "$K2F_DATA_DIR" "$K2F_CACHE_DIR"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# alive PID: the process runs (a zombie, killed but not yet reaped by an init that does not reap, does not).
alive() {
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != "Z" ]]
}

# pid_alive NAME: the service's recorded process is running.
pid_alive() {
  local f="$K2F_RUN_DIR/$1.pid"
  [[ -f "$f" ]] && alive "$(cat "$f")"
}

# Every process the stack starts carries K2F_STACK=<state dir> in its environment, inherited by whatever it
# forks (the worker pools' SDK harnesses, Airflow's task processes): `down` finds and stops them even when
# their service's leader died first and they were re-parented to init, and `status` lists them as strays.
K2F_STACK_TAG="K2F_STACK=$K2F_STATE_DIR"

# start_bg NAME CMD...: start CMD detached in its own process group, log to $K2F_LOG_DIR/NAME.log. Every group
# a service ever had is recorded in NAME.pgids until stop_bg has stopped it.
start_bg() {
  local name="$1"; shift
  if pid_alive "$name"; then return 0; fi
  log "starting $name (log: $K2F_LOG_DIR/$name.log)"
  setsid env "$K2F_STACK_TAG" "$@" >>"$K2F_LOG_DIR/$name.log" 2>&1 < /dev/null &
  echo $! > "$K2F_RUN_DIR/$name.pid"
  echo $! >> "$K2F_RUN_DIR/$name.pgids"
}

# pgid_of PID: the process group of PID (read after the command name, which may hold spaces).
pgid_of() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  set -- $stat
  echo "$3"
}

# stack_pids [PGID...]: the pids of live processes tagged as this stack's (of those process groups only, when
# given). A recorded group id the kernel has since given to someone else's process is never matched.
stack_pids() {
  local groups=" $* " pid pgid
  for dir in /proc/[0-9]*; do
    pid="${dir#/proc/}"
    [[ "$pid" == "$$" || "$pid" == "$BASHPID" ]] && continue
    tr '\0' '\n' 2>/dev/null < "$dir/environ" | grep -xF "$K2F_STACK_TAG" >/dev/null || continue
    if (($#)); then
      pgid="$(pgid_of "$pid")" || continue
      [[ "$groups" == *" $pgid "* ]] || continue
    fi
    echo "$pid"
  done
}

# stop_pids GRACE_SECONDS PID...: TERM, wait up to the grace period, then KILL what is left.
stop_pids() {
  local grace="$1"; shift
  (($#)) || return 0
  kill -TERM "$@" 2>/dev/null || true
  for _ in $(seq $((grace * 5))); do
    local running=0 p
    for p in "$@"; do alive "$p" && running=1 && break; done
    ((running)) || return 0
    sleep 0.2
  done
  kill -KILL "$@" 2>/dev/null || true
}

# stop_bg NAME [GRACE_SECONDS]: stop every process of every group the service had, its leader first (it
# stops its own children cleanly), then whatever outlived it, even when the leader had died before.
stop_bg() {
  local name="$1" grace="${2:-20}" f="$K2F_RUN_DIR/$1.pid" groups=() pid
  if [[ -f "$K2F_RUN_DIR/$name.pgids" ]]; then mapfile -t groups < "$K2F_RUN_DIR/$name.pgids"; fi
  if [[ -f "$f" ]]; then
    pid="$(cat "$f")"
    groups+=("$pid")
    if alive "$pid"; then
      log "stopping $name"
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq $((grace * 5))); do alive "$pid" || break; sleep 0.2; done
    fi
  fi
  if ((${#groups[@]})); then
    local left
    mapfile -t left < <(stack_pids "${groups[@]}")
    if ((${#left[@]})); then
      log "stopping ${#left[@]} process(es) left by $name"
      stop_pids 5 "${left[@]}"
    fi
  fi
  rm -f "$f" "$K2F_RUN_DIR/$name.pgids"
}

# wait_until SECONDS NAME CMD...: poll CMD until it succeeds; fail naming the log if it never does.
wait_until() {
  local timeout="$1" name="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      tail -n 30 "$K2F_LOG_DIR/$name.log" >&2 2>/dev/null || true
      die "$name was not healthy after ${timeout}s; see $K2F_LOG_DIR/$name.log"
    fi
    if [[ -f "$K2F_RUN_DIR/$name.pid" ]] && ! pid_alive "$name"; then
      tail -n 30 "$K2F_LOG_DIR/$name.log" >&2 2>/dev/null || true
      die "$name exited during start; see $K2F_LOG_DIR/$name.log"
    fi
    sleep 1
  done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
http_ok() { curl -fsS -o /dev/null --max-time 5 "$1"; }

# port_free_or_die PORT NAME: a clear message when something else holds our port.
port_free_or_die() {
  if port_open "$1"; then
    die "port $1 for $2 is taken by another process; stop it or set the port variable (see dev/env.sh)"
  fi
}

# maven_fetch OUT_DIR POM: copy a pom's runtime dependencies into OUT_DIR once (cached).
maven_fetch() {
  local out="$1" pom="$2"
  if [[ -f "$out/.complete" ]]; then return 0; fi
  log "fetching jars for $(basename "$out") from Maven Central (first run only)"
  mkdir -p "$out"
  mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$out" > "$out.log" 2>&1 || { cat "$out.log" >&2; die "Maven could not fetch $pom"; }
  touch "$out/.complete"
}

# maven_jar SRC NAME: build the Maven module in SRC (pom.xml, src/) into NAME.jar once per hash of its sources
# and of the versions it builds against; print the jar's path. Cached like the downloads, so a fresh clone reuses it.
maven_jar() {
  local src="$1" name="$2" hash jar build
  hash="$( { echo "$BEAM_JAVA_VERSION $KAFKA_VERSION"; cd "$src" && find pom.xml src -type f -print0 | sort -z \
    | xargs -0 sha256sum; } | sha256sum | cut -c1-12)"
  jar="$K2F_CACHE_DIR/jars/$name/$hash/$name.jar"
  if [[ ! -f "$jar" ]]; then
    log "building $name.jar with Maven (first run only)"
    build="$(mktemp -d)"
    cp -r "$src/pom.xml" "$src/src" "$build/"
    mvn -q -B -Dstyle.color=never -f "$build/pom.xml" package -DskipTests > "$build/build.log" 2>&1 \
      || { cat "$build/build.log" >&2; die "Maven could not build $src"; }
    mkdir -p "$(dirname "$jar")"
    mv "$build/target/$name.jar" "$jar"
    rm -rf "$build"
  fi
  echo "$jar"
}

service_main() {
  local cmd="${1:-}"
  case "$cmd" in
    install|start|stop|health) "$cmd" ;;
    *) die "usage: $0 install|start|stop|health" ;;
  esac
}

# k2f_python: print the python of the project's virtual environment, creating it on first use.
# One environment serves Airflow, the pipeline launcher, the Python SDK worker pool and the tests (pip
# resolves them together; see README). It is keyed by the hash of the requirement and lock files, so a
# changed pin builds a new one while an unchanged one is reused by every checkout on the machine.
k2f_python() {
  local files=(requirements.txt requirements-dev.txt requirements-airflow.txt requirements.lock)
  local hash venv
  hash="$(cd "$K2F_ROOT" && cat "${files[@]}" | sha256sum | cut -c1-12)"
  venv="$K2F_CACHE_DIR/venvs/k2f-$hash"
  if [[ ! -f "$venv/.complete" ]]; then
    mkdir -p "$K2F_CACHE_DIR/venvs"
    # Serialised: two commands started at once (tests, the stack, an editor's linter) would otherwise
    # build the same environment over each other.
    (
      flock 9
      if [[ ! -f "$venv/.complete" ]]; then
        log "creating the Python environment in $venv (first run only, several minutes)"
        rm -rf "$venv"
        "${K2F_PYTHON:-python3.11}" -m venv "$venv" >&2
        (cd "$K2F_ROOT" && "$venv/bin/pip" install -q --disable-pip-version-check \
          -r requirements-dev.txt -r requirements-airflow.txt -c requirements.lock) >&2
        touch "$venv/.complete"
      fi
    ) 9> "$K2F_CACHE_DIR/venvs/.lock"
  fi
  echo "$venv/bin/python"
}

# ensure_browser: headless Chromium and its driver for the browser test of the Airflow UI, from Debian's
# packages. Both must come from apt as a pair: Chromium and chromedriver only talk when their versions match,
# and nothing outside the package registries can be downloaded here (so not Selenium Manager's builds).
ensure_browser() {
  if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then return 0; fi
  local sudo=()
  if ((EUID != 0)); then
    if ! command -v sudo >/dev/null; then
      log "cannot install chromium: not root and no sudo (as root: apt-get install chromium chromium-driver)"
      return 1
    fi
    sudo=(sudo)
  fi
  local out="$K2F_LOG_DIR/browser-install.log"
  log "installing chromium and chromium-driver from Debian's packages (first run only; log: $out)"
  if ! { "${sudo[@]}" apt-get update \
    && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      chromium chromium-driver; } >"$out" 2>&1; then
    tail -n 20 "$out" >&2
    log "installing chromium failed (see $out); the browser test will fail until it is installed"
    return 1
  fi
}
