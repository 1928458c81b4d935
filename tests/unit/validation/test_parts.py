"""The validator's parts: value set expansion, primitive formats, invariants, slicing tables."""

from __future__ import annotations

import pytest

from beam_pipeline.validation import guide_profiles, primitives, validator_for
from beam_pipeline.validation.compiler import type_code
from beam_pipeline.validation.invariants import compile_invariant, environment
from beam_pipeline.validation.primitives import CHECKS, _text
from beam_pipeline.validation.terminology import code_table
from beam_pipeline.validation.value_rules import matches_pattern


def test_a_base_value_set_from_a_whole_code_system_is_enumerated():
    table = code_table("http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1")
    assert table.complete
    assert table.bare_codes == {"male", "female", "other", "unknown"}
    assert table.has("http://hl7.org/fhir/administrative-gender", "female") is True
    assert table.has("http://hl7.org/fhir/administrative-gender", "woman") is False


def test_a_value_set_of_an_external_system_is_not_decided():
    table = code_table("http://hl7.org/fhir/us/core/ValueSet/simple-language")
    assert not table.complete
    assert table.has("urn:ietf:bcp:47", "en") is None


def test_a_value_set_nobody_carries_is_missing_not_empty():
    table = code_table("http://example.org/ValueSet/none")
    assert table.missing and table.has(None, "x") is None


@pytest.mark.parametrize(
    ("code", "good", "bad"),
    [
        ("date", ["2020", "2020-02", "2020-02-29"], ["2020-02-30", "2021-02-29", "20200101", "2020-1-01"]),
        (
            "dateTime",
            ["2020-01-01T10:00:00Z", "2020-01-01T10:00:00.123+05:30"],
            ["2020-01-01T10:00", "2020-01-01T10:00:00"],
        ),
        ("instant", ["2020-01-01T10:00:00Z"], ["2020-01-01", "2020-01-01T24:00:00Z"]),
        ("code", ["final", "a b"], ["", " final", "a  b"]),
        ("id", ["abc-1.2"], ["a b", "x" * 65]),
        ("uri", ["http://x", "urn:oid:1.2"], ["has space", ""]),
        ("boolean", [True, False], ["true", 0]),
        ("integer", [0, -5], [1.5, True, "1"]),
        ("positiveInt", [1], [0, -1]),
        ("decimal", [1, 1.5], ["1.5", True]),
    ],
)
def test_primitive_formats(code, good, bad):
    for _ in range(2):  # the second time from what the check remembers of the first
        assert all(CHECKS[code](v) for v in good)
        assert not any(CHECKS[code](v) for v in bad)


def test_a_pattern_check_remembers_passes_only_and_stops_when_full():
    check = _text(r"[a-z][a-z0-9]*")
    assert check("abc") and check("abc")
    assert not check("ABC") and not check("ABC")  # a failure is decided again each time, never remembered
    assert not check(["abc"]) and not check(None)  # not text (and not hashable): no error
    for n in range(primitives._REMEMBERED + 10):
        assert check(f"x{n}")
    assert not check("1x")
    assert len(check.passed) == primitives._REMEMBERED
    check.passed.clear()
    assert check("y" * 200) and "y" * 200 not in check.passed  # a long text is checked, not kept


def test_invariants_run_with_choice_names_and_numbers():
    holds, _ = compile_invariant("vs-3", "value.exists() or dataAbsentReason.exists()")
    assert holds is not None
    assert holds({"valueQuantity": {"value": 1}}, environment({}))
    assert not holds({"status": "final"}, environment({}))
    age, _ = compile_invariant(
        "age-1",
        "(code.exists() or value.empty()) and (system.empty() or system = %ucum) and "
        "(value.empty() or value.hasValue().not() or value > 0)",
    )
    assert age({"value": 3, "code": "a", "system": "http://unitsofmeasure.org"}, environment({}))
    assert not age({"value": -3, "code": "a", "system": "http://unitsofmeasure.org"}, environment({}))


@pytest.mark.parametrize(
    ("key", "expression"),
    [
        ("us-core-1", "$this is DateTime implies $this.toString().length() >= 10"),
        ("txt-1", "htmlChecks()"),
        ("rng-2", "low.empty() or high.empty() or (low <= high)"),
    ],
)
def test_invariants_the_evaluator_cannot_decide_come_back_with_a_reason(key, expression):
    holds, reason = compile_invariant(key, expression)
    assert holds is None and reason


def test_period_invariant_compares_instants_across_zones():
    holds, _ = compile_invariant("per-1", "ignored")
    assert holds({"start": "2020-01-01T10:00:00+02:00", "end": "2020-01-01T09:00:00Z"}, {})
    assert not holds({"start": "2020-01-02", "end": "2020-01-01"}, {})


def test_pattern_matching_is_a_subset_match():
    pattern = {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]}
    assert matches_pattern(
        {"coding": [{"system": "x", "code": "y"}, {"system": "http://loinc.org", "code": "29463-7", "display": "w"}]},
        pattern,
    )
    assert not matches_pattern({"coding": [{"system": "http://loinc.org", "code": "3141-9"}]}, pattern)


def test_the_fhir_type_of_a_system_string_element():
    extension = [{"url": "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type", "valueUrl": "id"}]
    assert type_code({"code": "http://hl7.org/fhirpath/System.String", "extension": extension}) == "id"
    assert type_code({"code": "Quantity"}) == "Quantity"


def test_not_checked_lists_what_the_patient_profile_cannot_decide():
    notes = {
        (n.path, n.key)
        for n in validator_for("http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient").not_checked
    }
    assert ("Patient", "dom-3") in notes
    assert ("Patient.communication.language", "binding") in notes


def test_the_guide_defines_every_profile_and_extension():
    names = {url.rsplit("/", 1)[-1] for url in guide_profiles()}
    assert {"us-core-patient", "us-core-race", "us-core-blood-pressure", "us-core-observation-lab"} <= names
    assert len(names) == 59


@pytest.mark.parametrize("code", ["kg", "mm[Hg]", "/min", "kg/m2", "10*3/uL", "mL/min/{1.73_m2}", "{score}", "g.m-2"])
def test_valid_ucum_codes(code):
    from beam_pipeline.validation.ucum import is_ucum

    assert is_ucum(code)


@pytest.mark.parametrize("code", ["", "kgg", "mm[hg]", "kg/", "(kg", "{a", "k g"])
def test_invalid_ucum_codes(code):
    from beam_pipeline.validation.ucum import is_ucum

    assert not is_ucum(code)
