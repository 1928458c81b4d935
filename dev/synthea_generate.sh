#!/usr/bin/env bash
# A Synthea 3.3.0 population (CSV exporter, every table) of N living patients with a fixed seed, as
# tests/data/synthea-10 was made (its README explains each flag). Synthetic data only.
#
#   bash dev/synthea_generate.sh 30            # -> $K2F_CACHE_DIR/synthea/p30-s42/csv (printed)
#   bash dev/synthea_generate.sh 30 7          # another seed
#
# Synthea and its dependencies come from Maven Central (dev/synthea/pom.xml) on the first run. A
# population already generated is reused.
source "$(dirname "$0")/lib.sh"
set -euo pipefail
patients="${1:?usage: synthea_generate.sh PATIENTS [SEED]}"
seed="${2:-42}"
home="$K2F_CACHE_DIR/synthea"
out="$home/p$patients-s$seed"
if [ -f "$out/csv/patients.csv" ]; then
  echo "$out/csv"
  exit 0
fi
if [ ! -d "$home/lib" ]; then
  log "downloading Synthea 3.3.0 and its dependencies from Maven Central (first run only)"
  mvn -q -B -f "$K2F_ROOT/dev/synthea/pom.xml" dependency:copy-dependencies -DoutputDirectory="$home/lib.tmp" >&2
  mv "$home/lib.tmp" "$home/lib"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "generating $patients patients with seed $seed (one thread, for the same rows on every run)"
(cd "$work" && java -XX:ActiveProcessorCount=1 -cp "$home/lib/*" App \
  -s "$seed" -cs "$seed" -r 20260101 -e 20260101 -p "$patients" \
  --exporter.csv.export=true --exporter.csv.excluded_files=none \
  --exporter.fhir.export=false --exporter.hospital.fhir.export=false \
  --exporter.practitioner.fhir.export=false >&2)
mkdir -p "$out"
mv "$work/output/csv" "$out/csv"
echo "$out/csv"
