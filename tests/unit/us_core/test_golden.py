"""Each sample message maps to exactly its reviewed golden output (tests/unit/us_core/golden/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from beam_pipeline.us_core import TransformConfig, transform

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = sorted((ROOT / "include" / "sample_messages").glob("*.json"))
GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_sample_matches_golden(sample):
    expected = json.loads((GOLDEN / f"{sample.stem}.expected.json").read_text())
    assert transform(sample.read_bytes().strip(), config=TransformConfig()).to_json() == expected


def test_every_sample_has_a_golden_file():
    assert SAMPLES and {p.stem for p in SAMPLES} == {p.name.removesuffix(".expected.json") for p in GOLDEN.iterdir()}


def test_original_sample_fixes_what_the_original_mapping_got_wrong():
    patient = transform(SAMPLES[0].read_bytes()).resources[0].resource
    systems = {i["system"] for i in patient["identifier"]}
    assert "http://hl7.org/fhir/sid/us-ssn" in systems and "SSN" not in systems
    assert patient["address"][0]["state"] == "MA"  # not "Massachusetts"
    urls = {e["url"] for e in patient["extension"]}
    assert {
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
    } <= urls
    assert "N/A" not in json.dumps(patient) and "suffix" not in patient["name"][0]  # empty SUFFIX left out


def test_output_is_deterministic():
    raw = SAMPLES[1].read_bytes()
    assert json.dumps(transform(raw).to_json()) == json.dumps(transform(raw).to_json())
