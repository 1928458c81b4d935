#!/usr/bin/env bash
# `make bench`: every benchmark script under bench/, one after the other, figures to stdout.
source "$(dirname "$0")/lib.sh"
cd "$K2F_ROOT"
python="$(k2f_python)"
shopt -s nullglob
scripts=(bench/bench_*.py)
((${#scripts[@]})) || die "no benchmarks in bench/"
for script in "${scripts[@]}"; do
  log "running $script"
  "$python" "$script"
done
