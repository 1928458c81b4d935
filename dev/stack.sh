#!/usr/bin/env bash
# The local stack: `dev/stack.sh up|down|status [service ...]`.
# up installs what is missing (cached), starts every service in parallel and returns only when each is
# healthy; running it again leaves healthy services alone. down stops them; state stays in .stack/.
source "$(dirname "$0")/lib.sh"

ALL=(kafka secret_manager gcs hapi expansion_service java_worker_pool python_worker_pool prism airflow)
svc_script() { echo "$K2F_ROOT/dev/services/$1.sh"; }

up() {
  local services=("$@") t0=$SECONDS
  # Installs run one at a time: they share the Maven and pip caches and the machine's two cores.
  for s in "${services[@]}"; do bash "$(svc_script "$s")" install; done
  local pids=() failed=()
  for s in "${services[@]}"; do
    bash "$(svc_script "$s")" start & pids+=($!)
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${services[$i]}"); done
  if ((${#failed[@]})); then die "not healthy: ${failed[*]} (logs in $K2F_LOG_DIR)"; fi
  log "stack up in $((SECONDS - t0))s: ${services[*]}"
  disk_warning
}

# The services' data only grows (HAPI's H2 file grew to 73 GB over a few sessions of benchmarks and filled
# the disk, which every service then failed on): say so while there is room to act.
LOW_DISK_MB="${LOW_DISK_MB:-5000}"
disk_warning() {
  local free
  free="$(df -Pm "$K2F_STATE_DIR" | awk 'NR == 2 {print $4}')"
  if [[ -n "$free" ]] && ((free < LOW_DISK_MB)); then
    log "WARNING: ${free} MB free under $K2F_STATE_DIR; 'make status' shows each service's data: 'make down'," \
      "then remove .stack/data/<service> to start that service empty (HAPI's is the one that grows)"
  fi
}

down() {
  local services=("$@") i strays
  for ((i = ${#services[@]} - 1; i >= 0; i--)); do bash "$(svc_script "${services[$i]}")" stop; done
  # The whole stack: nothing it started outlives it, whatever group it ended up in.
  if ((${#services[@]} == ${#ALL[@]})); then
    mapfile -t strays < <(stack_pids)
    if ((${#strays[@]})); then
      log "stopping ${#strays[@]} stray process(es) of the stack: ${strays[*]}"
      stop_pids 5 "${strays[@]}"
    fi
  fi
}

# strays: processes of the stack that belong to no running service's process group (a worker whose pool
# died, say), one line each.
strays() {
  local live=() s pid
  for s in "${ALL[@]}"; do
    [[ -f "$K2F_RUN_DIR/$s.pid" ]] && live+=("$(cat "$K2F_RUN_DIR/$s.pid")")
  done
  for pid in $(stack_pids); do
    local pgid
    pgid="$(pgid_of "$pid")" || continue
    if [[ " ${live[*]} " != *" $pgid "* ]] || ! alive "$pgid"; then
      printf 'stray: pid %s (group %s) %s\n' "$pid" "$pgid" "$(tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" | cut -c1-120)"
    fi
  done
}

status() {
  printf '%-20s %-8s %-10s %-10s\n' SERVICE HEALTHY PSS_MB DATA_MB
  for s in "$@"; do
    local ok=no rss=- data=-
    [[ -d "$K2F_STATE_DIR/data/$s" ]] && data="$(du -sm "$K2F_STATE_DIR/data/$s" 2>/dev/null | cut -f1)"
    bash "$(svc_script "$s")" health >/dev/null 2>&1 && ok=yes
    if [[ -f "$K2F_RUN_DIR/$s.pid" ]]; then
      # The whole process group (setsid in start_bg), as PSS so pages that forked workers share are
      # counted once: Airflow and the worker pools fork children.
      rss=$(for p in $(ps -e -o pid=,pgid= | awk -v g="$(cat "$K2F_RUN_DIR/$s.pid")" '$2 == g {print $1}'); do
              # A child that exits meanwhile (Airflow forks short-lived ones) is simply not counted.
              awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || true
            done | awk '{s += $1} END {printf "%d", s / 1024}')
    fi
    printf '%-20s %-8s %-10s %-10s\n' "$s" "$ok" "$rss" "$data"
  done
  disk_warning
  local found
  found="$(strays)"
  if [[ -n "$found" ]]; then
    echo "$found"
    echo "processes of the stack outside any running service: 'make down' stops them"
  fi
}

cmd="${1:-}"; shift || true
services=("$@"); ((${#services[@]})) || services=("${ALL[@]}")
case "$cmd" in
  up|down|status) "$cmd" "${services[@]}" ;;
  *) die "usage: dev/stack.sh up|down|status [service ...]  (services: ${ALL[*]})" ;;
esac
