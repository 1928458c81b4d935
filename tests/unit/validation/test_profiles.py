"""The validator against what our mappings produce, and every profile of the package compiles."""

from __future__ import annotations

import pytest

from beam_pipeline.validation import ERROR, guide_profiles, validate, validator_for
from tests.support.validation_corpus import generated_resources, golden_resources, sample_resources

GOLDEN = golden_resources()
SAMPLES = sample_resources()


def _errors(profile, resource):
    return [(i.path, i.key, i.detail) for i in validate(resource, profile).issues if i.severity == ERROR]


@pytest.mark.parametrize("profile", guide_profiles(), ids=lambda url: url.rsplit("/", 1)[-1])
def test_every_profile_of_the_package_compiles(profile):
    validator = validator_for(profile)
    assert validator.type
    assert all(note.reason for note in validator.not_checked)


@pytest.mark.parametrize(("profile", "resource"), GOLDEN, ids=[p.rsplit("/", 1)[-1] for p, _ in GOLDEN])
def test_golden_resources_have_no_errors(profile, resource):
    assert _errors(profile, resource) == []


def test_mapping_samples_have_no_errors():
    assert len(SAMPLES) >= 10
    failures = [(profile, errors) for profile, resource in SAMPLES if (errors := _errors(profile, resource))]
    assert failures == []


def test_a_versioned_profile_url_is_accepted_and_an_unknown_one_refused():
    assert validator_for("http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient|6.1.0").type == "Patient"
    with pytest.raises(KeyError):
        validator_for("http://example.org/StructureDefinition/nothing")


def test_issues_never_carry_values():
    profile, resource = next((p, r) for p, r in GOLDEN if r["resourceType"] == "Patient")
    broken = {**resource, "gender": "SECRET-VALUE", "birthDate": "SECRET-DATE"}
    result = validate(broken, profile)
    assert result.errors
    assert "SECRET" not in repr(result)


def test_synthetic_rows_mapped_by_every_shipped_mapping_have_no_errors():
    generated = generated_resources(60)
    assert len({profile for profile, _ in generated}) >= 20
    failures = [(profile, errors) for profile, resource in generated if (errors := _errors(profile, resource))]
    assert failures == []


def test_the_generated_checks_give_what_the_generic_walk_gives(monkeypatch):
    """specialise.py writes out Complex.check per compiled value: both must report the same issues."""
    from beam_pipeline.validation import compiler as compiler_module
    from beam_pipeline.validation.package import definitions
    from beam_pipeline.validation.validator import ProfileValidator
    from tests.support.validation_variants import broken_variants, edited_variants

    monkeypatch.setattr(compiler_module, "specialise", lambda complex_: None)
    generic = compiler_module.Compiler(definitions())
    for profile, resource in GOLDEN[:8]:
        walk = ProfileValidator(profile.split("|")[0], generic)
        changed = [v.resource for v in broken_variants(resource, profile) + edited_variants(resource, profile)]
        for broken in [resource, *changed]:
            ours, theirs = validate(broken, profile), walk.validate(broken)
            assert (ours.issues, ours.must_support) == (theirs.issues, theirs.must_support)
