"""Property tests across every clinical type: any row gives ok or an error record, never an exception; ok
output has no empty values, keeps the US Core rule check, is deterministic, and carries its business
identifier; error details never quote a value."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beam_pipeline.us_core import Error, Ok, TransformConfig, transform
from beam_pipeline.us_core import terminology as t
from beam_pipeline.us_core.rules import check_clinical, empty_values
from dev import terminology_tables as tt
from tests.support.mappings import text_fields

TEXT_FIELDS = {
    kind: text_fields(kind)
    for kind in ("encounter", "condition", "observation", "immunization", "allergy", "procedure", "medication")
}
# Values a real feed plausibly sends for the columns that steer the mapping, plus junk.
PLAUSIBLE = {
    "START": st.sampled_from(["2019-02-17", "2019-02-17T08:51:37Z", "2019-02-17T08:51:37", "2019-13-01", "x"]),
    "STOP": st.sampled_from(["", "2019-03-01", "2019-03-01T00:00:00Z", "2018-01-01", "never"]),
    "DATE": st.sampled_from(["2019-02-17T08:51:37Z", "2019-02-17", "2019-02-17T08:51:37+02:00", "soon"]),
    "ENCOUNTERCLASS": st.sampled_from([*tt.ENCOUNTER_CLASS, "EMERGENCY", "space", ""]),
    "CATEGORY": st.sampled_from([*tt.OBSERVATION_CATEGORY_PROFILES, "food", "medication", "weather", ""]),
    "CODE": st.sampled_from([*tt.VITAL_SIGNS, t.SMOKING_STATUS_CODE, "2339-0", "444814009", "140", ""]),
    "UNITS": st.sampled_from(["cm", "kg", "%", "mm[Hg]", "/min", "mg/dL", "{score}", ""]),
    "TYPE": st.sampled_from(["numeric", "text", "allergy", "intolerance", "boolean", ""]),
    "VALUE": st.sampled_from(["72.5", "120", "Never smoked tobacco (finding)", "high", "NaN", "1e999", ""]),
    "SYSTEM": st.sampled_from(["SNOMED-CT", "RxNorm", "LOINC", "ICD-10-CM", "Klingon", ""]),
    "SEVERITY1": st.sampled_from(["MILD", "moderate", "Severe", "extreme", ""]),
    "REACTION1": st.sampled_from(["39579001", ""]),
}
# Allergy rows use TYPE and CATEGORY with their own vocabulary.
ALLERGY_PLAUSIBLE = {
    "TYPE": st.sampled_from(["allergy", "intolerance", "", "numeric"]),
    "CATEGORY": st.sampled_from(["food", "medication", "environment", "", "weather"]),
    "CODE": st.sampled_from(["91935009", "7980", ""]),
}
field_values = (
    st.none()
    | st.just("")
    | st.text(max_size=20)
    | st.integers()
    | st.floats(allow_nan=False)
    | st.lists(st.text(max_size=3), max_size=2)
)


@st.composite
def rows(draw):
    kind = draw(st.sampled_from(sorted(TEXT_FIELDS)))
    record = {"MESSAGE_TYPE": kind}
    for name in TEXT_FIELDS[kind]:
        vocabulary = ALLERGY_PLAUSIBLE if kind == "allergy" and name in ALLERGY_PLAUSIBLE else PLAUSIBLE
        strategy = vocabulary.get(name, st.sampled_from(["id-1", "p-1", "e-1", "Some description"]))
        junk = draw(st.sampled_from(range(20))) == 0  # mostly plausible, some junk
        record[name] = draw(field_values if junk else strategy)
    return kind, record


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows(), st.booleans())
def test_any_clinical_row(kind_and_record, structural):
    _, record = kind_and_record
    raw = json.dumps(record).encode()
    config = TransformConfig(structural_validation=structural)
    result = transform(raw, config=config)
    assert isinstance(result, Ok | Error)
    assert json.dumps(result.to_json()) == json.dumps(transform(raw, config=config).to_json())
    if isinstance(result, Error):
        assert result.stage in ("parse", "validate", "map") and result.code
        # No column value reaches the detail (short values and plain words could match the detail's own
        # wording by chance, so only distinctive values are checked).
        for name, value in record.items():
            distinctive = isinstance(value, str) and len(value) > 6 and not value.replace(" ", "").isalpha()
            if name != "MESSAGE_TYPE" and distinctive:
                assert value not in result.detail
        return
    for mapped in result.resources:
        assert empty_values(mapped.resource) == []
        assert check_clinical(mapped.resource) == []
        system, value = mapped.identifier
        assert {"system": system, "value": value} in mapped.resource["identifier"]
