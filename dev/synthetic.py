"""Synthetic Synthea-like raw messages for the benchmarks and the end-to-end tests (no real person)."""

from __future__ import annotations

import json
import random

from dev import terminology_tables as tt


def synthetic_rows(n: int, seed: int = 7, id_prefix: str = "00000000-0000-4000-8000-") -> list[bytes]:
    """n Synthea-like patients.csv rows as JSON, deterministic for a seed; every value is made up."""
    rng = random.Random(seed)
    states = [name for name, _ in tt.STATES.values()]
    rows = []
    for i in range(n):
        state = rng.choice(states)
        row = {
            "Id": f"{id_prefix}{i:012d}",
            "BIRTHDATE": f"{rng.randint(1920, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "DEATHDATE": "" if rng.random() > 0.1 else "2021-01-01",
            "SSN": f"999-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
            "DRIVERS": f"S999{rng.randint(10000, 99999)}",
            "PASSPORT": f"X{rng.randint(10000000, 99999999)}X" if rng.random() > 0.5 else "",
            "PREFIX": rng.choice(["Mr.", "Mrs.", "Ms.", ""]),
            "FIRST": f"Given{i % 977}",
            "MIDDLE": rng.choice(["", "Lee", "Ann"]),
            "LAST": f"Family{i % 991}",
            "SUFFIX": rng.choice(["", "", "Jr."]),
            "MAIDEN": rng.choice(["", f"Maiden{i % 97}"]),
            "MARITAL": rng.choice(["M", "S", "D", "W", ""]),
            "RACE": rng.choice([*tt.RACE, *tt.RACE_DETAILED]),
            "ETHNICITY": rng.choice(list(tt.ETHNICITY)),
            "GENDER": rng.choice(["F", "M"]),
            "BIRTHPLACE": f"Town{i % 50}  {state}  US",
            "ADDRESS": f"{rng.randint(1, 9999)} Synthetic St",
            "CITY": f"City{i % 300}",
            "STATE": state,
            "COUNTY": f"County{i % 40}",
            "FIPS": "25017",
            "ZIP": f"{rng.randint(1000, 99999):05d}",
            "LAT": round(rng.uniform(25, 48), 6),
            "LON": round(rng.uniform(-124, -67), 6),
            "HEALTHCARE_EXPENSES": 1000.5,
            "HEALTHCARE_COVERAGE": 200.25,
            "INCOME": 50000,
        }
        rows.append(json.dumps(row).encode())
    return rows
