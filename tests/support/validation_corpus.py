"""The resources the shipped mappings produce (the goldens and every mapping's samples), by profile: the
corpus of the validation tests, the benchmark and the agreement script, with synthetic rows and the
committed Synthea population."""

from __future__ import annotations

import copy
import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "unit" / "us_core" / "golden"


def golden_resources() -> list[tuple[str, dict[str, Any]]]:
    """(profile, resource) for every resource of every golden output."""
    out = []
    for path in sorted(GOLDEN.glob("*.expected.json")):
        for resource in json.loads(path.read_text()).get("resources", []):
            out.extend((profile, resource) for profile in resource.get("meta", {}).get("profile", []))
    return out


def sample_resources() -> list[tuple[str, dict[str, Any]]]:
    """(profile, resource) for what each shipped mapping's samples map to."""
    from beam_pipeline.mapping.mapping_set import compile_set, shipped
    from beam_pipeline.us_core import Ok, TransformConfig, transform

    sources = shipped()
    config = TransformConfig(mappings=sources, structural_validation=False)
    out = []
    for mapping in compile_set(sources).mappings:
        for _, message in mapping.samples:
            result = transform(json.dumps(message).encode(), config=config)
            if isinstance(result, Ok):
                for mapped in result.resources:
                    resource = copy.deepcopy(mapped.resource)
                    out.extend((profile, resource) for profile in resource["meta"].get("profile", []))
    return out


def generated_resources(patients: int, seed: int = 7) -> list[tuple[str, dict[str, Any]]]:
    """(profile, resource) for synthetic Synthea-like rows mapped by the shipped mappings: `patients`
    Patients and the clinical rows of one in ten of them (made-up data, dev/synthetic.py)."""
    from beam_pipeline.us_core import Ok, TransformConfig, transform
    from dev.clinical_rows import clinical_rows
    from dev.synthetic import synthetic_rows

    config = TransformConfig(structural_validation=False)
    raws = synthetic_rows(patients, seed=seed)
    for i in range(max(1, patients // 10)):
        raws.extend(json.dumps(row).encode() for row in clinical_rows(f"bench-patient-{i}", f"bench-encounter-{i}"))
    out = []
    for raw in raws:
        result = transform(raw, config=config)
        if isinstance(result, Ok):
            for mapped in result.resources:
                out.extend((profile, mapped.resource) for profile in mapped.resource["meta"].get("profile", []))
    return out


def population_resources() -> list[tuple[str, dict[str, Any]]]:
    """(profile, resource) for every resource the shipped mappings write from the committed Synthea 3.3.0
    population (tests/data/synthea-10), in the exporter's order."""
    from beam_pipeline.us_core import Ok, TransformConfig, transform
    from dev.synthea_population import messages

    config = TransformConfig(structural_validation=False)
    out = []
    for _, message in messages():
        result = transform(json.dumps(message).encode(), config=config)
        if isinstance(result, Ok):
            for mapped in result.resources:
                out.extend((profile, mapped.resource) for profile in mapped.resource["meta"].get("profile", []))
    return out


def mapped_profiles() -> list[str]:
    """Every profile the shipped mapping set declares for what it writes."""
    from beam_pipeline.us_core import TransformConfig, mapping_set

    return sorted({p for m in mapping_set(TransformConfig()).mappings for r in m.resources for p in r.profiles})


def digest(profile: str, resource: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps([profile, resource], sort_keys=True).encode()).hexdigest()


def by_profile(population_limit: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Each profile's distinct resources, in source order: goldens, samples, synthetic rows (10 Patients),
    then at most `population_limit` of the Synthea population's (all by default)."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    seen: set[str] = set()
    taken: dict[str, int] = defaultdict(int)
    sources = [golden_resources() + sample_resources() + generated_resources(10), population_resources()]
    for number, source in enumerate(sources):
        for profile, resource in source:
            key = digest(profile, resource)
            if key in seen:
                continue
            if number == 1 and population_limit is not None:
                if taken[profile] >= population_limit:
                    continue
                taken[profile] += 1
            seen.add(key)
            out[profile].append(resource)
    return dict(out)
