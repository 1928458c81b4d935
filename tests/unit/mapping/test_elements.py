"""Element paths against US Core 6.1.0 and the FHIR models: what a mapping file may write, and the message
that names the fix when it may not."""

from __future__ import annotations

import json
import tarfile
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from beam_pipeline.mapping import elements
from beam_pipeline.mapping.elements import profile_elements, profile_type, unknown_element

ROOT = Path(__file__).resolve().parents[3]
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"


@cache
def _package_definitions() -> tuple[dict[str, Any], ...]:
    # Read here independently of the module, so a loader mistake cannot hide in both.
    with tarfile.open(ROOT / "include" / "fhir" / "hl7.fhir.us.core-6.1.0.tgz") as archive:
        return tuple(
            json.load(archive.extractfile(member))
            for member in archive.getmembers()
            if member.name.startswith("package/StructureDefinition-") and member.name.endswith(".json")
        )


def _resource_profiles() -> list[dict[str, Any]]:
    return [d for d in _package_definitions() if d["kind"] == "resource"]


@pytest.mark.parametrize(
    ("resource_type", "path"),
    [
        ("Patient", ("identifier", "type", "coding", "system")),
        ("Patient", ("identifier", "system")),
        ("Patient", ("extension", "url")),
        ("Patient", ("extension", "valueCoding", "code")),
        ("Patient", ("extension", "extension", "valueString")),
        ("Patient", ("meta", "profile")),
        ("Patient", ("meta", "tag", "code")),
        ("Patient", ("deceasedDateTime",)),
        ("Patient", ("birthDate",)),
        ("Patient", ("address", "extension", "extension", "valueDecimal")),
        ("Patient", ("contact", "modifierExtension", "url")),
        ("Patient", ("resourceType",)),
        ("Patient", ("id",)),
        ("Patient", ()),
        ("Observation", ("valueQuantity", "value")),
        ("Observation", ("valueQuantity", "unit")),
        ("Observation", ("effectiveDateTime",)),
        ("Observation", ("component", "code", "coding", "code")),
        ("Observation", ("component", "valueQuantity", "system")),
        ("Observation", ("category", "coding", "system")),
        ("Observation", ("subject", "reference")),
        ("Condition", ("code", "coding", "display")),
        ("Condition", ("onsetDateTime",)),
        ("Condition", ("clinicalStatus", "coding", "code")),
        ("Condition", ("encounter", "reference")),
        ("Encounter", ("class", "code")),
        ("Encounter", ("class", "system")),
        ("Encounter", ("period", "start")),
        ("Encounter", ("hospitalization", "dischargeDisposition", "text")),
        ("Encounter", ("participant", "individual", "reference")),
        ("Immunization", ("vaccineCode", "coding", "code")),
        ("Immunization", ("occurrenceDateTime",)),
        ("Immunization", ("patient", "reference")),
        ("AllergyIntolerance", ("reaction", "manifestation", "coding", "display")),
        ("AllergyIntolerance", ("reaction", "modifierExtension")),
        ("AllergyIntolerance", ("verificationStatus", "coding", "code")),
        ("Procedure", ("performedPeriod", "start")),
        ("Procedure", ("performedDateTime",)),
        ("Procedure", ("code", "text")),
        ("MedicationRequest", ("requester", "extension", "url")),
        ("MedicationRequest", ("medicationCodeableConcept", "coding", "system")),
        ("MedicationRequest", ("dosageInstruction", "doseAndRate", "doseQuantity", "value")),
        ("MedicationRequest", ("authoredOn",)),
    ],
)
def test_an_element_that_exists_is_accepted(resource_type: str, path: tuple[str, ...]) -> None:
    assert unknown_element(resource_type, path) is None


@pytest.mark.parametrize(
    ("resource_type", "path", "message"),
    [
        ("Patient", ("identifer",), "Patient.identifer does not exist: did you mean 'identifier'?"),
        # the first missing step is named, not a later one
        ("Patient", ("identifer", "sytem"), "Patient.identifer does not exist: did you mean 'identifier'?"),
        (
            "Patient",
            ("identifier", "type", "coding", "sytem"),
            "Patient.identifier.type.coding.sytem does not exist: did you mean 'system'?",
        ),
        ("Patient", ("name", "Given"), "Patient.name.Given does not exist: did you mean 'given'?"),
        (
            "Observation",
            ("valueQuantity", "unti"),
            "Observation.valueQuantity.unti does not exist: did you mean 'unit'?",
        ),
        ("Encounter", ("clas", "code"), "Encounter.clas does not exist: did you mean 'class'?"),
        ("Immunization", ("vacineCode",), "Immunization.vacineCode does not exist: did you mean 'vaccineCode'?"),
        (
            "Procedure",
            ("performedPeriod", "strat"),
            "Procedure.performedPeriod.strat does not exist: did you mean 'start'?",
        ),
        (
            "Patient",
            ("identifier", "zzz"),
            "Patient.identifier.zzz does not exist: the elements of Patient.identifier are assigner, extension, id, "
            "period, system, type, use, value",
        ),
    ],
)
def test_a_misspelt_element_is_refused_with_the_fix(resource_type: str, path: tuple[str, ...], message: str) -> None:
    assert unknown_element(resource_type, path) == message


def test_a_step_with_no_close_name_lists_the_choice_elements_by_their_base_name() -> None:
    message = unknown_element("Observation", ("xyzzy",))
    assert message is not None
    assert message.startswith("Observation.xyzzy does not exist: the elements of Observation are ")
    assert "value[x]" in message and "effective[x]" in message and "valueQuantity" not in message


@pytest.mark.parametrize("step", ["value", "value[x]"])
def test_a_choice_element_without_its_type_is_refused_with_the_typed_names(step: str) -> None:
    message = unknown_element("Observation", (step,))
    assert message is not None
    assert message.startswith(f"Observation.{step} does not exist: a choice element is written with its type")
    assert "'valueQuantity'" in message and "'valueCodeableConcept'" in message


def test_a_choice_type_the_element_does_not_allow_is_refused() -> None:
    # Patient.deceased[x] is boolean or dateTime only
    assert unknown_element("Patient", ("deceasedDate",)) is not None
    assert unknown_element("Procedure", ("performedInstant",)) is not None


def test_a_primitive_has_no_child_elements() -> None:
    assert unknown_element("Patient", ("birthDate", "extension")) == (
        "Patient.birthDate.extension does not exist: birthDate is a date, a primitive with no child elements; "
        "write its value directly"
    )
    assert unknown_element("Observation", ("valueInteger", "value")) == (
        "Observation.valueInteger.value does not exist: valueInteger is an integer, a primitive with no child "
        "elements; write its value directly"
    )
    assert unknown_element("Patient", ("resourceType", "code")) is not None


@pytest.mark.parametrize(
    ("resource_type", "path"),
    [
        ("Patient", ("_birthDate",)),  # a primitive's extension, not an element a mapping file writes
        ("Patient", ("name", "_family")),
        ("Patient", ("fhir_comments",)),  # fhir.resources' own field
        ("Encounter", ("class_fhir",)),  # the Python name of Encounter.class
        ("Patient", ("identifier", "resourceType")),  # only at the root
        ("Patient", ("identifier", "modifierExtension")),  # Identifier is an Element, not a BackboneElement
        ("Patient", ("extension", "modifierExtension")),
        ("Patient", ("",)),
    ],
)
def test_a_field_of_the_models_that_is_not_a_json_element_is_refused(resource_type: str, path: tuple[str, ...]) -> None:
    assert unknown_element(resource_type, path) is not None


def test_an_unknown_resource_type_is_refused_with_a_suggestion() -> None:
    assert unknown_element("Patiet", ("id",)) == "Patiet is not a FHIR resource type: did you mean 'Patient'?"
    assert unknown_element("Observaton", ()) == (
        "Observaton is not a FHIR resource type: did you mean 'Observation' or 'ObservationDefinition'?"
    )
    assert unknown_element("NoSuchThing", ("id",)) == "NoSuchThing is not a FHIR resource type"


@pytest.mark.parametrize("resource_type", ["patient", "Identifier", "Extension", "PatientContact", "Resource "])
def test_a_datatype_or_a_misspelt_type_is_not_a_resource_type(resource_type: str) -> None:
    message = unknown_element(resource_type, ("id",))
    assert message is not None
    assert message.startswith(f"{resource_type} is not a FHIR resource type")


def test_below_a_slot_for_any_resource_nothing_is_checked() -> None:
    # contained's type is the value's own resourceType, which the path does not carry
    assert unknown_element("Patient", ("contained", "code", "coding")) is None
    assert unknown_element("Patient", ("containd",)) is not None


def test_extension_values_are_r4s_not_r4bs() -> None:
    # R4B added CodeableReference and RatioRange to Extension.value[x] and dropped Meta; the store is R4.
    # US Core's race extension repeats R4's Extension.value[x] type list in its snapshot.
    race = next(d for d in _package_definitions() if d["url"] == US_CORE + "us-core-race")
    value = next(e for e in race["snapshot"]["element"] if e["id"] == "Extension.value[x]")
    r4 = {"value" + t["code"][0].upper() + t["code"][1:] for t in value["type"]}
    assert len(r4) == 50
    for name in r4:
        assert unknown_element("Patient", ("extension", name)) is None, name
    for name in ("valueCodeableReference", "valueRatioRange"):
        assert unknown_element("Patient", ("extension", name)) is not None
    assert unknown_element("Patient", ("extension", "valueMeta", "profile")) is None
    message = unknown_element("Patient", ("extension", "value"))
    assert message is not None
    assert message.count("'value") == 50


def _json_names(definition: dict[str, Any]) -> list[tuple[str, ...]]:
    """The JSON paths a snapshot element stands for: value[x] as each type it allows (or the one its slice
    names); a primitive's id and extension are left out, as JSON writes them under `_name`."""
    types = {e["id"]: [t["code"] for t in e.get("type", [])] for e in definition["snapshot"]["element"]}
    out = []
    for element in definition["snapshot"]["element"]:
        segments = element["id"].split(".")
        parent = types.get(".".join(segments[:-1]), [])
        if len(segments) > 2 and parent and all(code[0].islower() for code in parent):
            continue
        options: list[tuple[str, ...]] = [()]
        for i, segment in enumerate(segments[1:], 1):
            name, _, sliced = segment.partition(":")
            if name.endswith("[x]"):
                codes = types[".".join(segments[: i + 1])]
                names = [sliced] if sliced else [name[:-3] + c[0].upper() + c[1:] for c in codes]
            else:
                names = [name]
            options = [option + (name,) for option in options for name in names]
        out.extend(options)
    return out


def test_every_element_of_every_us_core_resource_profile_is_accepted() -> None:
    # The R4B models stand in for R4: every element US Core 6.1.0 (an R4 guide) names must exist in them.
    refused = []
    checked = 0
    for definition in _resource_profiles():
        for path in _json_names(definition):
            checked += 1
            message = unknown_element(definition["type"], path)
            if message:
                refused.append(f"{definition['id']}: {message}")
    assert checked > 3000
    assert not refused, "\n".join(refused[:20])


def test_the_models_have_no_element_a_us_core_snapshot_lacks() -> None:
    # The other direction: where a snapshot lists an element's children, R4B has exactly those (choices by
    # their [x] name), so no R4B-only element is accepted on the resources US Core profiles.
    differences = []
    for definition in _resource_profiles():
        children: dict[str, set[str]] = defaultdict(set)
        for element in definition["snapshot"]["element"]:
            parent, _, name = element["path"].rpartition(".")
            if parent:
                children[parent].add(name)
        for parent, names in children.items():
            if "[x]" in parent:
                continue
            target: Any = elements._resource_model(definition["type"])
            for step in parent.split(".")[1:]:
                target = elements._children(target)[0][step]
            if isinstance(target, str):
                continue
            model_children, choices = elements._children(target)
            in_choice = {name for group in choices.values() for name in group}
            model_names = {n for n in model_children if n not in in_choice} | {f"{g}[x]" for g in choices}
            if model_names != names:
                differences.append(f"{parent}: R4B {sorted(model_names ^ names)}")
    assert not differences, "\n".join(differences)


@pytest.mark.parametrize(
    ("name", "resource_type"),
    [
        ("us-core-patient", "Patient"),
        ("us-core-encounter", "Encounter"),
        ("us-core-condition-encounter-diagnosis", "Condition"),
        ("us-core-condition-problems-health-concerns", "Condition"),
        ("us-core-observation-lab", "Observation"),
        ("us-core-vital-signs", "Observation"),
        ("us-core-smokingstatus", "Observation"),
        ("us-core-body-weight", "Observation"),
        ("us-core-pulse-oximetry", "Observation"),
        ("us-core-observation-screening-assessment", "Observation"),
        ("us-core-simple-observation", "Observation"),
        ("us-core-observation-clinical-result", "Observation"),
        ("us-core-immunization", "Immunization"),
        ("us-core-allergyintolerance", "AllergyIntolerance"),
        ("us-core-procedure", "Procedure"),
        ("us-core-medicationrequest", "MedicationRequest"),
    ],
)
def test_profile_type_of_each_us_core_profile_the_pipeline_writes(name: str, resource_type: str) -> None:
    assert profile_type(US_CORE + name) == resource_type
    assert profile_type(US_CORE + name + "|6.1.0") == resource_type


@pytest.mark.parametrize(
    "url",
    [
        US_CORE + "us-core-patientt",
        US_CORE + "us-core-patient|7.0.0",
        "http://hl7.org/fhir/StructureDefinition/Patient",  # the base resource, not a US Core profile
        "us-core-patient",
        "",
    ],
)
def test_profile_type_of_a_url_the_package_lacks_is_none(url: str) -> None:
    assert profile_type(url) is None


def test_profile_type_of_an_extension_definition_is_extension() -> None:
    assert profile_type(US_CORE + "us-core-race") == "Extension"


def test_profile_elements_are_the_snapshot_paths() -> None:
    patient = profile_elements(US_CORE + "us-core-patient")
    assert {"Patient", "Patient.identifier.system", "Patient.extension", "Patient.deceased[x]"} <= patient
    assert not any(":" in path for path in patient)  # slices fold into their path
    assert all(path == "Patient" or path.startswith("Patient.") for path in patient)
    vitals = profile_elements(US_CORE + "us-core-body-weight")
    assert "Observation.value[x].unit" in vitals
    race = next(d for d in _package_definitions() if d["url"] == US_CORE + "us-core-race")
    assert profile_elements(US_CORE + "us-core-race") == {e["path"] for e in race["snapshot"]["element"]}


def test_profile_elements_of_an_unknown_profile_raises() -> None:
    with pytest.raises(KeyError, match="us-core-nothing is not a US Core 6.1.0 profile"):
        profile_elements(US_CORE + "us-core-nothing")


def test_only_profiles_are_kept_from_the_package() -> None:
    kept = elements._profiles()
    expected = {d["url"] for d in _package_definitions() if d["kind"] in {"resource", "complex-type"}}
    assert {url.partition("|")[0] for url in kept} == expected
    assert len(expected) == 59


def test_a_repeated_question_is_answered_from_the_cache() -> None:
    path = ["identifier", "type", "coding", "display"]  # a list is accepted too
    assert unknown_element("Patient", path) is None
    hits = elements._unknown_element.cache_info().hits
    assert unknown_element("Patient", tuple(path)) is None
    assert elements._unknown_element.cache_info().hits == hits + 1


def test_the_package_is_read_from_the_repository() -> None:
    assert elements._PACKAGE.is_relative_to(ROOT)
    assert elements._PACKAGE.is_file()
