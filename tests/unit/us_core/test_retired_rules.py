"""The US Core rules that left beam_pipeline/us_core/rules.py for the profile validator (docs/validation.md,
"Rules that moved"): each break of a mapped resource that a retired rule used to catch is no longer the
rule check's, and the validator reports it (validate/profile_violation under --profile_validation=enforce)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from beam_pipeline.contracts.outcome import MappedResource
from beam_pipeline.us_core import Error, conformance
from beam_pipeline.us_core.rules import check_resource
from beam_pipeline.validation import ERROR

GOLDEN = Path(__file__).resolve().parent / "golden"


def _mapped(name: str) -> dict:
    return json.loads((GOLDEN / f"{name}.expected.json").read_text())["resources"][0]


def _race_text(patient: dict, texts: int) -> None:
    race = next(e for e in patient["extension"] if e["url"].endswith("us-core-race"))
    others = [e for e in race["extension"] if e["url"] != "text"]
    race["extension"] = others + [{"url": "text", "valueString": "Black"}] * texts


def _telecom(patient: dict, system: str | None) -> None:
    patient["telecom"] = [{"value": "555-0100"} | ({"system": system} if system else {})]


PATIENT = "02_synthea_female_hispanic_widowed"
CONDITION = "11_condition_encounter_diagnosis"
# (golden, the break, the element path and rule key the validator names)
RETIRED = [
    (PATIENT, lambda r: r.pop("identifier"), "Patient.identifier", "cardinality"),
    (PATIENT, lambda r: r["identifier"][0].pop("value"), "Patient.identifier[0].value", "cardinality"),
    (PATIENT, lambda r: r.pop("name"), "Patient.name", "cardinality"),
    (PATIENT, lambda r: r.__setitem__("name", [{"text": "Ann"}]), "Patient.name[0]", "us-core-6"),
    (PATIENT, lambda r: r.pop("gender"), "Patient.gender", "cardinality"),
    (PATIENT, lambda r: r.__setitem__("gender", "F"), "Patient.gender", "binding"),
    (PATIENT, lambda r: r.__setitem__("birthDate", "12/01/1990"), "Patient.birthDate", "format"),
    (PATIENT, lambda r: _telecom(r, None), "Patient.telecom[0].system", "cardinality"),
    (PATIENT, lambda r: _telecom(r, "pigeon"), "Patient.telecom[0].system", "binding"),
    (PATIENT, lambda r: _race_text(r, 0), "Patient.extension[0].extension:text", "slice:extension"),
    (PATIENT, lambda r: _race_text(r, 2), "Patient.extension[0].extension:text", "slice:extension"),
    (CONDITION, lambda r: r.pop("subject"), "Condition.subject", "cardinality"),
    (CONDITION, lambda r: r.pop("code"), "Condition.code", "cardinality"),
    (CONDITION, lambda r: r.pop("category"), "Condition.category", "cardinality"),
]  # fmt: skip


@pytest.mark.parametrize(("golden", "brk", "path", "key"), RETIRED, ids=[f"{r[2]}-{r[3]}" for r in RETIRED])
def test_a_retired_rule_is_the_validators_now(golden, brk, path, key):
    resource = copy.deepcopy(_mapped(golden))
    assert check_resource(resource, resource["meta"]["profile"]) == []
    brk(resource)
    assert check_resource(resource, resource["meta"]["profile"]) == []
    result = conformance.apply((MappedResource(resource, None),), "enforce")
    assert isinstance(result, Error) and result.code == "profile_violation"
    assert (path, key) in {(f.issue.path, f.issue.key) for f in result.issues if f.issue.severity == ERROR}


# What stays in rules.py: what no profile says, or says less strictly than the project.
KEPT = [
    (PATIENT, lambda r: r["identifier"][0].__setitem__("system", "local-ids"), "identifier[0].system: absolute URI"),
    (PATIENT, lambda r: r["address"][0].__setitem__("state", "Qz"), "address[0].state: USPS code"),
    (PATIENT, lambda r: r["maritalStatus"]["coding"][0].__setitem__("code", "Qz"), "maritalStatus: code outside"),
    (PATIENT, lambda r: r["meta"].__setitem__("profile", []), "meta.profile"),
    (CONDITION, lambda r: r["identifier"].append(r["identifier"][0]), "identifier: one with an absolute system"),
    (CONDITION, lambda r: r.__setitem__("subject", {"reference": "Patient"}), "subject: a Patient reference"),
]  # fmt: skip


@pytest.mark.parametrize(("golden", "brk", "said"), KEPT, ids=[r[2] for r in KEPT])
def test_a_rule_no_profile_states_stays_with_the_rule_check(golden, brk, said):
    resource = copy.deepcopy(_mapped(golden))
    declared = list(resource["meta"]["profile"])
    brk(resource)
    assert any(problem.startswith(said) for problem in check_resource(resource, declared))
