"""Real Synthea rows against the reference validator: from the committed population (tests/data/synthea-10),
the first row of every table for every combination of profiles it writes (each Observation profile, both
Condition categories, Organization with its Location, Coverage, CarePlan, Device, Practitioner...) goes
through the mapping, and each resource through the local HAPI's US Core 6.1.0 `$validate` against the
profile it claims: zero errors."""

from __future__ import annotations

import json

import pytest

from beam_pipeline.us_core import Ok, TransformConfig, transform
from dev.synthea_population import messages
from tests.integration.test_clinical_conformance import validation_errors

pytestmark = pytest.mark.integration


def _samples() -> list[tuple[str, dict]]:
    """(table, resource) for the first row of each table writing each combination of profiles."""
    seen: set[tuple[str, tuple[str, ...]]] = set()
    out = []
    for table, message in messages():
        outcome = transform(json.dumps(message).encode(), config=TransformConfig())
        if not isinstance(outcome, Ok):
            continue
        key = (table, tuple(m.resource["meta"]["profile"][0] for m in outcome.resources))
        if key not in seen:
            seen.add(key)
            out += [(table, m.resource) for m in outcome.resources]
    return out


def test_a_sample_of_every_synthea_table_is_valid_us_core_for_hapi(env):
    samples = _samples()
    types = {resource["resourceType"] for _, resource in samples}
    assert {"Coverage", "CarePlan", "Device", "Organization", "Location", "Practitioner", "Observation"} <= types
    problems = []
    for table, resource in samples:
        profile = resource["meta"]["profile"][0].rsplit("/", 1)[-1]
        problems += [f"{table} {profile}: {e}" for e in validation_errors(env["FHIR_BASE_URL"], resource)]
    print(f"synthea conformance: {len(samples)} resources, {len(types)} types, {len(problems)} errors")
    assert problems == []
