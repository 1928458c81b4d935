"""Loading a mapping file (beam_pipeline/mapping/feed.py, mapping_set.compile_set): every mistake is a
MappingError `file:line: what is wrong; the fix`, the line counted in the file's own text; and what a loaded
mapping does with a record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_pipeline.contracts import outcome as o
from beam_pipeline.mapping import feed
from beam_pipeline.mapping.feed import MappingError, SourceFile, compile_mapping
from beam_pipeline.mapping.mapping_set import MappingSources, compile_set
from beam_pipeline.mapping.terminology import Terminology, TerminologyFile

ROOT = Path(__file__).resolve().parents[3]
FILE = "feed/patient.yaml"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"

BASE = f"""\
# A test mapping; the tests count its lines.
id: test-patient
title: Test patient
recognise:
  types: [Patient, patients]
let:
  g: translate('gender', GENDER.lower()).code
validate:
  - fields: [Id, GENDER]
  - required: [Id]
  - dates: [BIRTHDATE]
  - when: GENDER.exists() and GENDER.lower().memberOf('genders').not()
    code: unknown_code
    detail: GENDER is not in ValueSet genders
resources:
  - profiles:
      - {US_CORE}us-core-patient
    resource:
      resourceType: Patient
      meta:
        profile: [{US_CORE}us-core-patient]
      identifier:
        - system: "{{{{ %sourceIdSystem }}}}"
          value: "{{{{ Id }}}}"
      gender: "{{{{ %g }}}}"
      birthDate: "{{{{ BIRTHDATE.toDate() }}}}"
"""

GENDER_MAP = {
    "resourceType": "ConceptMap",
    "id": "gender",
    "group": [
        {
            "target": "http://hl7.org/fhir/administrative-gender",
            "element": [{"code": "f", "target": [{"code": "female", "equivalence": "equivalent"}]}],
        }
    ],
}
GENDERS = {
    "resourceType": "ValueSet",
    "id": "genders",
    "compose": {"include": [{"system": "urn:g", "concept": [{"code": "f"}, {"code": "m"}]}]},
}
TERMINOLOGY = Terminology.from_files(
    [TerminologyFile("terminology/gender.json", GENDER_MAP), TerminologyFile("terminology/genders.json", GENDERS)]
)


def line(text: str, marker: str, occurrence: int = 1) -> int:
    """The 1-based line of the `occurrence`-th line containing `marker`."""
    found = [i for i, text_line in enumerate(text.splitlines(), 1) if marker in text_line]
    assert len(found) >= occurrence, f"{marker!r} is not in the text"
    return found[occurrence - 1]


def variant(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once"
    return text.replace(old, new)


def load(text: str, *, check_elements: bool = True, terminology: Terminology = TERMINOLOGY) -> feed.CompiledMapping:
    return compile_mapping(SourceFile(FILE, text), terminology, check_elements=check_elements)


def error(text: str, **kwargs: bool) -> MappingError:
    with pytest.raises(MappingError) as caught:
        load(text, **kwargs)
    return caught.value


def assert_error(exc: MappingError, file: str, at: int, *fragments: str) -> None:
    message = str(exc)
    assert message.startswith(f"{file}:{at}: "), message
    assert (exc.file, exc.line) == (file, at)
    for fragment in fragments:
        assert fragment in message, message


# -- the base loads -----------------------------------------------------------------------------------


def test_the_base_mapping_loads() -> None:
    mapping = load(BASE)
    assert mapping.id == "test-patient"
    assert mapping.types == ("patient", "patients")  # compared in lower case
    assert mapping.message_type == "patient"
    assert mapping.default is False
    assert mapping.business_filters is False
    assert mapping.fields == ("BIRTHDATE", "GENDER", "Id")
    assert [name for name, _ in mapping.lets] == ["g"]
    assert [step.kind for step in mapping.steps] == ["fields", "required", "dates", "when"]
    assert mapping.steps[1].code == o.MISSING_REQUIRED_FIELD  # the default code of a required check
    assert mapping.steps[3].code == o.UNKNOWN_CODE
    assert [r.resource_type for r in mapping.resources] == ["Patient"]
    assert mapping.resources[0].profiles == frozenset({US_CORE + "us-core-patient"})
    assert mapping.tag == {"system": "urn:kafka-to-fhir:mapping", "code": f"test-patient@{mapping.version}"}
    assert len(mapping.version) == 12


def test_a_loaded_mapping_checks_and_builds_a_record() -> None:
    mapping = load(BASE)
    settings = {"sourceIdSystem": ["urn:src"], "naturalKeySystem": ["urn:nk"], "today": ["2024-05-05"]}

    def run(record: dict[str, object]) -> tuple[object, object]:
        env = feed.environment(mapping, record, settings)
        problem = feed.check(mapping, record, env)
        return problem, (None if problem else mapping.resources[0].build(record, env))

    problem, resource = run({"Id": "p1", "GENDER": "F", "BIRTHDATE": "2000-01-02"})
    assert problem is None
    assert resource == {
        "resourceType": "Patient",
        "meta": {"profile": [US_CORE + "us-core-patient"]},
        "identifier": [{"system": "urn:src", "value": "p1"}],
        "gender": "female",
        "birthDate": "2000-01-02",
    }
    # No business_identifier declared: the resource's first identifier is the one (read without an expression).
    assert mapping.resources[0].business_identifier is None
    assert run({"Id": 3, "GENDER": ["F", {"x": 1}]})[0] == o.Error(
        o.VALIDATE, o.INVALID_FIELD_TYPE, "not text or a number: GENDER"
    )
    assert run({"Id": "p\x01", "GENDER": "F"})[0] == o.Error(
        o.VALIDATE, o.INVALID_CHARACTERS, "control characters in: Id"
    )
    assert run({"Id": " ", "GENDER": "F"})[0] == o.Error(o.VALIDATE, o.MISSING_REQUIRED_FIELD, "missing or empty: Id")
    assert run({"Id": "p1", "BIRTHDATE": "2000-02-30"})[0] == o.Error(
        o.VALIDATE, o.INVALID_DATE, "BIRTHDATE is not a valid date or date-time"
    )
    assert run({"Id": "p1", "GENDER": "x"})[0] == o.Error(
        o.VALIDATE, o.UNKNOWN_CODE, "GENDER is not in ValueSet genders"
    )


def test_a_filter_skips_the_row_with_its_reason() -> None:
    mapping = load(variant("validate:\n", "filter:\n  - when: Id = 'skip'\n    reason: test rows\nvalidate:\n"))
    env = feed.environment(mapping, {"Id": "skip"}, {"sourceIdSystem": ["urn:src"]})
    assert feed.check(mapping, {"Id": "skip"}, env) == o.Filtered("test rows")


def test_the_version_follows_what_the_mapping_writes_and_the_terminology_it_uses() -> None:
    files = [
        TerminologyFile("terminology/gender.json", GENDER_MAP),
        TerminologyFile("terminology/genders.json", GENDERS),
    ]
    unused = TerminologyFile("terminology/other.json", {**GENDERS, "id": "other"})
    terminology = Terminology.from_files([*files, unused])
    texts = {"terminology/gender.json": "v1", "terminology/genders.json": "v1", "terminology/other.json": "v1"}

    def version(text: str, **changed: str) -> str:
        names = {k.replace("_", "/", 1) + ".json": v for k, v in changed.items()}
        return compile_mapping(SourceFile(FILE, text), terminology, {**texts, **names}).version

    base = version(BASE)
    assert version(BASE) == base
    assert version(BASE + "# a comment\n") == base  # comments, titles and samples change nothing written
    assert version(BASE.replace("title: Test patient", "title: Another title")) == base
    assert version(BASE.replace("id: ", "id: x", 1)) != base
    assert version(BASE, terminology_gender="v2") != base
    assert version(BASE, terminology_genders="v2") != base
    assert version(BASE, terminology_other="v2") == base


# -- what the loader refuses --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "marker"),
    [
        ("  - required: [Id]\n", "  - required: [Id]: x\n", "required: [Id]: x"),
        ("      gender:", "     gender:", "     gender:"),
        ("title: Test patient\n", "title: [Test patient\n", "recognise:"),  # the list runs on to the next key
        ("  - dates: [BIRTHDATE]\n", "  - dates: [BIRTHDATE]\n\t- x\n", "\t- x"),
    ],
)
def test_bad_yaml_syntax_names_the_line(old: str, new: str, marker: str) -> None:
    text = variant(old, new)
    assert_error(error(text), FILE, line(text, marker), "not valid YAML", "fix the YAML syntax there")


def test_a_key_twice_in_one_object_names_the_second() -> None:
    text = BASE + "id: again\n"
    assert_error(error(text), FILE, line(text, "id: again"), "'id' appears twice in the same object")


def test_an_unknown_top_level_key() -> None:
    text = BASE + "extra: 1\n"
    assert_error(error(text), FILE, line(text, "extra:"), "unknown key 'extra'", "a mapping has id, title,")


def test_an_unknown_top_level_key_with_a_block_value_names_the_key_line() -> None:
    text = variant("let:\n", "lets:\n")
    assert_error(error(text), FILE, line(text, "lets:"), "unknown key 'lets'")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("id: test-patient\n", ""),
        ("id: test-patient\n", "id: Test_Patient\n"),
        ("id: test-patient\n", "id: -patient\n"),
        ("id: test-patient\n", "id: 12\n"),
        ("id: test-patient\n", f"id: {'a' * 64}\n"),
    ],
)
def test_a_missing_or_bad_id(old: str, new: str) -> None:
    text = variant(old, new)
    # A missing id is reported at the top of the document (its first key).
    at = line(text, "id:") if new else line(text, "title:")
    assert_error(error(text), FILE, at, "id is required", "lower-case letters, digits and '-', e.g. synthea-patient")


@pytest.mark.parametrize(
    ("old", "new", "marker", "fragments"),
    [
        (
            'value: "{{ Id }}"',
            'value: "{{ Id. }}"',
            "Id. }}",
            ("expression 'Id.'", "expected a name after '.' (column 4)"),
        ),
        ('value: "{{ Id }}"', 'value: "{{ Id Id }}"', "Id Id", ("unexpected 'Id' after a complete expression",)),
        ('value: "{{ Id }}"', 'value: "{{ Id & \'x }}"', "'x }}", ('unexpected character "\'" (column 6)',)),
        ('value: "{{ Id }}"', 'value: "{{ }}"', "{{ }}", ("an empty {{ }}",)),
        ('value: "{{ Id }}"', 'value: "{{ Id.substring() }}"', "substring()", ("takes 1 to 2 argument(s), not 0",)),
        ("  g: translate(", "  g: 1 +\n  h: translate(", "g: 1 +", ("expression '1 +'",)),
        ("  - dates: [BIRTHDATE]", "  - dates: [BIRTHDATE.]", "BIRTHDATE.]", ("expression 'BIRTHDATE.'",)),
        (
            "GENDER.lower().memberOf",
            "GENDER.lowr().memberOf",
            "lowr()",
            ("unknown function lowr()", "docs/mapping.md lists the functions", "(column 28)"),
        ),
        ("GENDER.lower().memberOf", "GENDER.Lower().memberOf", "Lower()", ("did you mean lower()?",)),
        (
            "translate('gender', GENDER",
            "translate(GENDER, GENDER",
            "translate(GENDER",
            ("translate() takes a ConceptMap id as a quoted literal",),
        ),
        (
            "memberOf('genders')",
            "memberOf(%g)",
            "memberOf(%g)",
            ("memberOf() takes a ValueSet id as a quoted literal",),
        ),
    ],
)
def test_an_expression_that_does_not_compile_names_its_line(
    old: str, new: str, marker: str, fragments: tuple[str, ...]
) -> None:
    text = variant(old, new)
    assert_error(error(text), FILE, line(text, marker), *fragments)


def test_an_undefined_variable_is_named_with_the_fix() -> None:
    text = variant('gender: "{{ %g }}"', 'gender: "{{ %h }}"')
    message = str(error(text))
    assert message.startswith(f"{FILE}:")
    assert "%h is not defined; define it under let, or use a built-in" in message


def test_an_undefined_variable_names_the_line_that_uses_it() -> None:
    text = variant('gender: "{{ %g }}"', 'gender: "{{ %h }}"')
    assert_error(error(text), FILE, line(text, "%h"), "%h is not defined")


def test_a_variable_used_before_it_is_defined() -> None:
    text = variant("  g: translate", "  a: GENDER.lower()\n  b: '%c.lower()'\n  c: GENDER\n  g: translate")
    text = text.replace("'%c.lower()'", '"%c.lower()"')
    assert_error(error(text), FILE, line(text, "b: "), "%c is used before it is defined; define it above")


def test_a_let_name_that_is_a_built_in() -> None:
    text = variant("  g: translate", "  today: Id\n  g: translate")
    assert_error(error(text), FILE, line(text, "today: Id"), "'today' cannot be a variable name")


@pytest.mark.parametrize(
    ("old", "new", "marker", "fragment"),
    [
        ("translate('gender',", "translate('sex',", "translate('sex'", "ConceptMap 'sex' is not among the terminology"),
        (
            "memberOf('genders')",
            "memberOf('sexes')",
            "memberOf('sexes')",
            "ValueSet 'sexes' is not among the terminology",
        ),
    ],
)
def test_an_unknown_terminology_id_is_named_with_the_fix(old: str, new: str, marker: str, fragment: str) -> None:
    message = str(error(variant(old, new)))
    assert message.startswith(f"{FILE}:")
    assert fragment in message
    assert "add it or fix the id" in message


@pytest.mark.parametrize(
    ("old", "new", "marker"),
    [
        ("translate('gender',", "translate('sex',", "translate('sex'"),
        ("memberOf('genders')", "memberOf('sexes')", "memberOf('sexes')"),
    ],
)
def test_an_unknown_terminology_id_names_the_line_that_uses_it(old: str, new: str, marker: str) -> None:
    text = variant(old, new)
    assert_error(error(text), FILE, line(text, marker), "is not among the terminology files")


@pytest.mark.parametrize(
    ("old", "new", "marker", "fragments"),
    [
        ("          value: ", "          valeu: ", "valeu:", ("Patient.identifier.valeu does not exist", "'value'")),
        ("      gender:", "      _gender:", "_gender:", ("Patient._gender does not exist",)),
    ],
)
def test_an_element_the_resource_has_not_got(old: str, new: str, marker: str, fragments: tuple[str, ...]) -> None:
    text = variant(old, new)
    assert_error(error(text), FILE, line(text, marker), *fragments)


def test_a_misspelt_element_with_a_block_value_names_its_line() -> None:
    text = variant("      identifier:", "      identifer:")
    assert_error(error(text), FILE, line(text, "identifer:"), "Patient.identifer does not exist", "'identifier'")


def test_a_misspelt_element_with_a_block_value_is_named_with_the_fix() -> None:
    message = str(error(variant("      identifier:", "      identifer:")))
    assert message.startswith(f"{FILE}:")
    assert "Patient.identifer does not exist: did you mean 'identifier'?" in message


def test_a_key_starting_with_an_underscore_is_refused_without_the_element_check() -> None:
    text = variant("      gender:", "      _gender:")
    assert_error(
        error(text, check_elements=False), FILE, line(text, "_gender:"), "keys starting with '_' are directives"
    )


def test_a_profile_url_that_is_not_us_core() -> None:
    text = variant(f"      - {US_CORE}us-core-patient\n", f"      - {US_CORE}us-core-patients\n")
    assert_error(
        error(text), FILE, line(text, "us-core-patients"), "is not a profile of US Core 6.1.0", "check the URL"
    )


def test_a_profile_of_another_resource_type() -> None:
    text = variant(
        f"      - {US_CORE}us-core-patient\n",
        f"      - {US_CORE}us-core-patient\n      - {US_CORE}us-core-encounter\n",
    )
    assert_error(
        error(text), FILE, line(text, "us-core-encounter"), "us-core-encounter constrains Encounter, not Patient"
    )


def test_a_skeleton_without_meta_profile() -> None:
    text = variant(f"      meta:\n        profile: [{US_CORE}us-core-patient]\n", "")
    exc = error(text)
    # Reported at the skeleton: its key, or its first line.
    assert exc.line in (line(text, "resource:"), line(text, "resourceType: Patient"))
    assert_error(exc, FILE, exc.line, "the skeleton needs meta.profile")


def test_a_meta_profile_that_is_not_listed_in_profiles() -> None:
    text = variant(f"profile: [{US_CORE}us-core-patient]", f"profile: [{US_CORE}us-core-race]")
    assert_error(error(text), FILE, line(text, "us-core-race"), "us-core-race is not listed in profiles")


def test_a_resource_without_profiles_asks_for_profile_urls() -> None:
    text = variant(f"  - profiles:\n      - {US_CORE}us-core-patient\n    resource:", "  - resource:")
    message = str(error(text))
    assert message.startswith(f"{FILE}:")
    assert "profiles" in message


def test_a_resource_without_profiles_is_not_told_to_list_field_names() -> None:
    text = variant(f"  - profiles:\n      - {US_CORE}us-core-patient\n    resource:", "  - resource:")
    assert "field names" not in str(error(text))


def test_a_validate_step_with_an_unknown_error_code() -> None:
    text = variant("    code: unknown_code\n", "    code: not_a_code\n")
    assert_error(
        error(text),
        FILE,
        line(text, "not_a_code"),
        "code must be one of",
        "unknown_code",
        "docs/mapping.md, error codes",
    )


def test_a_validate_step_with_two_kinds_or_extra_keys() -> None:
    text = variant("  - required: [Id]\n", "  - required: [Id]\n    dates: [X]\n")
    assert_error(error(text), FILE, line(text, "required: [Id]"), "exactly one of fields, required, dates or when")
    text = variant("  - required: [Id]\n", "  - required: [Id]\n    detail: x\n")
    assert_error(error(text), FILE, line(text, "detail: x"), "a required check takes code, required only")


@pytest.mark.parametrize(
    "detail", ["GENDER {{ GENDER }} is not known", "GENDER %g is not known", "''"], ids=["braces", "variable", "empty"]
)
def test_a_detail_that_quotes_the_record_or_is_empty(detail: str) -> None:
    text = variant("    detail: GENDER is not in ValueSet genders\n", f"    detail: {detail}\n")
    hint = "detail is required" if detail == "''" else "detail is fixed text: it may not quote the record"
    assert_error(error(text), FILE, line(text, "detail:"), hint)


def test_for_outside_a_list() -> None:
    text = variant('      gender: "{{ %g }}"\n', '      maritalStatus:\n        _for: X\n        text: "{{ t }}"\n')
    assert_error(
        error(text), FILE, line(text, "_for: X"), "_for repeats an object inside a list; put this object in a list"
    )


def test_a_resource_type_that_is_an_expression() -> None:
    text = variant("resourceType: Patient", 'resourceType: "{{ TYPE }}"')
    assert_error(error(text), FILE, line(text, "resourceType:"), "a fixed resourceType")


def test_no_resources() -> None:
    text = BASE.split("resources:")[0]
    # Reported at the top of the document (its first key).
    assert_error(error(text), FILE, line(text, "id:"), "resources is a list of at least one")


SKIP = """\
# A table the feed reads and does not write.
id: test-claim
recognise:
  types: [claim, claims]
skip: claims are billing
"""


def test_a_skip_mapping_filters_every_message_with_its_reason() -> None:
    mapping = load(SKIP)
    assert (mapping.types, mapping.resources, mapping.samples) == (("claim", "claims"), (), ())
    for record in ({}, {"Id": "c1", "GENDER": "f"}):
        env = feed.environment(mapping, record, {"sourceIdSystem": ["urn:src"]})
        assert feed.check(mapping, record, env) == o.Filtered("claims are billing")


@pytest.mark.parametrize(
    ("extra", "marker"),
    [
        ("validate:\n  - required: [Id]\n", "validate:"),
        ("samples:\n  - {MESSAGE_TYPE: claim}\n", "samples:"),
        (BASE.split("resources:")[1].join(["resources:", ""]), "resources:"),
    ],
)
def test_a_skip_mapping_takes_nothing_that_reads_or_writes(extra: str, marker: str) -> None:
    text = SKIP + extra
    assert_error(error(text), FILE, line(text, marker), "a skip mapping writes nothing")


@pytest.mark.parametrize("reason", ["", "'{{ Id }}'", "'%record'"])
def test_a_skip_reason_is_fixed_text(reason: str) -> None:
    text = variant("skip: claims are billing", f"skip: {reason}", SKIP)
    assert_error(error(text), FILE, line(text, "skip:"), "detail")


# -- a set of files -----------------------------------------------------------------------------------


def _set(*mappings: tuple[str, str], terminology: tuple[tuple[str, str], ...] | None = None) -> MappingSources:
    if terminology is None:
        terminology = (
            ("terminology/gender.json", json.dumps(GENDER_MAP)),
            ("terminology/genders.json", json.dumps(GENDERS)),
        )
    return MappingSources(
        tuple(SourceFile(name, text) for name, text in mappings),
        tuple(SourceFile(name, text) for name, text in terminology),
        "test-set",
    )


def _compile_set_error(sources: MappingSources) -> MappingError:
    with pytest.raises(MappingError) as caught:
        compile_set(sources, check_elements=False)
    return caught.value


OTHER = variant("id: test-patient", "id: other-patient")


def test_two_mappings_that_recognise_the_same_type() -> None:
    other = variant("  types: [Patient, patients]", "  types: [people, PATIENTS]", OTHER)
    exc = _compile_set_error(_set(("a/patient.yaml", BASE), ("b/people.yaml", other)))
    assert exc.file == "b/people.yaml"
    assert "type 'patients' is also recognised by a/patient.yaml; each type has one mapping" in str(exc)


def test_two_mappings_that_recognise_the_same_type_name_the_line() -> None:
    other = variant("  types: [Patient, patients]", "  types: [people, PATIENTS]", OTHER)
    exc = _compile_set_error(_set(("a/patient.yaml", BASE), ("b/people.yaml", other)))
    assert_error(exc, "b/people.yaml", line(other, "types:"), "is also recognised by a/patient.yaml")


def _defaults() -> tuple[str, str]:
    first = variant("  types: [Patient, patients]\n", "  types: [patient]\n  default: true\n")
    second = variant("  types: [Patient, patients]\n", "  types: [person]\n  default: true\n", OTHER)
    return first, second


def test_two_defaults() -> None:
    first, second = _defaults()
    exc = _compile_set_error(_set(("a.yaml", first), ("b.yaml", second)))
    assert exc.file == "b.yaml"
    assert "default: true is also set in a.yaml; only one default" in str(exc)


def test_two_defaults_name_the_line() -> None:
    first, second = _defaults()
    exc = _compile_set_error(_set(("a.yaml", first), ("b.yaml", second)))
    assert_error(exc, "b.yaml", line(second, "default: true"), "only one default")


def _same_ids() -> str:
    return variant("  types: [Patient, patients]", "  types: [person]")


def test_duplicate_ids() -> None:
    exc = _compile_set_error(_set(("a.yaml", BASE), ("b.yaml", _same_ids())))
    assert exc.file == "b.yaml"
    assert "id 'test-patient' is used twice" in str(exc)


def test_duplicate_ids_name_the_line() -> None:
    second = _same_ids()
    exc = _compile_set_error(_set(("a.yaml", BASE), ("b.yaml", second)))
    assert_error(exc, "b.yaml", line(second, "id: test-patient"), "is used twice")


def test_an_empty_set() -> None:
    assert_error(_compile_set_error(_set()), "test-set", 1, "no mapping files (*.yaml) in this set")


def test_a_broken_terminology_json_names_its_line() -> None:
    broken = '{\n "resourceType": "ConceptMap",\n "id": "gender"\n "group": []\n}\n'
    exc = _compile_set_error(_set(("a.yaml", BASE), terminology=(("terminology/gender.json", broken),)))
    assert_error(exc, "terminology/gender.json", line(broken, '"group"'), "not valid JSON", "fix the JSON there")


def test_a_terminology_file_that_is_not_an_object() -> None:
    exc = _compile_set_error(_set(("a.yaml", BASE), terminology=(("terminology/x.json", "[1, 2]"),)))
    assert_error(exc, "terminology/x.json", 1, "a terminology file is one FHIR resource (a JSON object)")


def _no_target() -> str:
    concept_map = {**GENDER_MAP, "group": [{"element": []}]}
    return json.dumps(concept_map, indent=1)


def test_a_concept_map_group_without_target() -> None:
    text = _no_target()
    exc = _compile_set_error(
        _set(("a.yaml", BASE), terminology=(("terminology/gender.json", text), ("t/genders.json", "{}")))
    )
    assert exc.file == "terminology/gender.json"
    assert "group[0] needs 'target', the target code system's url" in str(exc)


def test_a_concept_map_group_without_target_names_the_line() -> None:
    text = _no_target()
    exc = _compile_set_error(_set(("a.yaml", BASE), terminology=(("terminology/gender.json", text),)))
    assert_error(exc, "terminology/gender.json", line(text, '"group"'), "needs 'target'")


def test_two_terminology_files_with_one_id() -> None:
    genders = json.dumps(GENDERS)
    exc = _compile_set_error(
        _set(
            ("a.yaml", BASE),
            terminology=(
                ("terminology/gender.json", json.dumps(GENDER_MAP)),
                ("terminology/genders.json", genders),
                ("terminology/genders-copy.json", genders),
            ),
        )
    )
    assert exc.file == "terminology/genders-copy.json"
    assert "id 'genders' is also used by terminology/genders.json" in str(exc)


def test_a_mapping_whose_terminology_is_missing_from_the_set() -> None:
    exc = _compile_set_error(_set(("a.yaml", BASE), terminology=(("terminology/gender.json", json.dumps(GENDER_MAP)),)))
    assert exc.file == "a.yaml"
    assert "ValueSet 'genders' is not among the terminology files" in str(exc)


# -- import order -------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["beam_pipeline.mapping.feed", "beam_pipeline.mapping.mapping_set"])
def test_the_engine_modules_import_on_their_own(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_a_declared_business_identifier_is_read_from_the_written_resource() -> None:
    text = variant(
        "    resource:\n",
        "    business_identifier: identifier.where(system = 'urn:other').first()\n    resource:\n",
    ).replace(
        '          value: "{{ Id }}"\n',
        '          value: "{{ Id }}"\n        - system: urn:other\n          value: "{{ GENDER }}"\n',
    )
    resource = {"identifier": [{"system": "urn:src", "value": "p1"}, {"system": "urn:other", "value": "f"}]}
    assert load(text).resources[0].business_identifier(resource, {"$fields": {}}) == [
        {"system": "urn:other", "value": "f"}
    ]


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=12,
)


def _walked_alone(record: dict, name: str) -> object:
    """One dotted name walked on its own, the plain way: objects entered, lists flattened."""
    values = [record]
    for part in name.split("."):
        values = [c for v in values if isinstance(v, dict) for c in _flat(v.get(part))]
    return None if not values else values[0] if len(values) == 1 else values


def _flat(value: object) -> list:
    return [] if value is None else list(value) if isinstance(value, list) else [value]


@settings(max_examples=300, deadline=None)
@given(
    record=st.dictionaries(st.sampled_from("abc"), JSONISH, max_size=3),
    names=st.lists(st.lists(st.sampled_from("abc"), min_size=2, max_size=4).map(".".join), max_size=6),
)
def test_a_validate_step_walks_shared_prefixes_once_with_the_same_answers(record: dict, names: list[str]) -> None:
    found: dict = {}
    feed._walk([record], feed.field_tree(names), found)
    assert {n: found.get(n) for n in names} == {n: _walked_alone(record, n) for n in names}


# Text that reaches the quick check's edges: control characters (C0, DEL, C1), separators isprintable() refuses
# and the exact walk allows, lone surrogates, non-ASCII letters, blanks.
_EDGE_TEXT = st.text(
    alphabet=st.sampled_from(["a", "Z", "7", " ", "é", "名", "\x00", "\t", "\n", "\r", "\x1b", "\x1f", "\x7f",
                              "\x85", "\u2028", "\u00a0", "\ud800", "\U0001f600"]),
    max_size=4,
) | st.text(max_size=4)  # fmt: skip
FIELD_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _EDGE_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=12,
)
FIELD_NAMES = st.lists(
    st.lists(st.sampled_from("abc"), min_size=1, max_size=3).map(".".join), min_size=1, max_size=6, unique=True
)


@settings(max_examples=500, deadline=None)
@given(record=st.dictionaries(st.sampled_from("abc"), FIELD_VALUES, max_size=3), names=FIELD_NAMES)
def test_a_fields_check_answers_as_the_exact_walk_on_any_json(record: dict, names: list[str]) -> None:
    """The compiled fields check (its values gathered in one pass, vouched for by _clean_leaves, the exact walk
    only when that cannot) gives what _field_problem alone gives, and vouches only for what the walk passes."""
    step = feed.Step("fields", names=tuple(names))
    tree = feed.field_tree(n for n in names if "." in n)
    checks = feed._fused_checks((), (step,), Terminology())
    exact = feed._field_problem(record, tuple(names), tree)
    assert checks(record, {"$fields": {}}) == exact
    gathered: dict = {}
    source = "def gather(r):\n" + "\n".join(feed._gather_leaves(tuple(names), tree)) + "\n    return L\n"
    exec(compile(source, "<gather>", "exec"), gathered)  # noqa: S102  (source the module generates)
    if feed._clean_leaves(gathered["gather"](record)):
        assert exact is None
