"""Property tests: any input gives ok, filtered or error, never an exception; ok output has no empties."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beam_pipeline.us_core import Error, Filtered, Ok, TransformConfig, transform
from beam_pipeline.us_core.patient import TEXT_FIELDS
from beam_pipeline.us_core.rules import empty_values

CONFIGS = st.sampled_from(
    [TransformConfig(), TransformConfig(filter_country="US"), TransformConfig(structural_validation=False)]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
field_values = st.none() | st.just("") | st.text(max_size=30) | st.integers() | st.floats(allow_nan=False) | json_values
record = st.fixed_dictionaries(
    {"Id": st.text(max_size=10), "FIRST": st.text(max_size=10)},
    optional={name: field_values for name in TEXT_FIELDS if name not in ("Id", "FIRST")}
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
    json.dumps(result.to_json())


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
def test_any_patient_like_record(value, config):
    _check(transform(json.dumps(value).encode(), config=config))
