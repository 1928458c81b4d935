#!/usr/bin/env bash
# `make demo`: start the local stack, launch the streaming job through Airflow's k2f_launch DAG, publish
# include/sample_messages/ to Kafka and show where every message went. Safe to run again. With `synthea`
# (make demo-synthea), a whole Synthea population instead (dev/demo_synthea.py).
source "$(dirname "$0")/lib.sh"
cd "$K2F_ROOT"
bash dev/stack.sh up
bash dev/stack.sh status
if [ "${1:-}" = synthea ]; then
  shift
  "$(k2f_python)" dev/demo_synthea.py "$@"
else
  "$(k2f_python)" dev/demo.py
fi
