"""Benchmark: rows per second of every shipped message type through the whole pure path a message takes
(parse, recognise, validate, map, US Core rule check), one core, without and with the profile validation
(--profile_validation=enforce, the pipeline's default: each resource against the profiles it claims);
Patients also with fhir.resources structural validation; and the memory a worker holding every mapping and
terminology file pays for them.

    python bench/bench_mapping.py [--rows 20000] [--runs 3] [--profile-validation both|off|enforce] [--cpu-time]

Rows are generated (deterministic, synthetic): Synthea-like Patients, the clinical rows the tests use, ADT
events made from the shipped sample (each with its own times and birth date). Pinned to one CPU; each
figure is the best of --runs runs. Figures go in README.md. --cpu-time times the process's CPU time instead
of the wall clock, as bench/bench_validation.py does: the figure to read when other work shares the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    """Resident set size now, from /proc (ru_maxrss is the peak, not the current size)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def adt_rows(n: int) -> list[bytes]:
    """ADT events from the shipped sample, each with its own MRN, visit number, event and admit times and
    birth date (a feed's times differ on every message: none of them is parsed once for all)."""
    sample = json.loads((ROOT / "include" / "sample_messages" / "20_adt_a01_admit.json").read_text())
    text = json.dumps(sample)
    mrn = next(i["value"] for i in sample["patient"]["identifiers"] if i.get("type") == "MR")
    visit = sample["visit"]
    originals = (visit["visitNumber"], sample["eventTime"], visit["admitTime"], sample["patient"]["birthDate"])
    rows = []
    for i in range(n):
        day = f"2024-{1 + i // 40320 % 12:02d}-{1 + i // 1440 % 28:02d}T{i // 60 % 24:02d}:{i % 60:02d}"
        birth = f"{1930 + i % 90}-{1 + i // 90 % 12:02d}-{1 + i // 1080 % 28:02d}"
        row = text.replace(mrn, f"MRN{i:08d}")
        for old, new in zip(originals, (f"V{i:09d}", f"{day}:10-05:00", f"{day}:00-05:00", birth), strict=True):
            row = row.replace(old, new)
        rows.append(row.encode())
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000, help="rows per message type")
    parser.add_argument("--structural-rows", type=int, default=2_000, help="Patients for the fhir.resources pass")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; the best is shown")
    parser.add_argument(
        "--profile-validation",
        choices=("both", "off", "enforce"),
        default="both",
        help="time the path without profile validation, with it (enforce), or both side by side (default)",
    )
    parser.add_argument("--cpu-time", action="store_true", help="CPU time of this process, not the wall clock")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    before_import = rss_mb()
    from beam_pipeline.us_core import TransformConfig, mapping_set, transform

    imported = rss_mb()
    config = TransformConfig(structural_validation=False, profile_validation="off")
    validating = TransformConfig(structural_validation=False, profile_validation="enforce")
    modes = {"off": [config], "enforce": [validating], "both": [config, validating]}[args.profile_validation]
    compiled = mapping_set(config)  # every shipped mapping and terminology file, compiled as a worker does
    loaded = rss_mb()
    if validating in modes:
        from beam_pipeline.us_core import conformance
        from beam_pipeline.us_core.stages import declared_profiles

        conformance.warm(declared_profiles(validating))  # compiled once per worker, in its setup
    validators = rss_mb()

    from dev.clinical_rows import clinical_rows
    from dev.synthetic import synthetic_rows

    rows: dict[str, list[bytes]] = {"patient": synthetic_rows(args.rows)}
    for i in range(max(1, args.rows // 10)):
        for row in clinical_rows(f"bench-patient-{i}", f"bench-encounter-{i}"):
            rows.setdefault(row["MESSAGE_TYPE"], []).append(json.dumps(row).encode())
    if (ROOT / "include" / "sample_messages" / "20_adt_a01_admit.json").exists():
        rows["adt^a01"] = adt_rows(args.rows)
    shipped = sorted(compiled.by_type[kind].id for kind in rows)

    clock = time.process_time if args.cpu_time else time.perf_counter

    def timed(raws: list[bytes], cfg: TransformConfig) -> float:
        best = float("inf")
        for _ in range(args.runs):
            start = clock()
            for raw in raws:
                transform(raw, config=cfg)
            best = min(best, clock() - start)
        return best

    results: list[tuple[str, int, list[float]]] = []
    for kind, raws in sorted(rows.items()):
        raws = (raws * (1 + args.rows // len(raws)))[: args.rows]
        for cfg in modes:
            # Every generated row keeps its profiles: the figures time written resources, not errors.
            outcome = transform(raws[0], config=cfg).to_json()
            assert outcome["status"] == "ok", (kind, cfg.profile_validation, outcome)
        seconds = [timed(raws, cfg) for cfg in modes]
        results.append((f"{compiled.by_type[kind].id}: whole path with rule check", len(raws), seconds))
    structural = TransformConfig(structural_validation=True, profile_validation="off")
    patients = rows["patient"][: args.structural_rows]
    results.append(("synthea-patient: + fhir.resources structural", len(patients), [timed(patients, structural)]))

    mapped_all = rss_mb()
    timer = "CPU time" if args.cpu_time else "wall clock"
    print(f"mapping benchmark, one core, Python {sys.version.split()[0]}, best of {args.runs} runs, {timer}")
    print(f"mappings timed: {', '.join(shipped)}")
    heads = [f"{'rows/s ' + cfg.profile_validation:>16} {'us/row':>7}" for cfg in modes]
    print(f"{'stage':52} {'rows':>7} {' '.join(heads)}")
    for label, n, seconds in results:
        cells = " ".join(f"{n / s:>16.0f} {s / n * 1e6:>7.1f}" for s in seconds)
        print(f"{label:52} {n:>7} {cells}")
    print(
        f"profile validation: {', '.join(cfg.profile_validation for cfg in modes)} (enforce: each resource against "
        "every profile it claims, the pipeline's default)"
    )
    print(
        f"memory (RSS): {before_import:.0f} MB at start, {imported:.0f} MB with the mapping code imported, "
        f"{loaded:.0f} MB with every mapping ({len(compiled.mappings)}) and terminology file compiled: "
        f"+{loaded - imported:.1f} MB for the set; {validators:.0f} MB with the validators of every declared "
        f"profile compiled; {mapped_all:.0f} MB after mapping every type (structural validation included)"
    )


if __name__ == "__main__":
    main()
