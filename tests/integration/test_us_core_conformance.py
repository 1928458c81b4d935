"""Every resource mapped from include/sample_messages/ passes the local HAPI's US Core 6.1.0 $validate
with zero errors."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from beam_pipeline.us_core import Ok, TransformConfig, transform

pytestmark = pytest.mark.integration

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "include" / "sample_messages").glob("*.json"))


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_sample_is_valid_us_core(env, sample):
    result = transform(sample.read_bytes(), config=TransformConfig())
    assert isinstance(result, Ok)
    for mapped in result.resources:
        response = httpx.post(
            f"{env['FHIR_BASE_URL']}/{mapped.resource['resourceType']}/$validate",
            params={"profile": mapped.resource["meta"]["profile"][0]},
            json=mapped.resource,
            headers={"Content-Type": "application/fhir+json"},
            timeout=120,
        )
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        errors = [i.get("diagnostics") for i in outcome["issue"] if i["severity"] in ("error", "fatal")]
        assert errors == [], errors
