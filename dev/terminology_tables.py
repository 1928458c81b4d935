"""The shipped terminology files (mappings/terminology/) as the lookup tables tests and synthetic data
reason with: each table is read from its ConceptMap, so a test states what the data says, never a second
copy of it."""

from __future__ import annotations

# beam_pipeline.us_core first: importing beam_pipeline.mapping.mapping_set before it is a circular import
# (mapping.feed imports us_core.outcome, whose package imports us_core.stages, which imports mapping_set).
import beam_pipeline.us_core  # noqa: F401
from beam_pipeline.mapping.mapping_set import compiled


def concept_map(map_id: str) -> dict[str, tuple[dict[str, str], ...]]:
    """source code -> its target codings."""
    return dict(compiled().terminology.maps[map_id])


def first_targets(map_id: str) -> dict[str, tuple[str, str | None]]:
    """source code -> (code, display) of its first target."""
    return {code: (found[0]["code"], found[0].get("display")) for code, found in concept_map(map_id).items()}


ENCOUNTER_CLASS = first_targets("encounter-class")
RACE = first_targets("omb-race")
RACE_DETAILED = first_targets("race-detailed")
ETHNICITY = first_targets("omb-ethnicity")
MARITAL = first_targets("marital-status")
# USPS code -> (name, FIPS code)
STATES = {usps: (display or "", fips) for usps, (fips, display) in first_targets("us-state-fips").items()}
OBSERVATION_CATEGORY_PROFILES = {
    category: profile for category, (profile, _) in first_targets("observation-category-profile").items()
}
# LOINC vital sign -> (profile, units its profile allows, further codings its profile needs)
VITAL_SIGNS = {
    code: (
        profile,
        frozenset(c["code"] for c in concept_map("vital-sign-units").get(code, ())),
        tuple((c["code"], c.get("display")) for c in concept_map("vital-sign-codings").get(code, ())),
    )
    for code, (profile, _) in first_targets("vital-sign-profile").items()
}
