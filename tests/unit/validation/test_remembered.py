"""An extension's check remembers the values that passed, by digest, and only when that cannot change an
answer: the wrapper itself, what it refuses to remember, and the definitions it is applied to."""

from __future__ import annotations

import copy
from typing import Any

from beam_pipeline.us_core.terminology import US_CORE_PATIENT
from beam_pipeline.validation.checks import RememberedField
from beam_pipeline.validation.issues import ERROR, INFORMATION, Issue
from beam_pipeline.validation.package import Definitions, definitions
from beam_pipeline.validation.remembered import reads_only_the_value, remembered
from beam_pipeline.validation.validator import _compiler, validator_for
from tests.support.validation_corpus import golden_resources

RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"


def _counting(found: list[Issue] | None = None, gaps: list[Issue] | None = None) -> tuple[Any, list[Any]]:  # noqa: ANN401
    calls: list[Any] = []

    def check(obj: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, Any]) -> None:  # noqa: ANN401, ARG001
        calls.append(obj)
        issues.extend(found or [])
        ms.extend(gaps or [])

    return check, calls


def test_a_value_that_passed_is_not_checked_again() -> None:
    check, calls = _counting()
    run = remembered(check)
    value = {"url": "u", "valueCode": "F"}
    for _ in range(3):
        run(dict(value), "Patient.extension[0]", [], [], {})
    assert len(calls) == 1
    run({"url": "u", "valueCode": "M"}, "p", [], [], {})
    run({"valueCode": "F", "url": "u"}, "p", [], [], {})  # other JSON: checked (and then remembered too)
    assert len(calls) == 3
    assert all(len(key) == 16 for key in run.passed)  # digests only: no value is kept


def test_a_value_with_an_error_or_a_must_support_gap_is_checked_every_time() -> None:
    for found, gaps in (([Issue("p", "k", ERROR)], []), ([], [Issue("p.x", "must-support", INFORMATION)])):
        check, calls = _counting(found, gaps)
        run = remembered(check)
        issues: list[Issue] = []
        for _ in range(2):
            run({"url": "u"}, "p", issues, [], {})
        assert len(calls) == 2 and not run.passed
        assert len(issues) == 2 * len(found)


def test_a_reference_to_a_contained_resource_or_a_value_that_is_not_json_is_checked_every_time() -> None:
    check, calls = _counting()
    run = remembered(check)
    for value in ({"url": "u", "valueReference": {"reference": "#p1"}}, {"url": "u", "valueString": object()}):
        run(value, "p", [], [], {})
        run(value, "p", [], [], {})
    assert len(calls) == 4 and not run.passed


def test_a_full_table_starts_again() -> None:
    check, calls = _counting()
    run = remembered(check, limit=3)
    for n in range(5):
        run({"url": "u", "valueCode": str(n)}, "p", [], [], {})
    assert len(run.passed) == 2  # 0, 1, 2 filled it; 3 cleared it; 3 and 4 since
    run({"url": "u", "valueCode": "4"}, "p", [], [], {})
    assert len(calls) == 5


def test_only_definitions_whose_invariants_read_the_value_alone_are_remembered() -> None:
    shipped = definitions()
    assert reads_only_the_value(shipped, RACE)
    assert not reads_only_the_value(shipped, US_CORE_PATIENT)  # a resource: dom-3 reads %resource
    assert not reads_only_the_value(shipped, "http://example.org/not-carried")
    reading = copy.deepcopy(shipped.structures[RACE])
    reading["url"] = "http://example.org/StructureDefinition/reads-the-patient"
    reading["snapshot"]["element"][0]["constraint"] = [{"key": "x-1", "expression": "%resource.gender.exists()"}]
    ucum = copy.deepcopy(reading)
    ucum["url"] = "http://example.org/StructureDefinition/reads-ucum"
    ucum["snapshot"]["element"][0]["constraint"] = [{"key": "x-2", "expression": "url != %ucum"}]
    structures = {**shipped.structures, reading["url"]: reading, ucum["url"]: ucum}
    package = Definitions(structures, *(getattr(shipped, f) for f in list(shipped.__dataclass_fields__)[1:]))
    assert not reads_only_the_value(package, reading["url"])
    assert reads_only_the_value(package, ucum["url"])


def test_a_patient_whose_race_changes_is_judged_on_its_own() -> None:
    validator = validator_for(US_CORE_PATIENT)
    patient = copy.deepcopy(next(r for p, r in golden_resources() if p == US_CORE_PATIENT))
    race = next(e for e in patient.get("extension", []) if e.get("url") == RACE)
    assert not validator.validate(patient).errors and not validator.validate(patient).errors  # then remembered
    assert len(_compiler().structure(RACE).run.passed) >= 1
    race["extension"] = [e for e in race["extension"] if e.get("url") != "text"]  # text is required (1..1)
    paths = [(i.path, i.key) for i in validator.validate(patient).errors]
    assert paths and all(path.startswith("Patient.extension[") for path, _ in paths)


def test_a_patients_extensions_are_remembered_as_a_whole_and_a_changed_array_is_judged_on_its_own() -> None:
    validator = validator_for(US_CORE_PATIENT)
    field = _compiler().structure(US_CORE_PATIENT).fields["extension"]
    assert isinstance(field, RememberedField)
    patient = copy.deepcopy(next(r for p, r in golden_resources() if p == US_CORE_PATIENT))
    assert not validator.validate(patient).errors
    race = next(e for e in patient["extension"] if e.get("url") == RACE)
    patient["extension"].append(copy.deepcopy(race))  # race twice: the slice allows one
    keys = {(i.path, i.key) for i in validator.validate(patient).errors}
    assert ("Patient.extension:race", "slice:extension") in keys
