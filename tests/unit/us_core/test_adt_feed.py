"""The second feed, HL7 v2 ADT events as JSON (mappings/adt/adt-patient-visit.yaml): one message is a US Core
Patient and a US Core Encounter that refers to it; each validation rule's code and detail; absent stays
absent."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from beam_pipeline.fhir_store.bundles import token_search_value
from beam_pipeline.us_core import Error, Ok, TransformConfig, transform
from beam_pipeline.us_core.rules import check_resource, empty_values
from beam_pipeline.us_core.structural import structural_problems
from tests.support.adt import ADMIT_SAMPLE, DISCHARGE_SAMPLE, VISIT_NUMBER_SYSTEM, admit_sample, adt_message

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
# A value no rule's detail may quote: the details name fields and rules, never values.
PROBE = "ZZQX-PROBE-7731"
CONFIG = TransformConfig(structural_validation=True)


def run(message: dict[str, Any], config: TransformConfig = CONFIG) -> Ok | Error:
    return transform(json.dumps(message).encode(), config=config)


def resources(message: dict[str, Any], config: TransformConfig = CONFIG) -> dict[str, dict[str, Any]]:
    result = run(message, config)
    assert isinstance(result, Ok), result
    return {m.resource["resourceType"]: m.resource for m in result.resources}


def minimal() -> dict[str, Any]:
    """Only what the mapping requires."""
    return {
        "messageType": "ADT^A04",
        "patient": {"identifiers": [{"type": "MR", "value": "MIN-0001"}], "name": [{"family": "Minimal"}]},
        "visit": {"visitNumber": "MIN-V-0001", "class": "O", "admitTime": "2024-03-05T09:00:00Z"},
    }


# -- one message, two resources -----------------------------------------------------------------------


@pytest.mark.parametrize("sample", [ADMIT_SAMPLE, DISCHARGE_SAMPLE], ids=lambda p: p.stem)
def test_sample_is_a_patient_and_an_encounter(sample):
    result = transform(sample.read_bytes().strip(), config=CONFIG)
    assert isinstance(result, Ok), result
    assert [m.resource["resourceType"] for m in result.resources] == ["Patient", "Encounter"]
    patient, encounter = result.resources
    assert patient.resource["meta"]["profile"] == [US_CORE + "us-core-patient"]
    assert encounter.resource["meta"]["profile"] == [US_CORE + "us-core-encounter"]
    for mapped in result.resources:
        assert structural_problems(mapped.resource) == []
        assert check_resource(mapped.resource, mapped.resource["meta"]["profile"]) == []


def test_encounter_subject_is_the_patients_business_identifier():
    config = TransformConfig(source_id_system="urn:oid:2.16.840.1.113883.19.5.99999.1", structural_validation=True)
    result = run(admit_sample(), config)
    patient, encounter = result.resources
    system, value = patient.identifier
    assert (system, value) == ("urn:oid:2.16.840.1.113883.19.5.99999.1", "SGH-MRN-0042871")
    assert patient.resource["identifier"][0] == {
        "use": "usual",
        "type": patient.resource["identifier"][0]["type"],
        "system": system,
        "value": value,
    }
    token = quote(token_search_value(system, value), safe=":/|\\")
    assert encounter.resource["subject"] == {"reference": f"Patient?identifier={token}"}
    assert encounter.identifier == (VISIT_NUMBER_SYSTEM, "SGH-V-2024-000871")


def test_the_mapping_is_tagged_on_both_resources():
    for resource in resources(admit_sample()).values():
        [tag] = resource["meta"]["tag"]
        assert tag["system"] == "urn:kafka-to-fhir:mapping"
        assert tag["code"].startswith("adt-patient-visit@")


def test_every_element_exists_in_the_models_and_profiles():
    # Imported here: beam_pipeline.mapping.mapping_set imported before beam_pipeline.us_core is a circular import.
    from beam_pipeline.mapping.mapping_set import compile_set, shipped

    mappings = {m.id: m for m in compile_set(shipped(), check_elements=True).mappings}
    adt = mappings["adt-patient-visit"]
    assert [r.resource_type for r in adt.resources] == ["Patient", "Encounter"]
    assert adt.resources[1].references == {"Patient"}


@pytest.mark.parametrize("kind", ["ADT^A01", "ADT^A04", "ADT^A08", "adt^a03", "Adt^A01"])
def test_recognised_event_types(kind):
    message = admit_sample()
    message["messageType"] = kind
    message["visit"]["dischargeTime"] = "2024-03-06T10:05:00-05:00"
    assert set(resources(message)) == {"Patient", "Encounter"}


@pytest.mark.parametrize("kind", ["ADT^A02", "ADT^A11", "ADT", "ORU^R01"])
def test_other_events_have_no_mapping(kind):
    message = admit_sample()
    message["messageType"] = kind
    result = run(message)
    assert isinstance(result, Error) and result.code == "unknown_message_type"


# -- what each part becomes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("v2_class", "act_code", "snomed"),
    [("I", "IMP", "32485007"), ("O", "AMB", "308335008"), ("E", "EMER", "50849002"), ("P", "PRENC", "308335008"),
     ("R", "AMB", "308335008"), ("B", "IMP", "32485007"), ("e", "EMER", "50849002")],
)  # fmt: skip
def test_patient_class_gives_class_and_type(v2_class, act_code, snomed):
    message = admit_sample()
    message["visit"]["class"] = v2_class
    encounter = resources(message)["Encounter"]
    assert encounter["class"]["system"] == "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    assert encounter["class"]["code"] == act_code
    [concept] = encounter["type"]
    assert concept["coding"][0]["system"] == "http://snomed.info/sct"
    assert concept["coding"][0]["code"] == snomed and concept["text"] == concept["coding"][0]["display"]


def test_status_and_period_follow_discharge_time():
    message = admit_sample()
    admitted = resources(message)["Encounter"]
    assert admitted["status"] == "in-progress" and admitted["period"] == {"start": "2024-03-05T14:20:00-05:00"}
    message["messageType"] = "ADT^A03"
    message["visit"]["dischargeTime"] = "2024-03-06T10:05:00-05:00"
    discharged = resources(message)["Encounter"]
    assert discharged["status"] == "finished"
    assert discharged["period"] == {"start": "2024-03-05T14:20:00-05:00", "end": "2024-03-06T10:05:00-05:00"}


def test_patient_demographics():
    patient = resources(admit_sample())["Patient"]
    assert patient["gender"] == "female" and patient["birthDate"] == "1987-06-15"
    assert [i["system"] for i in patient["identifier"]] == [
        "urn:kafka-to-fhir:source-id",
        "http://hl7.org/fhir/sid/us-ssn",
    ]
    [name] = patient["name"]
    assert name == {"use": "official", "family": "Testperson", "given": ["Avery", "Quinn"], "prefix": ["Ms."]}
    assert patient["address"][0]["state"] == "MA" and patient["address"][0]["country"] == "US"
    assert patient["address"][0]["line"] == ["12 Synthetic Way", "Apt 3"]
    assert [t["system"] for t in patient["telecom"]] == ["phone", "email"]
    assert patient["maritalStatus"]["coding"][0]["code"] == "M"
    race, ethnicity = patient["extension"]
    assert race["url"] == US_CORE + "us-core-race" and ethnicity["url"] == US_CORE + "us-core-ethnicity"
    assert race["extension"][0]["valueCoding"]["code"] == "2106-3"
    assert ethnicity["extension"][0]["valueCoding"]["code"] == "2186-5"


def test_encounter_participant_location_and_service_provider_are_display_only():
    encounter = resources(admit_sample())["Encounter"]
    [participant] = encounter["participant"]
    assert participant["type"][0]["coding"][0]["code"] == "ATND"
    assert participant["individual"] == {"display": "Jordan Example"}
    assert encounter["location"] == [{"location": {"display": "4W, room 401, bed B, Synthetic General Hospital"}}]
    assert encounter["serviceProvider"] == {"display": "Synthetic General Hospital"}


@pytest.mark.parametrize(
    ("v2_code", "v3_code"),
    [("M", "M"), ("S", "S"), ("D", "D"), ("W", "W"), ("A", "L"), ("E", "L"), ("N", "A"), ("P", "T"), ("B", "U"),
     ("I", "I"), ("U", None), ("T", None), ("O", None), ("C", None)],
)  # fmt: skip
def test_marital_status_is_read_as_hl7_v2_table_0002(v2_code, v3_code):
    # v2's A is separated and P domestic partner: v3's A (annulled) and P (polygamous) would be false data.
    message = admit_sample()
    message["patient"]["maritalStatus"] = v2_code
    patient = resources(message)["Patient"]
    if v3_code is None:
        assert "maritalStatus" not in patient
    else:
        assert patient["maritalStatus"]["coding"][0]["code"] == v3_code


@pytest.mark.parametrize(("sex", "gender"), [("F", "female"), ("m", "male"), ("O", "other"), ("U", "unknown"),
                                             ("A", "unknown"), (None, "unknown")])  # fmt: skip
def test_sex_gives_gender(sex, gender):
    message = admit_sample()
    message["patient"]["sex"] = sex
    assert resources(message)["Patient"]["gender"] == gender


def test_two_names_and_two_addresses_keep_both():
    message = admit_sample()
    message["patient"]["name"].append({"use": "maiden", "family": "Formername", "given": ["Avery"]})
    message["patient"]["address"].append(
        {"use": "work", "lines": ["1 Example Plaza"], "city": "Boston", "state": "massachusetts", "postalCode": "02110"}
    )
    patient = resources(message)["Patient"]
    assert [(n["use"], n["family"]) for n in patient["name"]] == [("official", "Testperson"), ("maiden", "Formername")]
    assert [(a["use"], a["city"], a["state"]) for a in patient["address"]] == [
        ("home", "Springfield", "MA"),
        ("work", "Boston", "MA"),
    ]


def test_two_races_and_two_attendings():
    message = admit_sample()
    message["patient"]["race"] = ["2106-3", "2028-9", "2131-1"]
    message["visit"]["attending"] = [
        {"id": "A-1", "family": "Example", "given": ["Jordan"]},
        {"id": "A-2", "family": "Mockwell"},
    ]
    mapped = resources(message)
    race = mapped["Patient"]["extension"][0]["extension"]
    # Other Race (2131-1) has no OMB category: it is left out, never put in ombCategory.
    assert [e["valueCoding"]["code"] for e in race if e["url"] == "ombCategory"] == ["2106-3", "2028-9"]
    assert [e["valueString"] for e in race if e["url"] == "text"] == ["White, Asian"]
    assert [p["individual"]["display"] for p in mapped["Encounter"]["participant"]] == ["Jordan Example", "Mockwell"]


def _walk(value: Any) -> list[Any]:  # noqa: ANN401
    out = [value]
    if isinstance(value, dict):
        for item in value.values():
            out.extend(_walk(item))
    elif isinstance(value, list):
        for item in value:
            out.extend(_walk(item))
    return out


def test_absent_optional_parts_stay_absent():
    mapped = resources(minimal())
    patient, encounter = mapped["Patient"], mapped["Encounter"]
    assert set(patient) == {"resourceType", "meta", "identifier", "name", "gender"}
    assert len(patient["identifier"]) == 1 and patient["name"] == [{"family": "Minimal"}]
    assert patient["gender"] == "unknown"
    assert set(encounter) == {"resourceType", "meta", "identifier", "status", "class", "type", "subject", "period"}
    assert encounter["period"] == {"start": "2024-03-05T09:00:00Z"} and encounter["status"] == "in-progress"


def test_empty_and_null_parts_stay_absent():
    message = minimal()
    message["sendingFacility"] = ""
    message["patient"].update(
        {
            "identifiers": [{"type": "MR", "value": "MIN-0001"}, {"type": "SS", "value": ""}, {"type": "DL"}],
            "name": [{"use": "official", "family": "Minimal", "given": [], "prefix": [""], "suffix": None}, {}],
            "birthDate": None, "sex": "", "race": [], "ethnicity": "U", "maritalStatus": "",
            "address": [{}, {"use": "home", "lines": [], "city": ""}],
            "telecom": [{"system": "phone", "value": ""}, {}],
        }
    )  # fmt: skip
    message["visit"].update(
        {"dischargeTime": "", "location": {"facility": None, "room": ""}, "attending": {"id": "A-1", "given": []}}
    )
    mapped = resources(message)
    for resource in mapped.values():
        assert empty_values(resource) == []
        assert not any(v in ("", None, [], {}) for v in _walk(resource))
    assert set(mapped["Patient"]) == {"resourceType", "meta", "identifier", "name", "gender"}
    assert mapped["Patient"]["name"] == [{"use": "official", "family": "Minimal"}]
    assert set(mapped["Encounter"]) == {"resourceType", "meta", "identifier", "status", "class", "type", "subject",
                                        "period"}  # fmt: skip


# -- validation: each rule's code, and a detail that names the field, never the value -----------------


def _set(message: dict[str, Any], path: str, value: Any) -> None:  # noqa: ANN401
    *parents, last = path.split(".")
    node = message
    for part in parents:
        node = node[part] if not part.isdigit() else node[int(part)]
    if value is _DELETE:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value


_DELETE = object()
# (what is changed, to what, the code, the field the detail names, the value the detail must not quote)
RULES = [
    ("patient.identifiers", [{"type": "SS", "value": PROBE}], "missing_source_id", "patient.identifiers", PROBE),
    ("patient.identifiers", [{"type": "MR", "value": ""}, {"type": "PI", "value": PROBE}], "missing_source_id",
     "patient.identifiers", PROBE),
    ("patient.name", [{"use": "official", "prefix": [PROBE]}], "no_usable_name", "patient.name", PROBE),
    ("visit.visitNumber", _DELETE, "missing_required_field", "visit.visitNumber", "SGH-V-2024-000871"),
    ("visit.class", "", "missing_required_field", "visit.class", "SGH-V-2024-000871"),
    ("visit.admitTime", None, "missing_required_field", "visit.admitTime", "SGH-V-2024-000871"),
    ("visit.admitTime", PROBE, "invalid_date", "visit.admitTime", PROBE),
    ("visit.admitTime", "2024-02-30T14:20:00-05:00", "invalid_date", "visit.admitTime", "02-30"),
    ("visit.admitTime", "2024-03-05T14:20:07", "invalid_date", "visit.admitTime", "14:20:07"),
    ("visit.dischargeTime", "2024-03-05T13:13:13-05:00", "invalid_date", "visit.dischargeTime", "13:13:13"),
    ("visit.dischargeTime", "2024-03-05T17:13:13", "invalid_date", "visit.dischargeTime", "17:13:13"),
    ("patient.birthDate", PROBE, "invalid_date", "patient.birthDate", PROBE),
    ("patient.birthDate", "2999-07-31", "invalid_date", "patient.birthDate", "2999"),
    ("eventTime", PROBE, "invalid_date", "eventTime", PROBE),
    ("messageType", "ADT^A03", "missing_required_field", "visit.dischargeTime", "SGH-V-2024-000871"),
    ("visit.class", PROBE, "unknown_code", "visit.class", PROBE),
    ("visit.class", "U", "unknown_code", "visit.class", "SGH-V-2024-000871"),
    ("patient.name.0.use", PROBE, "unknown_code", "patient.name.use", PROBE),
    ("patient.address.0.use", PROBE, "unknown_code", "patient.address.use", PROBE),
    ("patient.telecom.0.system", PROBE, "unknown_code", "patient.telecom.system", PROBE),
    ("patient.telecom.0.system", _DELETE, "unknown_code", "patient.telecom.system", "555-0142"),
    ("patient.telecom.0.use", PROBE, "unknown_code", "patient.telecom.use", PROBE),
    ("patient.name.0.family", {"text": PROBE}, "invalid_field_type", "patient.name.family", PROBE),
    ("visit.location.room", [PROBE, {"bed": PROBE}], "invalid_field_type", "visit.location.room", PROBE),
    ("patient.name.0.family", f"Test\x07{PROBE}", "invalid_characters", "patient.name.family", PROBE),
    ("visit.attending.given", [f"{PROBE}\x1b"], "invalid_characters", "visit.attending.given", PROBE),
    ("visit", [{"visitNumber": PROBE, "class": "I", "admitTime": "2024-03-05T14:20:00Z"}] * 2, "invalid_field_type",
     "visit", PROBE),
    ("patient.birthDate", ["1987-06-15", "1988-01-01"], "invalid_field_type", "patient.birthDate", "1988"),
    ("visit.visitNumber", [PROBE, "V-2"], "invalid_field_type", "visitNumber", PROBE),
]  # fmt: skip


@pytest.mark.parametrize(("path", "value", "code", "field", "secret"), RULES, ids=lambda v: str(v)[:30])
def test_validation_rule(path, value, code, field, secret):
    message = admit_sample()
    _set(message, path, value)
    result = run(message)
    assert isinstance(result, Error), result
    assert (result.stage, result.code) == ("validate", code), result
    assert field in result.detail
    assert secret not in result.detail and PROBE not in result.detail


def test_every_rule_of_the_mapping_is_exercised_above():
    from beam_pipeline.mapping.mapping_set import compiled

    steps = compiled().by_type["adt^a01"].steps
    details = set()
    for path, value, *_ in RULES:
        message = admit_sample()
        _set(message, path, value)
        details.add(run(message).detail)
    assert {s.detail for s in steps if s.kind == "when"} <= details
    required = [name for s in steps if s.kind == "required" for name in s.names]
    assert all(f"missing or empty: {name}" in details for name in required)
    dates = [name for s in steps if s.kind == "dates" for name in s.names if name != "visit.dischargeTime"]
    assert all(f"{name} is not a valid date or date-time" in details for name in dates)


def test_a_valid_discharge_of_the_admitted_visit_updates_the_same_encounter():
    admit = run(admit_sample())
    message = admit_sample()
    message["messageType"] = "ADT^A03"
    message["visit"]["dischargeTime"] = "2024-03-06T10:05:00-05:00"
    discharge = run(message)
    assert [m.identifier for m in admit.resources] == [m.identifier for m in discharge.resources]


def test_generated_messages_are_valid_and_distinct():
    identifiers = set()
    for n in range(10):
        result = run(adt_message(f"T-mrn-{n}", f"T-visit-{n}", n))
        assert isinstance(result, Ok), (n, result)
        identifiers.update(m.identifier for m in result.resources)
    assert len(identifiers) == 20
