"""Benchmark: Patients per second on one core, map only / map + US Core rule check / + fhir.resources;
then rows per second of each clinical type through the whole path (parse, validate, map, rule check).

    python bench/bench_mapping.py [--rows 100000]

Generates Synthea-like rows (deterministic, synthetic), pins itself to one CPU, and times each stage over
the same rows. Figures go in README.md and docs/mapping.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from beam_pipeline.us_core import (
    TransformConfig,  # noqa: E402
    transform,  # noqa: E402
)
from beam_pipeline.us_core.parse import parse_json_object  # noqa: E402
from beam_pipeline.us_core.patient import map_patient, validate_patient  # noqa: E402
from beam_pipeline.us_core.rules import check_patient  # noqa: E402
from beam_pipeline.us_core.structural import structural_problems  # noqa: E402
from tests.support.synthetic import synthetic_rows  # noqa: E402
from tests.unit.us_core.clinical_rows import clinical_rows  # noqa: E402


def timed(label: str, rows: list[bytes], fn) -> tuple[str, float]:
    start = time.perf_counter()
    for raw in rows:
        fn(raw)
    seconds = time.perf_counter() - start
    return label, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--structural-rows", type=int, default=20_000, help="rows for the slow fhir.resources pass")
    parser.add_argument("--type-rows", type=int, default=20_000, help="rows per clinical type")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    config = TransformConfig(structural_validation=False)
    rows = synthetic_rows(args.rows)

    def parse_map(raw: bytes) -> dict:
        record = parse_json_object(raw, config.max_message_bytes)
        assert validate_patient(record, None) is None
        return map_patient(record, config)

    def parse_map_check(raw: bytes) -> None:
        assert check_patient(parse_map(raw)) == []

    def full(raw: bytes) -> None:
        resource = parse_map(raw)
        assert check_patient(resource) == [] and structural_problems(resource) == []

    results = [
        timed("parse + validate + map", rows, parse_map),
        timed("+ US Core rule check", rows, parse_map_check),
        timed("+ fhir.resources structural validation", rows[: args.structural_rows], full),
    ]
    counts = [args.rows, args.rows, min(args.rows, args.structural_rows)]
    # Every type through the whole pure path a message takes (parse, type, validate, map, rule check).
    by_type: dict[str, list[bytes]] = {}
    for i in range(max(1, args.type_rows // 10)):
        for row in clinical_rows(f"bench-patient-{i}", f"bench-encounter-{i}"):
            by_type.setdefault(row["MESSAGE_TYPE"], []).append(json.dumps(row).encode())
    for kind, raws in sorted(by_type.items()):
        raws = (raws * (1 + args.type_rows // len(raws)))[: args.type_rows]
        assert transform(raws[0], config=config).to_json()["status"] == "ok", kind
        results.append(timed(f"{kind}: whole path with rule check", raws, lambda raw: transform(raw, config=config)))
        counts.append(len(raws))
    print(f"mapping benchmark, one core, Python {sys.version.split()[0]}")
    print(f"{'stage':42} {'rows':>8} {'seconds':>8} {'rows/s':>9} {'us/row':>8}")
    for (label, seconds), n in zip(results, counts, strict=True):
        print(f"{label:42} {n:>8} {seconds:>8.2f} {n / seconds:>9.0f} {seconds / n * 1e6:>8.1f}")


if __name__ == "__main__":
    main()
