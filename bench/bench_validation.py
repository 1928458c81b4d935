"""Benchmark: US Core profile validation (beam_pipeline/validation), resources per second per profile, one
core, over the resources the shipped mappings produce: every mapping's samples, the goldens, and synthetic
Synthea-like rows (--patients Patients and the clinical rows of one in ten).

    python bench/bench_validation.py [--seconds 1.0] [--runs 5] [--patients 2000]

Each profile's resources are validated in a loop for about --seconds of CPU time (process time: the machine
may be shared); each figure is the best of --runs.
The validators are compiled before timing (once per worker in the pipeline); the compile time of every
profile of the package is printed apart.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _rate(validate, resources: list, seconds: float) -> float:  # noqa: ANN001  (a bound method)
    done, start = 0, time.process_time()
    while True:
        for resource in resources:
            validate(resource)
        done += len(resources)
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per run and profile")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure; the best is shown")
    parser.add_argument("--patients", type=int, default=2000, help="synthetic Patients mapped for the corpus")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    from beam_pipeline.validation import guide_profiles, validator_for
    from tests.support.validation_corpus import generated_resources, golden_resources, sample_resources

    start = time.perf_counter()
    for url in guide_profiles():
        validator_for(url)
    print(f"compiled {len(guide_profiles())} profiles in {time.perf_counter() - start:.2f} s")

    by_profile: dict[str, list] = defaultdict(list)
    for profile, resource in sample_resources() + golden_resources() + generated_resources(args.patients):
        by_profile[profile].append(resource)
    print(f"{'profile':<40} {'resources':>9} {'errors':>6} {'resources/s':>12}")
    for profile in sorted(by_profile):
        resources = by_profile[profile]
        validator = validator_for(profile)
        errors = sum(len(validator.validate(r).errors) for r in resources)
        best = max(_rate(validator.validate, resources, args.seconds) for _ in range(args.runs))
        print(f"{profile.rsplit('/', 1)[-1]:<40} {len(resources):>9} {errors:>6} {best:>12,.0f}")


if __name__ == "__main__":
    main()
