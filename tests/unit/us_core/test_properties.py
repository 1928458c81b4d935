"""Property tests: any input gives ok, filtered or error, never an exception; ok output has no empties and
is strict JSON a FHIR store can take (UTF-8, no NaN)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from beam_pipeline.us_core import Error, Filtered, Ok, TransformConfig, transform
from beam_pipeline.us_core.rules import empty_values
from tests.support.mappings import text_fields

TEXT_FIELDS = text_fields("patient")

# Structural validation is off by default; on here, so the property covers it too.
CONFIGS = st.sampled_from(
    [
        TransformConfig(structural_validation=True),
        TransformConfig(filter_country="US", structural_validation=True),
        TransformConfig(structural_validation=False),
    ]
)
# Python's json writes NaN, Infinity and lone surrogates (as \ud800 escapes); producers do too.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
field_values = st.none() | st.just("") | st.text(max_size=30) | st.integers() | st.floats() | json_values
# Lone surrogates and control characters, likely (hypothesis's text() never holds a surrogate), among
# any other code points.
odd_chars = st.sampled_from(["a", "Z", " ", "\u00e9", "\u0000", "\u0007", "\ud800", "\udc00"])
any_text = st.lists(odd_chars | st.characters(), max_size=10).map("".join)
record = st.fixed_dictionaries(
    {"Id": st.text(max_size=10), "FIRST": any_text},
    optional={name: field_values | any_text for name in TEXT_FIELDS if name not in ("Id", "FIRST")}
    | {
        "BIRTHDATE": st.dates().map(str) | st.text(max_size=12),
        "RACE": st.sampled_from(["white", "other", "x"]),
        "STATE": st.sampled_from(["MA", "Texas", "nowhere", ""]),
    },
)


def _check(result):
    assert isinstance(result, Ok | Filtered | Error)
    if isinstance(result, Ok):
        for mapped in result.resources:
            assert empty_values(mapped.resource) == []
            assert "N/A" not in json.dumps(mapped.resource)
    if isinstance(result, Error):
        assert result.stage in ("parse", "validate", "map") and result.code
    json.dumps(result.to_json(), allow_nan=False, ensure_ascii=False).encode("utf-8")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), CONFIGS)
def test_any_bytes(raw, config):
    _check(transform(raw, config=config))


@settings(max_examples=200, deadline=None)
@given(json_values, CONFIGS)
def test_any_json(value, config):
    _check(transform(json.dumps(value).encode(), config=config))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record, CONFIGS)
@example({"Id": "1", "FIRST": "A\ud800"}, TransformConfig(structural_validation=False))
@example({"Id": "1", "FIRST": "A", "LAT": float("nan"), "LON": 1}, TransformConfig(structural_validation=False))
def test_any_patient_like_record(value, config):
    _check(transform(json.dumps(value).encode(), config=config))
