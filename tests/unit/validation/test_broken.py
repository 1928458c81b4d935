"""Deliberately broken variants of our mapped resources: each gives the expected error at the right path
with the right key."""

from __future__ import annotations

import copy

import pytest

from beam_pipeline.validation import ERROR, INFORMATION, validate
from tests.support.validation_corpus import golden_resources

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"


def _resource(profile_name: str, index: int = 0) -> tuple[str, dict]:
    found = [(p, r) for p, r in golden_resources() if p == US_CORE + profile_name]
    profile, resource = found[index]
    return profile, copy.deepcopy(resource)


def _has(profile, resource, path, key):
    issues = [(i.path, i.key) for i in validate(resource, profile).issues if i.severity == ERROR]
    assert (path, key) in issues, issues


def test_missing_required_element():
    profile, patient = _resource("us-core-patient")
    del patient["gender"]
    _has(profile, patient, "Patient.gender", "cardinality")


def test_missing_required_element_inside_an_array_item():
    profile, patient = _resource("us-core-patient")
    del patient["identifier"][0]["system"]
    _has(profile, patient, "Patient.identifier[0].system", "cardinality")


def test_wrong_code_from_a_required_binding():
    profile, patient = _resource("us-core-patient")
    patient["gender"] = "woman"
    _has(profile, patient, "Patient.gender", "binding")


def test_wrong_coding_in_a_required_codeable_concept():
    profile, condition = _resource("us-core-condition-encounter-diagnosis")
    condition["clinicalStatus"]["coding"][0]["code"] = "maybe"
    _has(profile, condition, "Condition.clinicalStatus", "binding")


@pytest.mark.parametrize("value", ["2020-13-01", "2020-02-30", "20200101", "2020-01-01T10:00"])
def test_bad_date(value):
    profile, patient = _resource("us-core-patient")
    patient["birthDate"] = value
    _has(profile, patient, "Patient.birthDate", "format")


def test_bad_date_time_in_a_choice():
    profile, observation = _resource("us-core-body-weight")
    key = next(k for k in observation if k.startswith("effective"))
    observation[key] = "2020-01-01T25:00:00Z"
    _has(profile, observation, f"Observation.{key}", "format")


def test_broken_invariant():
    profile, patient = _resource("us-core-patient")
    patient["name"] = [{"use": "official"}]
    _has(profile, patient, "Patient.name[0]", "us-core-6")


def test_broken_base_invariant_on_a_datatype():
    profile, encounter = _resource("us-core-encounter")
    encounter["period"] = {"start": "2020-02-01", "end": "2020-01-01"}
    _has(profile, encounter, "Encounter.period", "per-1")


def test_missing_required_slice():
    profile, observation = _resource("us-core-body-weight")
    observation["category"] = [{"coding": [{"system": "http://example.org", "code": "other"}]}]
    _has(profile, observation, "Observation.category:VSCat", "slice:category")


def test_wrong_fixed_value_in_a_slice():
    profile, observation = _resource("us-core-body-weight")
    observation["valueQuantity"]["system"] = "http://example.org/units"
    _has(profile, observation, "Observation.valueQuantity.system", "fixed")


def test_wrong_pattern():
    profile, observation = _resource("us-core-body-weight")
    observation["code"] = {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]}
    _has(profile, observation, "Observation.code", "pattern")


def test_wrong_type():
    profile, patient = _resource("us-core-patient")
    patient["gender"] = 1
    _has(profile, patient, "Patient.gender", "type")


def test_array_where_a_single_value_belongs_and_the_reverse():
    profile, patient = _resource("us-core-patient")
    patient["gender"] = [patient["gender"]]
    patient["name"] = patient["name"][0]
    _has(profile, patient, "Patient.gender", "type")
    _has(profile, patient, "Patient.name", "type")


def test_unknown_element_and_choice_type_not_allowed():
    profile, observation = _resource("us-core-body-weight")
    observation["valueAddress"] = {"city": "x"}
    observation["colour"] = "blue"
    _has(profile, observation, "Observation.colour", "structure")
    _has(profile, observation, "Observation.valueAddress", "structure")


def test_empty_values_break_ele_1():
    profile, patient = _resource("us-core-patient")
    patient["address"] = [{}]
    _has(profile, patient, "Patient.address[0]", "ele-1")


def test_extension_checked_by_the_definition_its_url_names():
    profile, patient = _resource("us-core-patient")
    race = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
    patient["extension"] = [e for e in patient.get("extension", []) if e["url"] != race]
    patient["extension"].append({"url": race, "extension": [{"url": "detailed", "valueCoding": {"code": "x"}}]})
    _has(profile, patient, f"Patient.extension[{len(patient['extension']) - 1}].extension:text", "slice:extension")


def test_extension_with_value_and_nested_extensions_breaks_ext_1():
    profile, patient = _resource("us-core-patient")
    patient["extension"] = [
        {"url": "http://example.org/x", "valueString": "a", "extension": [{"url": "y", "valueString": "b"}]}
    ]
    _has(profile, patient, "Patient.extension[0]", "ext-1")


def test_absent_must_support_is_reported_apart():
    profile, patient = _resource("us-core-patient")
    patient.pop("birthDate", None)
    result = validate(patient, profile)
    assert ("Patient.birthDate", "must-support", INFORMATION) in [
        (i.path, i.key, i.severity) for i in result.must_support
    ]
    assert not result.errors


def test_ext_1_inside_a_profiled_extension():
    profile, patient = _resource("us-core-patient")
    race = next(e for e in patient["extension"] if e["url"].endswith("us-core-race"))
    race["valueString"] = "x"
    index = patient["extension"].index(race)
    _has(profile, patient, f"Patient.extension[{index}]", "ext-1")
    del race["valueString"]
    race["extension"][0]["extension"] = [{"url": "x", "valueString": "y"}]
    _has(profile, patient, f"Patient.extension[{index}].extension[0]", "ext-1")


def test_unknown_code_of_a_carried_code_system_whatever_the_binding():
    profile, patient = _resource("us-core-patient")
    index = next(i for i, e in enumerate(patient["identifier"]) if "type" in e)
    patient["identifier"][index]["type"]["coding"][0]["code"] = "not-a-v2-0203-code"
    _has(profile, patient, f"Patient.identifier[{index}].type.coding[0]", "code-system")


@pytest.mark.parametrize(
    "reference", ["Practitioner/1", "Practitioner?identifier=x|y", "http://example.org/fhir/Group/9"]
)
def test_reference_to_a_type_the_profile_does_not_allow(reference):
    profile, condition = _resource("us-core-condition-encounter-diagnosis")
    condition["subject"] = {"reference": reference}
    _has(profile, condition, "Condition.subject", "reference")


def test_a_primitive_s_extension_object_is_checked_as_an_element():
    profile, patient = _resource("us-core-patient")
    patient["_birthDate"] = {"extension": [{"url": "http://example.org/x"}], "colour": "x"}
    _has(profile, patient, "Patient._birthDate.colour", "structure")
    _has(profile, patient, "Patient._birthDate.extension[0]", "ext-1")


def test_a_ucum_quantity_with_a_code_ucum_does_not_have():
    profile, observation = _resource("us-core-observation-lab")
    observation["valueQuantity"]["code"] = "not-a-unit"
    _has(profile, observation, "Observation.valueQuantity.code", "code-system")


def test_a_coding_without_a_system_is_in_no_required_value_set():
    profile, condition = _resource("us-core-condition-encounter-diagnosis")
    del condition["clinicalStatus"]["coding"][0]["system"]
    _has(profile, condition, "Condition.clinicalStatus", "binding")


def test_a_slice_told_apart_by_its_binding_is_required():
    from tests.support.validation_corpus import generated_resources

    profile, condition = next(
        (p, copy.deepcopy(r))
        for p, r in generated_resources(10)
        if p.endswith("us-core-condition-problems-health-concerns")
    )
    assert not validate(condition, profile).errors
    condition["category"] = [{"coding": [{"system": "http://example.org/c", "code": "x"}]}]
    _has(profile, condition, "Condition.category:us-core", "slice:category")


def test_a_remembered_coding_does_not_let_a_changed_one_pass():
    profile, patient = _resource("us-core-patient")
    index = next(i for i, e in enumerate(patient["identifier"]) if "type" in e)
    coding = patient["identifier"][index]["type"]["coding"][0]
    assert not validate(patient, profile).errors  # now remembered
    coding["userSelected"] = True
    assert not validate(patient, profile).errors
    coding["userSelected"] = 1
    _has(profile, patient, f"Patient.identifier[{index}].type.coding[0].userSelected", "type")
    del coding["userSelected"]
    coding["code"] = "not-a-v2-0203-code"
    _has(profile, patient, f"Patient.identifier[{index}].type.coding[0]", "code-system")


@pytest.mark.parametrize(
    ("profile_name", "where"),
    [
        ("us-core-patient", ("extension", 0, "url")),
        ("us-core-patient", ("identifier", "typed", "type", "coding", 0, "system")),
        ("us-core-patient", ("identifier", "typed", "type", "coding", 0, "code")),
        ("us-core-condition-encounter-diagnosis", ("clinicalStatus", "coding", 0, "code")),
        ("us-core-condition-encounter-diagnosis", ("category", 0, "coding", 0, "system")),
        ("us-core-body-weight", ("valueQuantity", "code")),
    ],
)
def test_a_url_system_or_code_given_as_an_array_is_a_type_error_not_a_crash(profile_name, where):
    profile, resource = _resource(profile_name)
    if "typed" in where:  # the identifier that carries a type
        where = tuple(
            next(i for i, e in enumerate(resource["identifier"]) if "type" in e) if p == "typed" else p for p in where
        )
    holder = resource
    for step in where[:-1]:
        holder = holder[step]
    holder[where[-1]] = [holder[where[-1]]]
    path = resource["resourceType"] + "".join(f"[{p}]" if type(p) is int else f".{p}" for p in where)
    _has(profile, resource, path, "type")


@pytest.mark.parametrize(
    ("profile_name", "key"), [("us-core-body-weight", "vs-1"), ("us-core-observation-lab", "us-core-1")]
)
def test_an_observation_s_effective_date_time_must_give_the_day(profile_name, key):
    profile, observation = _resource(profile_name)
    observation.pop("effectivePeriod", None)
    observation["effectiveDateTime"] = "2020-01-15"
    assert not validate(observation, profile).errors
    for shorter in ("2020", "2020-01"):
        observation["effectiveDateTime"] = shorter
        _has(profile, observation, "Observation.effectiveDateTime", key)


def test_a_concept_s_coding_of_a_carried_code_system_without_a_code_names_no_code_of_it():
    profile, condition = _resource("us-core-condition-encounter-diagnosis")
    del condition["clinicalStatus"]["coding"][0]["code"]
    _has(profile, condition, "Condition.clinicalStatus.coding[0]", "code-system")
    profile, patient = _resource("us-core-patient")
    index = next(i for i, e in enumerate(patient["identifier"]) if "type" in e)
    del patient["identifier"][index]["type"]["coding"][0]["code"]
    _has(profile, patient, f"Patient.identifier[{index}].type.coding[0]", "code-system")
    # organization-type: bound by example only, its CodeSystem carried all the same (as HAPI has it).
    profile, organization = _resource("us-core-organization")
    del organization["type"][0]["coding"][0]["code"]
    _has(profile, organization, "Organization.type[0].coding[0]", "code-system")


def test_a_lone_coding_without_a_code_is_let_through_as_hapi_does():
    profile, encounter = _resource("us-core-encounter")
    del encounter["class"]["code"]
    assert "code-system" not in [i.key for i in validate(encounter, profile).errors]


def test_us_core_3_a_screening_quantity_s_system_is_ucum():
    from tests.support.validation_corpus import generated_resources

    profile, observation = next(
        (p, copy.deepcopy(r))
        for p, r in generated_resources(10)
        if p.endswith("us-core-observation-screening-assessment") and "valueQuantity" in r
    )
    assert not validate(observation, profile).errors
    observation["valueQuantity"]["system"] = "http://example.org/units"
    _has(profile, observation, "Observation", "us-core-3")


def test_us_core_3_on_value_x_reads_the_quantity_s_own_value_and_always_holds():
    # As HAPI evaluates it: on Observation.value[x], `value` is the Quantity's decimal, never a Quantity.
    profile, observation = _resource("us-core-observation-lab")
    observation["valueQuantity"]["system"] = "http://example.org/units"
    assert "us-core-3" not in [i.key for i in validate(observation, profile).issues]
