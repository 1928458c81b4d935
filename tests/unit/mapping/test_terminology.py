"""ConceptMaps and ValueSets (beam_pipeline/mapping/terminology.py): $translate's semantics over exact codes,
ValueSet membership from listed concepts or a whole CodeSystem file, and the files it refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from beam_pipeline.mapping import runtime
from beam_pipeline.mapping.terminology import Terminology, TerminologyError, TerminologyFile

ROOT = Path(__file__).resolve().parents[3]


def concept_map(ident: str, *groups: dict[str, Any]) -> TerminologyFile:
    return TerminologyFile(
        f"terminology/{ident}.json", {"resourceType": "ConceptMap", "id": ident, "group": list(groups)}
    )


def element(code: str, *targets: dict[str, Any]) -> dict[str, Any]:
    return {"code": code, "target": list(targets)}


MAP = concept_map(
    "m",
    {
        "source": "urn:source",
        "target": "urn:t1",
        "element": [
            element("a", {"code": "A", "display": "Aa", "equivalence": "equivalent"}),
            element(
                "b", {"code": "B1", "equivalence": "wider"}, {"code": "B2", "display": "", "equivalence": "narrower"}
            ),
            element("u", {"code": "U", "equivalence": "unmatched"}),
            element("d", {"code": "D", "equivalence": "disjoint"}, {"code": "D2", "equivalence": "relatedto"}),
            element("none"),
        ],
    },
    {"target": "urn:t2", "element": [element("a", {"code": "A2", "display": "Second"})]},
)


@pytest.fixture
def terminology() -> Terminology:
    return Terminology.from_files([MAP])


def test_translate_an_exact_match(terminology: Terminology) -> None:
    assert terminology.translate("m", ["b"]) == [{"system": "urn:t1", "code": "B1"}, {"system": "urn:t1", "code": "B2"}]
    # Matched exactly: no case folding, no trimming.
    assert terminology.translate("m", ["B"]) == []
    assert terminology.translate("m", [" b"]) == []
    assert terminology.translate("m", ["zzz"]) == []


def test_translate_gives_every_target_of_every_group_in_order(terminology: Terminology) -> None:
    assert terminology.translate("m", ["a"]) == [
        {"system": "urn:t1", "code": "A", "display": "Aa"},
        {"system": "urn:t2", "code": "A2", "display": "Second"},
    ]


def test_unmatched_and_disjoint_targets_are_not_translations(terminology: Terminology) -> None:
    assert terminology.translate("m", ["u"]) == []
    assert terminology.translate("m", ["d"]) == [{"system": "urn:t1", "code": "D2"}]
    assert terminology.translate("m", ["none"]) == []


def test_translate_takes_one_code_a_coding_or_a_number(terminology: Terminology) -> None:
    assert terminology.translate("m", []) == []
    assert terminology.translate("m", ["a", "b"]) == []
    assert terminology.translate("m", [{"system": "x", "code": "u"}]) == []
    assert terminology.translate("m", [{"code": "b"}]) == terminology.translate("m", ["b"])
    assert terminology.translate("m", [{"display": "no code"}]) == []
    numbers = Terminology.from_files(
        [concept_map("n", {"target": "urn:n", "element": [element("7", {"code": "seven"})]})]
    )
    assert numbers.translate("n", [7]) == [{"system": "urn:n", "code": "seven"}]


def test_what_a_resource_gets_from_a_translation_is_a_copy(terminology: Terminology) -> None:
    # translate() hands out the map's own codings (reading them costs nothing); writing one into a resource
    # copies it, so a resource changed later leaves the map as it was.
    written = runtime.rt_one(terminology.translate("m", ["a"])[:1], 0)
    written["code"] = "changed"
    written["extra"] = "x"
    assert terminology.translate("m", ["a"])[0] == {"system": "urn:t1", "code": "A", "display": "Aa"}
    assert written is not terminology.translate("m", ["a"])[0]


def test_value_set_membership_from_listed_concepts() -> None:
    value_set = TerminologyFile(
        "terminology/vs.json",
        {
            "resourceType": "ValueSet",
            "id": "vs",
            "compose": {
                "include": [
                    {"system": "urn:a", "concept": [{"code": "x"}, {"code": "y"}]},
                    {"system": "urn:b", "concept": [{"code": "z"}]},
                ]
            },
        },
    )
    terminology = Terminology.from_files([value_set])
    assert terminology.value_sets == {"vs": frozenset({"x", "y", "z"})}
    assert terminology.member_of(["x"], "vs") == [True]
    assert terminology.member_of(["z"], "vs") == [True]
    assert terminology.member_of(["X"], "vs") == [False]
    assert terminology.member_of([{"system": "urn:a", "code": "y"}], "vs") == [True]
    assert terminology.member_of([7], "vs") == [False]
    assert terminology.member_of([], "vs") == []
    assert terminology.member_of(["x", "y"], "vs") == []


def test_value_set_membership_from_a_whole_code_system_file() -> None:
    code_system = TerminologyFile(
        "terminology/cs.json",
        {"resourceType": "CodeSystem", "id": "cs", "url": "urn:cs", "concept": [{"code": "one"}, {"code": "two"}]},
    )
    value_set = TerminologyFile(
        "terminology/vs.json",
        {
            "resourceType": "ValueSet",
            "id": "vs",
            "compose": {"include": [{"system": "urn:cs"}, {"system": "urn:other", "concept": [{"code": "three"}]}]},
        },
    )
    # The ValueSet may come before the CodeSystem it includes.
    terminology = Terminology.from_files([value_set, code_system])
    assert terminology.value_sets["vs"] == frozenset({"one", "two", "three"})
    assert terminology.member_of(["two"], "vs") == [True]
    assert terminology.member_of(["four"], "vs") == [False]
    assert terminology.sources == {"vs": "terminology/vs.json", "cs": "terminology/cs.json"}


def test_a_value_set_including_an_unknown_code_system_is_refused() -> None:
    value_set = TerminologyFile(
        "terminology/vs.json", {"resourceType": "ValueSet", "id": "vs", "compose": {"include": [{"system": "urn:x"}]}}
    )
    with pytest.raises(TerminologyError) as caught:
        Terminology.from_files([value_set])
    assert str(caught.value) == (
        "terminology/vs.json: compose.include[0] lists no concepts and its system is not a CodeSystem file of this "
        "set; list the codes, or add the CodeSystem"
    )


def test_duplicate_ids_are_refused_across_kinds() -> None:
    value_set = TerminologyFile(
        "terminology/vs-m.json", {"resourceType": "ValueSet", "id": "m", "compose": {"include": []}}
    )
    with pytest.raises(TerminologyError) as caught:
        Terminology.from_files([MAP, value_set])
    assert str(caught.value) == (
        "terminology/vs-m.json: id 'm' is also used by terminology/m.json; give each terminology resource its own id"
    )


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        ({"resourceType": "Patient", "id": "p"}, "resourceType must be one of ConceptMap, ValueSet, CodeSystem"),
        ({"resourceType": "ConceptMap", "group": []}, "an 'id' is required; mappings name terminology by id"),
        ({"resourceType": "ConceptMap", "id": ""}, "an 'id' is required"),
        ({"resourceType": "ConceptMap", "id": "m"}, "a ConceptMap needs at least one 'group' with a 'target' system"),
        ({"resourceType": "ConceptMap", "id": "m", "group": []}, "needs at least one 'group'"),
        ({"resourceType": "ConceptMap", "id": "m", "group": [{"element": []}]}, "group[0] needs 'target'"),
        (
            {"resourceType": "ConceptMap", "id": "m", "group": [{"target": "t"}, {"target": ""}]},
            "group[1] needs 'target', the target code system's url",
        ),
        (
            {"resourceType": "ConceptMap", "id": "m", "group": [{"target": "t", "element": [{"target": []}]}]},
            "group[0].element[0] needs 'code', the source code",
        ),
        (
            {"resourceType": "ConceptMap", "id": "m", "group": [{"target": "t", "element": [element("a", {"x": 1})]}]},
            "group[0].element[0].target[0] needs 'code', the target code",
        ),
    ],
)
def test_files_that_cannot_be_used_are_refused_with_the_file_name(resource: dict[str, Any], message: str) -> None:
    with pytest.raises(TerminologyError) as caught:
        Terminology.from_files([TerminologyFile("terminology/bad.json", resource)])
    assert str(caught.value).startswith("terminology/bad.json: ")
    assert message in str(caught.value)


def test_the_shipped_terminology_loads_and_translates() -> None:
    files = [
        TerminologyFile(f"terminology/{path.name}", json.loads(path.read_text(encoding="utf-8")))
        for path in sorted((ROOT / "mappings" / "terminology").glob("*.json"))
    ]
    terminology = Terminology.from_files(files)
    assert len(terminology.sources) == len(files)
    assert terminology.translate("administrative-gender", ["f"]) == [
        {"system": "http://hl7.org/fhir/administrative-gender", "code": "female", "display": "Female"}
    ]
    assert terminology.member_of(["intolerance"], "allergy-type") == [True]
    assert terminology.member_of(["Intolerance"], "allergy-type") == [False]
