"""A folder of feeds (beam_pipeline/mapping/mapping_set.py): which files it reads, the digest workers key
their compiled set by, the per-worker cache, recognising a message's mapping, and the write order the
mappings' references give."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from beam_pipeline.mapping import mapping_set
from beam_pipeline.mapping.feed import MappingError, SourceFile
from beam_pipeline.mapping.mapping_set import MappingSources, compile_set, read_folder, shipped, write_order

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
PROFILES = {
    "Patient": "us-core-patient",
    "Encounter": "us-core-encounter",
    "Condition": "us-core-condition-problems-health-concerns",
    "Procedure": "us-core-procedure",
}
# The element of each type that carries the references of these tests (check_elements=False: not checked).
GENDER_MAP = {
    "resourceType": "ConceptMap",
    "id": "gender",
    "group": [{"target": "urn:g", "element": [{"code": "f", "target": [{"code": "female"}]}]}],
}


def mapping(ident: str, rtype: str, types: list[str], refers: tuple[str, ...] = (), default: bool = False) -> str:
    profile = US_CORE + PROFILES[rtype]
    lines = [
        f"id: {ident}",
        "recognise:",
        f"  types: [{', '.join(types)}]",
        *(["  default: true"] if default else []),
        "resources:",
        f"  - profiles: [{profile}]",
        "    resource:",
        f"      resourceType: {rtype}",
        f"      meta: {{profile: [{profile}]}}",
        "      identifier: [{system: urn:s, value: '{{ Id }}'}]",
        *(f"      ref{i}: \"{{{{ reference('{target}', 'urn:s', X) }}}}\"" for i, target in enumerate(refers)),
    ]
    return "\n".join(lines) + "\n"


def sources(*files: tuple[str, str], origin: str = "test") -> MappingSources:
    return MappingSources(
        tuple(SourceFile(name, text) for name, text in files),
        (SourceFile("terminology/gender.json", json.dumps(GENDER_MAP)),),
        origin,
    )


# -- reading a folder ---------------------------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_read_folder_finds_every_mapping_recursively_and_the_terminology(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "feed-a/patient.yaml": "a",
            "feed-a/deep/nested/encounter.yml": "b",
            "top.yaml": "c",
            "terminology/gender.json": "{}",
            "terminology/more/vs.json": "[]",
            "feed-a/not-terminology.json": "{}",
            "terminology/notes.yaml": "d",  # a .yaml anywhere is a mapping
            "README.md": "x",
            "feed-a/patient.yaml.bak": "x",
            "terminology/gender.txt": "x",
        },
    )
    found = read_folder(tmp_path)
    # Messages name a file with the set's location in front: the path a user can open.
    assert [(f.name, f.text) for f in found.mappings] == [
        (f"{tmp_path}/feed-a/deep/nested/encounter.yml", "b"),
        (f"{tmp_path}/feed-a/patient.yaml", "a"),
        (f"{tmp_path}/terminology/notes.yaml", "d"),
        (f"{tmp_path}/top.yaml", "c"),
    ]
    assert [(f.name, f.text) for f in found.terminology] == [
        (f"{tmp_path}/terminology/gender.json", "{}"),
        (f"{tmp_path}/terminology/more/vs.json", "[]"),
    ]
    assert found.origin == str(tmp_path)
    assert read_folder(str(tmp_path)) == found


def test_read_folder_refuses_what_is_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as caught:
        read_folder(tmp_path / "missing")
    assert str(caught.value) == (
        f"{tmp_path / 'missing'}:1: not a folder; --mappings takes a folder or a gs://bucket/prefix"
    )


def test_the_shipped_folder_holds_the_synthea_feed() -> None:
    found = shipped()
    names = {f.name.removeprefix(found.origin.rstrip("/") + "/") for f in found.mappings}
    assert names >= {
        f"synthea/{kind}.yaml"
        for kind in (
            "allergy",
            "condition",
            "encounter",
            "immunization",
            "medication",
            "observation",
            "patient",
            "procedure",
        )
    }
    prefix = found.origin.rstrip("/") + "/terminology/"
    assert all(f.name.startswith(prefix) and f.name.endswith(".json") for f in found.terminology)
    assert len(found.terminology) >= 20


# -- the digest ---------------------------------------------------------------------------------------


def test_the_digest_follows_every_name_and_text() -> None:
    base = sources(("a.yaml", "one"), ("b.yaml", "two"))
    assert base.digest == sources(("a.yaml", "one"), ("b.yaml", "two")).digest
    assert len(base.digest) == 64
    changed = [
        sources(("a.yaml", "one "), ("b.yaml", "two")),
        sources(("a.yaml", "one"), ("b.yaml", "twO")),
        sources(("a.yml", "one"), ("b.yaml", "two")),
        sources(("a.yaml", "one"), ("b.yaml", "two"), ("c.yaml", "")),
        sources(("a.yaml", "on"), ("b.yaml", "etwo")),  # the same characters split differently
        MappingSources(base.mappings, (SourceFile("terminology/gender.json", "{ }"),)),
    ]
    digests = {base.digest, *(s.digest for s in changed)}
    assert len(digests) == len(changed) + 1
    # The origin is not content: the same files from another place are the same set.
    assert sources(("a.yaml", "one"), ("b.yaml", "two"), origin="gs://b/p").digest == base.digest


# -- compiled once per worker ------------------------------------------------------------------------


def test_compiled_caches_per_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mapping_set, "_COMPILED", {})
    calls: list[tuple[str, bool]] = []
    real = mapping_set.compile_set

    def counting(found: MappingSources, *, check_elements: bool = True) -> mapping_set.MappingSet:
        calls.append((found.digest, check_elements))
        return real(found, check_elements=check_elements)

    monkeypatch.setattr(mapping_set, "compile_set", counting)
    one = sources(("p.yaml", mapping("p", "Patient", ["patient"])))
    again = sources(("p.yaml", mapping("p", "Patient", ["patient"])))  # equal, not the same object
    other = sources(("p.yaml", mapping("p", "Patient", ["patient"]) + "# changed\n"))
    first = mapping_set.compiled(one)
    assert mapping_set.compiled(one) is first
    assert mapping_set.compiled(again) is first
    assert calls == [(one.digest, False)]  # workers compile without the element check
    second = mapping_set.compiled(other)
    assert second is not first
    assert mapping_set.compiled(one) is first
    assert calls == [(one.digest, False), (other.digest, False)]
    assert first.by_type["patient"].id == "p"


def test_compiled_without_sources_is_the_shipped_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mapping_set, "_COMPILED", {})
    found = mapping_set.compiled()
    assert mapping_set.compiled() is found
    assert mapping_set.compiled(shipped()) is found


# -- recognising a message ----------------------------------------------------------------------------


def test_recognise_by_type_and_default() -> None:
    compiled = compile_set(
        sources(
            ("patient.yaml", mapping("p", "Patient", ["Patient", "patients"], default=True)),
            ("encounter.yaml", mapping("e", "Encounter", ["encounter"], ("Patient",))),
        ),
        check_elements=False,
    )
    assert compiled.recognise("patient").id == "p"
    assert compiled.recognise("patients").id == "p"
    assert compiled.recognise("encounter").id == "e"
    assert compiled.recognise(None).id == "p"
    assert compiled.recognise("observation") is None
    assert compiled.recognise("Patient") is None  # kinds arrive lower-cased
    no_default = compile_set(sources(("e.yaml", mapping("e", "Encounter", ["encounter"]))), check_elements=False)
    assert no_default.recognise(None) is None


# -- write order --------------------------------------------------------------------------------------


def test_the_shipped_write_order() -> None:
    order = compile_set(shipped(), check_elements=False).write_order
    assert order == {
        "Patient": 0,
        "Organization": 0,
        "Practitioner": 0,
        "Location": 1,
        "Coverage": 1,
        "Device": 1,
        "Encounter": 2,
        "AllergyIntolerance": 3,
        "CarePlan": 3,
        "Condition": 3,
        "Immunization": 3,
        "MedicationRequest": 3,
        "Observation": 3,
        "Procedure": 3,
    }


def test_write_order_tiers_follow_the_references() -> None:
    compiled = compile_set(
        sources(
            ("c.yaml", mapping("c", "Condition", ["condition"], ("Patient", "Encounter"))),
            ("e.yaml", mapping("e", "Encounter", ["encounter"], ("Patient", "Encounter"))),  # itself: no tier
            ("p.yaml", mapping("p", "Patient", ["patient"], ("Practitioner",))),  # no mapping writes it
            ("x.yaml", mapping("x", "Procedure", ["procedure"], ("Condition",))),
        ),
        check_elements=False,
    )
    assert compiled.write_order == {"Patient": 0, "Encounter": 1, "Condition": 2, "Procedure": 3}
    assert compiled.mappings[1].references == frozenset({"Patient", "Encounter"})
    assert compiled.mappings[1].resources[0].references == frozenset({"Patient"})


def test_a_reference_cycle_is_refused() -> None:
    with pytest.raises(MappingError) as caught:
        compile_set(
            sources(
                ("e.yaml", mapping("e", "Encounter", ["encounter"], ("Patient",))),
                ("p.yaml", mapping("p", "Patient", ["patient"], ("Encounter",))),
            ),
            check_elements=False,
        )
    assert str(caught.value) == (
        "test:1: resources refer to each other in a cycle through Encounter; a reference must point one way"
    )


def _stub(*resources: tuple[str, frozenset[str]]) -> SimpleNamespace:
    return SimpleNamespace(resources=[SimpleNamespace(resource_type=t, references=r) for t, r in resources])


def test_write_order_of_stubs() -> None:
    assert write_order([]) == {}
    assert write_order([_stub(("A", frozenset()))]) == {"A": 0}
    # References merge across mappings that write the same type.
    chain = [
        _stub(("C", frozenset({"B"}))),
        _stub(("B", frozenset())),
        _stub(("B", frozenset({"A"})), ("A", frozenset())),
    ]
    assert write_order(chain) == {"A": 0, "B": 1, "C": 2}
    # The deepest reference decides.
    assert write_order(chain + [_stub(("D", frozenset({"A", "C"})))])["D"] == 3
    with pytest.raises(ValueError, match="cycle through A"):
        write_order([_stub(("A", frozenset({"C"})), ("B", frozenset({"A"})), ("C", frozenset({"B"})))])
