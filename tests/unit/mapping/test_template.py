"""Resource skeletons compiled to builders (beam_pipeline/mapping/template.py): absent stays absent, fixed
parts are always written, `_if`, `_for`, interpolation, list splicing, and the two data conditions a builder
raises (several values for one element, a placeholder)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from beam_pipeline.mapping import runtime
from beam_pipeline.mapping.template import TemplateError, Uses, compile_template, element_paths, expression_text
from beam_pipeline.mapping.terminology import Terminology, TerminologyFile


def builder(skeleton: dict[str, Any], terminology: Terminology | None = None) -> Any:
    uses = Uses()
    compiled = compile_template(copy.deepcopy(skeleton), uses)
    namespace: dict[str, Any] = {**runtime.NAMESPACE, "tx": terminology}
    exec(compiled.source, namespace)  # noqa: S102
    build = namespace["build"]

    def run(record: dict[str, Any], env: dict[str, list[Any]] | None = None) -> dict[str, Any] | None:
        full = {"record": [record], **(env or {})}
        full["$fields"] = runtime.read_fields(record, uses.fields, uses.paths)
        return build(record, full)

    run.paths = compiled.paths  # type: ignore[attr-defined]
    run.uses = uses  # type: ignore[attr-defined]
    return run


def build(skeleton: dict[str, Any], record: dict[str, Any], env: dict[str, list[Any]] | None = None) -> Any:
    return builder(skeleton)(record, env)


def _empties(node: Any, path: str = "") -> list[str]:
    """Paths of empty strings, lists and objects anywhere in a resource."""
    found = []
    if node in ("", [], {}):
        found.append(path)
    if isinstance(node, dict):
        for key, value in node.items():
            found += _empties(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _empties(value, f"{path}[{i}]")
    return found


PATIENT = {
    "resourceType": "Patient",
    "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
    "identifier": [
        {"system": "urn:id", "value": "{{ Id }}"},
        {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "{{ SSN }}"},
    ],
    "name": [{"use": "official", "family": "{{ LAST }}", "given": ["{{ FIRST }}", "{{ MIDDLE }}"]}],
    "telecom": [{"system": "email", "value": "{{ EMAIL }}"}],
    "birthDate": "{{ BIRTHDATE.toDate() }}",
    "address": [{"line": ["{{ ADDRESS }}"], "city": "{{ CITY }}", "postalCode": "{{ ZIP }}"}],
    "maritalStatus": {"coding": [{"system": "urn:m", "code": "{{ MARITAL }}"}], "text": "{{ MARITAL }}"},
}


def test_a_full_record_fills_every_element() -> None:
    record = {
        "Id": "p1", "SSN": "999", "LAST": "Doe", "FIRST": "Ann", "MIDDLE": "B", "EMAIL": "a@b",
        "BIRTHDATE": "2000-01-02", "ADDRESS": "1 Main St", "CITY": "Boston", "ZIP": 2134, "MARITAL": "M",
    }  # fmt: skip
    assert build(PATIENT, record) == {
        "resourceType": "Patient",
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
        "identifier": [
            {"system": "urn:id", "value": "p1"},
            {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999"},
        ],
        "name": [{"use": "official", "family": "Doe", "given": ["Ann", "B"]}],
        "telecom": [{"system": "email", "value": "a@b"}],
        "birthDate": "2000-01-02",
        "address": [{"line": ["1 Main St"], "city": "Boston", "postalCode": "2134"}],
        "maritalStatus": {"coding": [{"system": "urn:m", "code": "M"}], "text": "M"},
    }


def test_absent_stays_absent() -> None:
    # Empty, blank and null values are absent; so is everything built only from them.
    record = {"Id": "p1", "SSN": "", "LAST": "  ", "FIRST": "Ann", "MIDDLE": None, "EMAIL": [], "CITY": "Boston"}
    resource = build(PATIENT, record)
    assert resource == {
        "resourceType": "Patient",
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
        "identifier": [{"system": "urn:id", "value": "p1"}],
        "name": [{"use": "official", "given": ["Ann"]}],
        "address": [{"city": "Boston"}],
    }
    assert _empties(resource) == []


def test_a_record_that_gives_nothing_builds_nothing() -> None:
    assert build(PATIENT, {}) is None
    assert build(PATIENT, {"Id": "", "FIRST": " "}) is None


def test_fixed_objects_are_always_written() -> None:
    skeleton = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1-8"}], "text": "fixed"},
        "category": [{"coding": [{"system": "urn:c", "code": "vital-signs"}]}],
        "valueString": "{{ VALUE }}",
    }
    assert build(skeleton, {"VALUE": "x"}) == {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1-8"}], "text": "fixed"},
        "category": [{"coding": [{"system": "urn:c", "code": "vital-signs"}]}],
        "valueString": "x",
    }


def test_fixed_parts_are_written_even_when_the_expressions_next_to_them_give_nothing() -> None:
    skeleton = {"resourceType": "Observation", "id": "{{ Id }}", "code": {"text": "fixed"}}
    assert build(skeleton, {"Id": "o1"}) == {"resourceType": "Observation", "id": "o1", "code": {"text": "fixed"}}


def test_a_dynamic_object_is_dropped_when_none_of_its_expressions_gave_a_value() -> None:
    skeleton = {
        "resourceType": "Encounter",
        "id": "{{ Id }}",
        # Fixed system and type next to expressions: dropped with them.
        "identifier": [{"system": "urn:s", "type": {"text": "MR"}, "value": "{{ MRN }}"}],
        "period": {"start": "{{ START.toDateTime() }}", "end": "{{ STOP.toDateTime() }}"},
    }
    assert build(skeleton, {"Id": "e1"}) == {"resourceType": "Encounter", "id": "e1"}
    assert build(skeleton, {"Id": "e1", "STOP": "2020-01-02"}) == {
        "resourceType": "Encounter",
        "id": "e1",
        "period": {"end": "2020-01-02"},
    }
    assert build(skeleton, {"Id": "e1", "MRN": 7}) == {
        "resourceType": "Encounter",
        "id": "e1",
        "identifier": [{"system": "urn:s", "type": {"text": "MR"}, "value": "7"}],
    }


def test_if_writes_the_object_only_when_true() -> None:
    skeleton = {
        "resourceType": "Patient",
        "id": "{{ Id }}",
        "name": [
            {"use": "official", "family": "{{ LAST }}"},
            {"_if": "MAIDEN.exists()", "use": "maiden", "family": "{{ MAIDEN }}"},
            {"_if": "{{ LAST = 'Doe' }}", "use": "nickname", "family": "{{ LAST }}"},
        ],
        "maritalStatus": {"_if": "MARITAL = 'M'", "text": "{{ MARITAL }}"},
    }
    assert build(skeleton, {"Id": "p", "LAST": "Roe"}) == {
        "resourceType": "Patient", "id": "p", "name": [{"use": "official", "family": "Roe"}],
    }  # fmt: skip
    assert build(skeleton, {"Id": "p", "LAST": "Doe", "MAIDEN": "Poe", "MARITAL": "M"}) == {
        "resourceType": "Patient",
        "id": "p",
        "name": [
            {"use": "official", "family": "Doe"},
            {"use": "maiden", "family": "Poe"},
            {"use": "nickname", "family": "Doe"},
        ],
        "maritalStatus": {"text": "M"},
    }
    # Empty and several values are not true.
    assert "maritalStatus" not in build(skeleton, {"Id": "p", "MARITAL": ["M", "M"]})


def test_a_fixed_object_under_a_true_if_is_written() -> None:
    skeleton = {
        "resourceType": "Patient",
        "id": "{{ Id }}",
        "maritalStatus": {"coding": [{"_if": "MARRIED = 'yes'", "system": "urn:m", "code": "M"}], "text": "{{ T }}"},
    }
    assert build(skeleton, {"Id": "p", "MARRIED": "yes"}) == {
        "resourceType": "Patient",
        "id": "p",
        "maritalStatus": {"coding": [{"system": "urn:m", "code": "M"}]},
    }


def test_for_repeats_an_object_per_item_with_names_read_from_the_item() -> None:
    skeleton = {
        "resourceType": "Patient",
        "id": "{{ Id }}",
        "name": [
            {"use": "official", "family": "{{ LAST }}"},
            {
                "_for": "{{ ALIASES }}",
                "use": "nickname",
                "family": "{{ family }}",
                "given": ["{{ given }}"],
                # %record is still the whole record; a name of the record read inside the item is not found.
                "text": "{{ %record.Id & ':' & family & ':' & Id }}",
            },
        ],
    }
    record = {
        "Id": "p",
        "LAST": "Doe",
        "ALIASES": [
            {"family": "X", "given": ["a", "b"]},
            {"family": "", "given": []},
            "not an object",
            {"family": "Y"},
        ],
    }
    assert build(skeleton, record) == {
        "resourceType": "Patient",
        "id": "p",
        "name": [
            {"use": "official", "family": "Doe"},
            {"use": "nickname", "family": "X", "given": ["a", "b"], "text": "p:X:"},
            {"use": "nickname", "text": "p::"},
            {"use": "nickname", "text": "p::"},
            {"use": "nickname", "family": "Y", "text": "p:Y:"},
        ],
    }
    # No items, no objects.
    assert build(skeleton, {"Id": "p", "LAST": "Doe"})["name"] == [{"use": "official", "family": "Doe"}]


def test_for_over_a_nested_list_with_a_filter_and_a_nested_for() -> None:
    skeleton = {
        "resourceType": "Patient",
        "id": "{{ Id }}",
        "contact": [
            {
                "_for": "CONTACTS.where(active = true)",
                "name": {"family": "{{ name }}"},
                "telecom": [{"_for": "phones", "system": "phone", "value": "{{ $this }}"}],
            }
        ],
    }
    record = {
        "Id": "p",
        "CONTACTS": [
            {"active": True, "name": "A", "phones": ["1", "2"]},
            {"active": False, "name": "B", "phones": ["3"]},
            {"active": True, "name": "C"},
        ],
    }
    assert build(skeleton, record)["contact"] == [
        {"name": {"family": "A"}, "telecom": [{"system": "phone", "value": "1"}, {"system": "phone", "value": "2"}]},
        {"name": {"family": "C"}},
    ]


def test_interpolation() -> None:
    skeleton = {"resourceType": "Patient", "id": "{{ Id }}", "text": {"div": "a {{ X }} b {{ Y }}"}}
    assert build(skeleton, {"Id": "p", "X": "1", "Y": 2})["text"] == {"div": "a 1 b 2"}
    assert build(skeleton, {"Id": "p", "X": "1", "Y": True})["text"] == {"div": "a 1 b true"}
    # An absent part makes the whole string absent, and so the object around it.
    assert "text" not in build(skeleton, {"Id": "p", "X": "1"})
    # So do several values for one part.
    assert "text" not in build(skeleton, {"Id": "p", "X": ["1", "2"], "Y": "3"})
    # A date-time reads as its FHIR text.
    moment = {"resourceType": "Patient", "id": "at {{ T.toDateTime() }}!"}
    assert build(moment, {"T": "2020-01-02T03:04Z"})["id"] == "at 2020-01-02T03:04:00Z!"


def test_list_items_splice_collections() -> None:
    skeleton = {"resourceType": "Patient", "id": "{{ Id }}", "name": [{"given": ["{{ L }}", "{{ X }}", "fixed"]}]}
    assert build(skeleton, {"Id": "p", "X": "1", "L": ["a", "b"]})["name"] == [{"given": ["a", "b", "1", "fixed"]}]
    # Absent items are dropped; a fixed item alone does not make the object present.
    assert "name" not in build(skeleton, {"Id": "p"})


def test_several_values_for_a_single_element_raise_several_values() -> None:
    run = builder({"resourceType": "Patient", "id": "{{ Id }}", "gender": "{{ G }}"})
    with pytest.raises(runtime.SeveralValues) as caught:
        run({"Id": "p", "G": ["f", "m", "x"]})
    assert caught.value.count == 3
    assert run.paths[caught.value.path_id] == ("gender",)


@pytest.mark.parametrize("value", ["N/A", "n/a", " N/A "])
def test_a_placeholder_raises_placeholder(value: str) -> None:
    run = builder({"resourceType": "Patient", "id": "{{ Id }}", "name": [{"given": ["{{ FIRST }}"]}]})
    with pytest.raises(runtime.Placeholder) as caught:
        run({"Id": "p", "FIRST": value})
    assert run.paths[caught.value.path_id] == ("name", 0, "given", 0)


@pytest.mark.parametrize("value", ["Na", "Null", "None", "NA/", "N/AX"])
def test_real_values_that_look_missing_are_written(value: str) -> None:
    assert build({"resourceType": "Patient", "id": "{{ Id }}"}, {"Id": value}) == {
        "resourceType": "Patient",
        "id": value,
    }


def test_two_built_resources_share_no_mutable_objects() -> None:
    terminology = Terminology.from_files(
        [TerminologyFile("m.json", {"resourceType": "ConceptMap", "id": "m", "group": [
            {"target": "urn:t", "element": [{"code": "a", "target": [{"code": "A", "display": "Aa"}]}]}]})]
    )  # fmt: skip
    skeleton = {
        "resourceType": "Observation",
        "meta": {"profile": ["urn:p"]},
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1-8"}, "{{ translate('m', C) }}"]},
        "category": [{"coding": [{"system": "urn:c", "code": "x"}]}],
        "subject": "{{ reference('Patient', 'urn:s', P) }}",
        "valueString": "{{ V }}",
    }
    run = builder(skeleton, terminology)
    record = {"C": "a", "P": "p1", "V": "v"}
    first, second = run(record), run(record)
    assert first == second
    pristine = copy.deepcopy(second)
    first["meta"]["tag"] = [{"code": "t"}]
    first["meta"]["profile"].append("urn:q")
    first["code"]["coding"][0]["code"] = "changed"
    first["code"]["coding"][1]["code"] = "changed"
    first["category"][0]["coding"].clear()
    first["subject"]["reference"] = "changed"
    assert second == pristine
    assert run(record) == pristine
    assert terminology.translate("m", ["a"]) == [{"system": "urn:t", "code": "A", "display": "Aa"}]


def test_an_object_copied_from_the_record_is_not_shared() -> None:
    run = builder({"resourceType": "Observation", "valueCodeableConcept": "{{ CONCEPT }}"})
    record = {"CONCEPT": {"text": "t"}}
    first, second = run(record), run(record)
    first["valueCodeableConcept"]["text"] = "changed"
    assert second["valueCodeableConcept"] == {"text": "t"}
    assert record == {"CONCEPT": {"text": "t"}}


def test_a_concatenation_of_absent_values_is_absent() -> None:
    resource = build({"resourceType": "Patient", "id": "{{ Id }}", "name": [{"text": "{{ A & B }}"}]}, {"Id": "p"})
    assert _empties(resource) == []


def test_uses_collects_what_the_expressions_need() -> None:
    run = builder(
        {
            "resourceType": "Encounter",
            "subject": "{{ reference('Patient', %sourceIdSystem, PATIENT) }}",
            "class": "{{ translate('encounter-class', CLASS) }}",
            "type": [{"_for": "TYPES", "text": "{{ text }}", "_if": "%flag"}],
            "status": "{{ iif(STATUS.memberOf('statuses'), STATUS) }}",
        },
        Terminology(),
    )
    uses = run.uses
    assert uses.variables == {"sourceIdSystem", "flag"}
    assert uses.translations == {"encounter-class"}
    assert uses.value_sets == {"statuses"}
    assert uses.references == {"Patient"}
    assert uses.fields == {"PATIENT", "CLASS", "TYPES", "STATUS"}  # `text` is read from the items


def test_expression_text_and_element_paths() -> None:
    assert expression_text("{{ A.lower() }}") == "A.lower()"
    assert expression_text("  {{A}}  ") == "A"
    assert expression_text("a {{ A }}") is None
    assert expression_text("{{ A }}{{ B }}") is None
    skeleton = {"resourceType": "Patient", "name": [{"_if": "X", "given": ["{{ A }}"]}], "meta": {"profile": ["p"]}}
    assert element_paths(skeleton) == [
        (("resourceType",), ("resourceType",)),
        (("name",), ("name",)),
        (("name", "given"), ("name", 0, "given")),
        (("meta",), ("meta",)),
        (("meta", "profile"), ("meta", "profile")),
    ]


@pytest.mark.parametrize(
    ("skeleton", "path", "fragment"),
    [
        ({"resourceType": "Patient", "_gender": "x"}, ("_gender",), "keys starting with '_' are directives"),
        (
            {"resourceType": "Patient", "name": {"_for": "X", "text": "a"}},
            ("name", "_for"),
            "put this object in a list",
        ),
        ({"resourceType": "Patient", "name": [{"_for": 3}]}, ("name", 0), "_for takes an expression"),
        ({"resourceType": "Patient", "name": {"_if": True, "text": "a"}}, ("name", "_if"), "_if takes an expression"),
        ({"resourceType": "Patient", "name": [["{{ A }}"]]}, ("name", 0), "a list inside a list is not FHIR"),
        ({"resourceType": "Patient", "id": "{{ }}"}, ("id",), "an empty {{ }}"),
        ({"resourceType": "Patient", "id": "{{ A. }}"}, ("id",), "expected a name after '.' (column 3)"),
        ({"resourceType": "Patient", "id": "x {{ A..b }} y"}, ("id",), "expression 'A..b'"),
        ({"resourceType": "Patient", "name": [{"_for": "A.nope()"}]}, ("name", 0, "_for"), "unknown function nope()"),
    ],
)
def test_template_errors_name_the_skeleton_path(skeleton: dict[str, Any], path: tuple[Any, ...], fragment: str) -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template(skeleton, Uses())
    assert fragment in str(caught.value)
    assert caught.value.path == path
