"""The broken variants the agreement with HAPI runs on (tests/support/validation_variants.py), offline: for
every profile the shipped mappings write, at least 50 distinct ones, each an error for our validator, so
the corpus cannot quietly shrink nor a break go unnoticed."""

from __future__ import annotations

import functools

import pytest

from beam_pipeline.validation import validate
from tests.support.validation_corpus import by_profile, mapped_profiles
from tests.support.validation_variants import broken_variants, edited_variants, profile_variants, sample

# What issue 24 asks the breaks to cover, for every profile (slices only where the profile slices).
KINDS = ("missing", "binding", "date-", "invariant-", "type", "unknown")
LEAST = 50

PROFILES = mapped_profiles()


@functools.cache
def _resources() -> dict[str, list[dict]]:
    return by_profile()


@functools.cache
def _variants(profile: str) -> list:
    return profile_variants(profile, _resources()[profile])


def _name(profile: str) -> str:
    return profile.rsplit("/", 1)[-1]


def test_every_mapped_profile_has_resources():
    assert len(PROFILES) >= 30
    assert [_name(p) for p in PROFILES if not _resources().get(p)] == []


@pytest.mark.parametrize("profile", PROFILES, ids=_name)
def test_at_least_50_distinct_broken_variants_each_an_error(profile):
    variants = _variants(profile)
    distinct = {(v.kind, v.element) for v in variants}
    assert len(distinct) == len(variants) >= LEAST
    assert len({v.element for v in variants}) >= 20  # different elements, not one element broken 50 ways
    assert [k for k in KINDS if not any(v.kind.startswith(k) for v in variants)] == []
    missed = [v.label for v in variants if not validate(v.resource, profile).errors]
    assert missed == []


def test_slices_are_broken_where_profiles_slice():
    kinds = {v.kind for p in PROFILES for v in _variants(p)}
    assert {"slice-required", "slice-max"} <= kinds


def test_variants_change_the_resource_and_are_deterministic():
    profile = next(p for p in PROFILES if _name(p) == "us-core-patient")
    resource = _resources()[profile][0]
    first = broken_variants(resource, profile) + edited_variants(resource, profile)
    again = broken_variants(resource, profile) + edited_variants(resource, profile)
    assert [(v.label, v.resource) for v in first] == [(v.label, v.resource) for v in again]
    assert all(v.resource != resource for v in first)
    assert _resources()[profile][0] == resource  # the source is never changed in place


def test_a_sample_keeps_every_kind_and_depends_on_its_seed():
    profile = next(p for p in PROFILES if _name(p) == "us-core-patient")
    variants = _variants(profile)
    kinds = {v.kind for v in variants}
    taken = sample(variants, len(kinds) + 5, seed=1)
    assert len(taken) == len(kinds) + 5
    assert {v.kind for v in taken} == kinds
    assert [v.label for v in taken] == [v.label for v in sample(variants, len(kinds) + 5, seed=1)]
    assert [v.label for v in taken] != [v.label for v in sample(variants, len(kinds) + 5, seed=2)]


def test_an_optional_element_deleted_is_an_edit_not_a_break():
    profile = next(p for p in PROFILES if _name(p) == "us-core-patient")
    resource = _resources()[profile][0]
    assert "birthDate" in resource
    edits = {v.label for v in edited_variants(resource, profile)}
    breaks = {v.label for v in broken_variants(resource, profile)}
    assert "delete:.birthDate" in edits
    assert "missing:.gender" in breaks
    assert "delete:.birthDate" not in breaks
