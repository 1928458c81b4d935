"""Clinical rows (Synthea CSV columns as JSON) -> US Core 6.1.0 Encounter, Condition, Observation,
Immunization, AllergyIntolerance, Procedure, MedicationRequest; registry dispatch and error codes."""

from __future__ import annotations

import json

import pytest

from beam_pipeline.us_core import Error, Filtered, Ok, TransformConfig, transform
from beam_pipeline.us_core import terminology as t
from beam_pipeline.us_core.stages import parse_and_validate
from dev import terminology_tables as tt
from tests.support.mappings import message_types

PATIENT = "5e0c1a9b-patient-0001"
ENCOUNTER = "9a7b2c3d-encounter-0001"
ROWS = {
    "encounter": {
        "Id": ENCOUNTER, "START": "2019-02-17T08:51:37Z", "STOP": "2019-02-17T09:06:37Z", "PATIENT": PATIENT,
        "ORGANIZATION": "org-1", "PROVIDER": "prov-1", "PAYER": "", "ENCOUNTERCLASS": "ambulatory",
        "CODE": "185345009", "DESCRIPTION": "Encounter for symptom", "REASONCODE": "444814009",
        "REASONDESCRIPTION": "Viral sinusitis (disorder)",
    },
    "condition": {
        "START": "2019-02-17", "STOP": "", "PATIENT": PATIENT, "ENCOUNTER": ENCOUNTER, "CODE": "444814009",
        "DESCRIPTION": "Viral sinusitis (disorder)",
    },
    "observation": {
        "DATE": "2019-02-17T08:51:37Z", "PATIENT": PATIENT, "ENCOUNTER": ENCOUNTER, "CATEGORY": "vital-signs",
        "CODE": "8302-2", "DESCRIPTION": "Body Height", "VALUE": "172.4", "UNITS": "cm", "TYPE": "numeric",
    },
    "immunization": {
        "DATE": "2019-02-17T08:51:37Z", "PATIENT": PATIENT, "ENCOUNTER": ENCOUNTER, "CODE": "140",
        "DESCRIPTION": "Influenza  seasonal  injectable  preservative free", "BASE_COST": "140.52",
    },
    "allergy": {
        "START": "2019-02-17", "STOP": "", "PATIENT": PATIENT, "ENCOUNTER": ENCOUNTER, "CODE": "300916003",
        "SYSTEM": "SNOMED-CT", "DESCRIPTION": "Latex allergy", "TYPE": "allergy", "CATEGORY": "environment",
        "REACTION1": "247472004", "DESCRIPTION1": "Wheal (finding)", "SEVERITY1": "MODERATE",
        "REACTION2": "", "DESCRIPTION2": "", "SEVERITY2": "",
    },
    "procedure": {
        "START": "2019-02-17T08:51:37Z", "STOP": "2019-02-17T09:06:37Z", "PATIENT": PATIENT,
        "ENCOUNTER": ENCOUNTER, "SYSTEM": "SNOMED-CT", "CODE": "23426006",
        "DESCRIPTION": "Measurement of respiratory function",
        "BASE_COST": "431.40", "REASONCODE": "444814009", "REASONDESCRIPTION": "Viral sinusitis (disorder)",
    },
    "medication": {
        "START": "2019-02-17T08:51:37Z", "STOP": "", "PATIENT": PATIENT, "PAYER": "payer-1",
        "ENCOUNTER": ENCOUNTER, "CODE": "308182", "DESCRIPTION": "Amoxicillin 250 MG Oral Capsule",
        "DISPENSES": "1", "TOTALCOST": "11.06", "REASONCODE": "", "REASONDESCRIPTION": "",
    },
}  # fmt: skip
RESOURCE_TYPES = {
    "encounter": "Encounter",
    "condition": "Condition",
    "observation": "Observation",
    "immunization": "Immunization",
    "allergy": "AllergyIntolerance",
    "procedure": "Procedure",
    "medication": "MedicationRequest",
}
PATIENT_REF = f"Patient?identifier={t.DEFAULT_SOURCE_ID_SYSTEM}|{PATIENT}"
ENCOUNTER_REF = f"Encounter?identifier={t.DEFAULT_SOURCE_ID_SYSTEM}|{ENCOUNTER}"


def raw(kind: str, **fields) -> bytes:
    return json.dumps({"MESSAGE_TYPE": kind} | ROWS[kind] | fields).encode()


def mapped(kind: str, **fields) -> dict:
    result = transform(raw(kind, **fields))
    assert isinstance(result, Ok), result
    assert len(result.resources) == 1
    return result.resources[0].resource


def error(kind: str, **fields) -> Error:
    result = transform(raw(kind, **fields))
    assert isinstance(result, Error), result
    return result


# -- dispatch ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(ROWS))
def test_every_type_is_registered_and_maps_to_its_resource(kind):
    assert kind in message_types()
    resource = mapped(kind)
    assert resource["resourceType"] == RESOURCE_TYPES[kind]
    assert resource["meta"]["profile"][0].startswith(t.US_CORE)


@pytest.mark.parametrize("kind", sorted(ROWS))
def test_type_from_the_topic_wins_over_the_message(kind):
    row = json.dumps(ROWS[kind]).encode()  # no MESSAGE_TYPE: without the topic it would be a patient
    config = TransformConfig(topic_types={f"synthea.{kind}": kind})
    result = transform(row, topic=f"synthea.{kind}", config=config)
    assert isinstance(result, Ok), result
    assert result.resources[0].resource["resourceType"] == RESOURCE_TYPES[kind]


@pytest.mark.parametrize(
    ("given", "kind"),
    [("Encounter", "encounter"), ("AllergyIntolerance", "allergy"), ("MedicationRequest", "medication"),
     ("observations", "observation"), (" CONDITION ", "condition")],
)  # fmt: skip
def test_type_field_aliases(given, kind):
    record = {"MESSAGE_TYPE": given} | ROWS[kind]
    parsed = parse_and_validate(json.dumps(record).encode(), None, TransformConfig())
    assert parsed.message_type == kind


def test_unknown_type_is_its_own_error_and_never_quotes_the_value():
    secret = "Zyxwvut-Patient-Name-Soup"
    result = transform(json.dumps({"MESSAGE_TYPE": secret}).encode())
    assert (result.stage, result.code) == ("validate", "unknown_message_type")
    assert secret.lower() not in result.detail.lower()
    assert secret[:8].lower() not in result.detail.lower()
    config = TransformConfig(topic_types={"t": secret})
    result = transform(json.dumps(ROWS["condition"]).encode(), topic="t", config=config)
    assert result.code == "unknown_message_type"
    assert secret[:8].lower() not in result.detail.lower()


def test_business_filters_apply_to_patients_only():
    # Clinical rows carry no COUNTRY or PROGRAM_NAME: a patient filter must not drop them all.
    config = TransformConfig(filter_country="US", filter_program_names=frozenset({"P1"}))
    assert isinstance(transform(raw("condition"), config=config), Ok)


# -- identity and references ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(ROWS))
def test_business_identifier_is_on_the_resource(kind):
    # The write's conditional update finds the resource by this identifier; it must be on the resource.
    result = transform(raw(kind))
    system, value = result.resources[0].identifier
    assert {"system": system, "value": value} in result.resources[0].resource["identifier"]


@pytest.mark.parametrize("kind", sorted(set(ROWS) - {"encounter"}))
def test_rows_without_id_get_a_deterministic_natural_key(kind):
    first, again = transform(raw(kind)), transform(raw(kind))
    assert first.resources[0].identifier == again.resources[0].identifier
    system, value = first.resources[0].identifier
    assert system == t.DEFAULT_NATURAL_KEY_SYSTEM
    assert PATIENT not in value and ENCOUNTER not in value  # a hash, not patient data in a URL
    other_patient = transform(raw(kind, PATIENT="another-patient"))
    assert other_patient.resources[0].identifier != first.resources[0].identifier


def test_a_corrected_value_updates_the_same_observation():
    assert (
        transform(raw("observation", VALUE="172.4")).resources[0].identifier
        == transform(raw("observation", VALUE="173.0")).resources[0].identifier
    )


def test_systolic_and_diastolic_rows_are_two_observations():
    systolic = transform(raw("observation", CODE="8480-6", VALUE="128", UNITS="mm[Hg]"))
    diastolic = transform(raw("observation", CODE="8462-4", VALUE="81", UNITS="mm[Hg]"))
    assert systolic.resources[0].identifier != diastolic.resources[0].identifier
    for result, code in ((systolic, "8480-6"), (diastolic, "8462-4")):
        obs = result.resources[0].resource
        assert obs["meta"]["profile"] == [t.US_CORE_VITAL_SIGNS]
        assert obs["code"]["coding"][0] == {"system": t.LOINC, "code": code, "display": "Body Height"}
        assert obs["valueQuantity"]["code"] == "mm[Hg]"


@pytest.mark.parametrize("kind", sorted(ROWS))
def test_references_are_conditional_on_business_identifiers(kind):
    resource = mapped(kind)
    subject = resource.get("subject") or resource.get("patient")
    assert subject == {"reference": PATIENT_REF}
    if kind != "encounter":
        assert resource["encounter"] == {"reference": ENCOUNTER_REF}


def test_reference_tokens_are_escaped_and_encoded():
    resource = mapped("condition", PATIENT="a|b c&d")
    # FHIR escapes | inside a token; & and space would break the URL, so they are percent-encoded.
    assert resource["subject"]["reference"] == f"Patient?identifier={t.DEFAULT_SOURCE_ID_SYSTEM}|a\\|b%20c%26d"


def test_source_id_system_names_the_patient():
    result = transform(raw("condition"), config=TransformConfig(source_id_system="https://ehr.example/ids"))
    assert (
        result.resources[0].resource["subject"]["reference"] == f"Patient?identifier=https://ehr.example/ids|{PATIENT}"
    )


# -- Encounter -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "code"), [(k, v[0]) for k, v in tt.ENCOUNTER_CLASS.items()])
def test_encounter_class_in_v3_act_code(given, code):
    assert mapped("encounter", ENCOUNTERCLASS=given.upper())["class"] == {
        "system": t.V3_ACT_CODE,
        "code": code,
        "display": tt.ENCOUNTER_CLASS[given][1],
    }


def test_encounter_required_mappings():
    assert {
        given: tt.ENCOUNTER_CLASS[given][0] for given in ("ambulatory", "wellness", "outpatient", "urgentcare")
    } == {
        "ambulatory": "AMB",
        "wellness": "AMB",
        "outpatient": "AMB",
        "urgentcare": "AMB",
    }
    assert tt.ENCOUNTER_CLASS["emergency"][0] == "EMER" and tt.ENCOUNTER_CLASS["inpatient"][0] == "IMP"


def test_encounter_fields():
    enc = mapped("encounter")
    assert enc["status"] == "finished"
    assert enc["identifier"] == [{"system": t.DEFAULT_SOURCE_ID_SYSTEM, "value": ENCOUNTER}]
    assert enc["type"][0]["coding"][0] == {"system": t.SNOMED, "code": "185345009", "display": "Encounter for symptom"}
    assert enc["period"] == {"start": "2019-02-17T08:51:37Z", "end": "2019-02-17T09:06:37Z"}
    assert enc["reasonCode"][0]["coding"][0]["code"] == "444814009"
    assert mapped("encounter", STOP="")["status"] == "in-progress"
    assert "end" not in mapped("encounter", STOP="")["period"]
    assert "reasonCode" not in mapped("encounter", REASONCODE="", REASONDESCRIPTION="")


def test_encounter_refers_to_its_organization_and_clinician_by_their_ids():
    enc = mapped("encounter")
    assert enc["serviceProvider"] == {"reference": f"Organization?identifier={t.DEFAULT_SOURCE_ID_SYSTEM}|org-1"}
    assert enc["location"] == [{"location": {"reference": f"Location?identifier={t.DEFAULT_SOURCE_ID_SYSTEM}|org-1"}}]
    assert [p["individual"] for p in enc["participant"]] == [
        {"reference": f"Practitioner?identifier={t.DEFAULT_SOURCE_ID_SYSTEM}|prov-1"}
    ]
    alone = mapped("encounter", ORGANIZATION="", PROVIDER="")
    assert not {"serviceProvider", "participant", "location"} & set(alone)


def test_encounter_errors():
    assert error("encounter", ENCOUNTERCLASS="spaceship").code == "unknown_code"
    assert error("encounter", Id="").code == "missing_required_field"
    assert error("encounter", STOP="2019-02-16T00:00:00Z").code == "invalid_date"


# -- Condition -----------------------------------------------------------------------------------------


def test_condition_with_encounter_is_an_encounter_diagnosis():
    cond = mapped("condition")
    assert cond["meta"]["profile"] == [t.US_CORE_CONDITION_ENCOUNTER_DIAGNOSIS]
    assert cond["category"][0]["coding"][0]["code"] == "encounter-diagnosis"
    assert cond["clinicalStatus"]["coding"][0]["code"] == "active"
    assert cond["onsetDateTime"] == "2019-02-17" and "abatementDateTime" not in cond
    assert cond["code"]["coding"][0]["system"] == t.SNOMED


def test_condition_without_encounter_is_a_problem_list_item():
    cond = mapped("condition", ENCOUNTER="")
    assert cond["meta"]["profile"] == [t.US_CORE_CONDITION_PROBLEMS]
    assert cond["category"][0]["coding"][0]["code"] == "problem-list-item"
    assert "encounter" not in cond


def test_condition_with_stop_is_resolved_with_abatement():
    cond = mapped("condition", STOP="2019-03-01")
    assert cond["clinicalStatus"]["coding"][0]["code"] == "resolved"
    assert cond["abatementDateTime"] == "2019-03-01"


@pytest.mark.parametrize(("system", "uri"), [("SNOMED-CT", t.SNOMED), ("ICD-10-CM", t.ICD10CM), ("", t.SNOMED)])
def test_condition_code_system(system, uri):
    assert mapped("condition", SYSTEM=system)["code"]["coding"][0]["system"] == uri


def test_condition_errors():
    assert error("condition", SYSTEM="Klingon").code == "unknown_code"
    assert error("condition", PATIENT="").code == "missing_required_field"
    assert error("condition", START="17/02/2019").code == "invalid_date"
    assert error("condition", STOP="2019-01-01").code == "invalid_date"
    assert error("condition", CODE={"x": 1}).code == "invalid_field_type"


# -- Observation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(tt.VITAL_SIGNS))
def test_every_vital_sign_goes_to_its_profile(code):
    profile, units, extra = tt.VITAL_SIGNS[code]
    unit = sorted(units)[0]
    obs = mapped("observation", CODE=code, UNITS=unit, VALUE="42.5")
    assert obs["meta"]["profile"] == [profile]
    assert obs["category"] == [
        {"coding": [{"system": t.OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}
    ]
    assert obs["valueQuantity"] == {"value": 42.5, "unit": unit, "system": t.UCUM, "code": unit}
    assert [c["code"] for c in obs["code"]["coding"]] == [code, *(e for e, _ in extra)]


def test_pulse_oximetry_carries_both_codes():
    obs = mapped("observation", CODE="2708-6", UNITS="%", VALUE="97")
    assert {c["code"] for c in obs["code"]["coding"]} == {"2708-6", "59408-5"}
    assert obs["valueQuantity"]["value"] == 97


def test_vital_sign_without_a_profile_of_its_own_is_a_generic_vital_sign():
    obs = mapped("observation", CODE="72514-3", DESCRIPTION="Pain severity", VALUE="2", UNITS="{score}")
    assert obs["meta"]["profile"] == [t.US_CORE_VITAL_SIGNS]


def test_laboratory_goes_to_the_lab_profile():
    obs = mapped("observation", CATEGORY="laboratory", CODE="2339-0", VALUE="87.0", UNITS="mg/dL")
    assert obs["meta"]["profile"] == [t.US_CORE_OBSERVATION_LAB]
    assert obs["category"][0]["coding"][0]["code"] == "laboratory"
    assert obs["valueQuantity"] == {"value": 87.0, "unit": "mg/dL", "system": t.UCUM, "code": "mg/dL"}


def test_smoking_status_goes_to_its_profile_with_a_snomed_value():
    never = "Never smoked tobacco (finding)"
    obs = mapped("observation", CATEGORY="survey", CODE="72166-2", VALUE=never, UNITS="", TYPE="text")
    assert obs["meta"]["profile"] == [t.US_CORE_SMOKING_STATUS]
    assert [c["coding"][0]["code"] for c in obs["category"]] == ["social-history", "survey"]
    assert obs["valueCodeableConcept"]["coding"] == [
        {"system": t.SNOMED, "code": "266919005", "display": "Never smoked tobacco"}
    ]
    assert obs["valueCodeableConcept"]["text"] == "Never smoked tobacco (finding)"


def test_unknown_smoking_text_stays_text():
    obs = mapped("observation", CATEGORY="survey", CODE="72166-2", VALUE="Sometimes", UNITS="", TYPE="text")
    assert obs["valueCodeableConcept"] == {"text": "Sometimes"}


@pytest.mark.parametrize(
    ("category", "profile"),
    [("survey", t.US_CORE_SCREENING_ASSESSMENT), ("social-history", t.US_CORE_SIMPLE_OBSERVATION),
     ("exam", t.US_CORE_CLINICAL_RESULT), ("imaging", t.US_CORE_CLINICAL_RESULT),
     ("procedure", t.US_CORE_CLINICAL_RESULT), ("therapy", t.US_CORE_CLINICAL_RESULT)],
)  # fmt: skip
def test_other_categories(category, profile):
    obs = mapped("observation", CATEGORY=category, CODE="1234-5", VALUE="Some text", UNITS="", TYPE="text")
    assert obs["meta"]["profile"] == [profile]
    assert obs["valueString"] == "Some text"


def test_observation_value_numbers():
    assert mapped("observation", VALUE="172")["valueQuantity"]["value"] == 172
    assert mapped("observation", VALUE=172.4)["valueQuantity"]["value"] == 172.4
    no_units = mapped("observation", CATEGORY="laboratory", CODE="2339-0", UNITS="", VALUE="5")
    assert no_units["valueQuantity"] == {"value": 5}


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"VALUE": "tall"}, "non_numeric_value"),
        ({"VALUE": "NaN"}, "non_numeric_value"),
        ({"VALUE": "1e999"}, "non_numeric_value"),
        ({"CATEGORY": "laboratory", "CODE": "2339-0", "VALUE": "high", "UNITS": "mg/dL"}, "non_numeric_value"),
        ({"TYPE": "text", "VALUE": "tall"}, "non_numeric_value"),  # a vital sign is a number
        ({"UNITS": "[ft_i]"}, "unknown_code"),  # not a unit us-core-body-height allows
        ({"CATEGORY": "gossip"}, "unknown_code"),
        ({"CATEGORY": ""}, "unknown_code"),
        ({"TYPE": "boolean"}, "unknown_code"),
        ({"VALUE": ""}, "missing_required_field"),
        ({"DATE": "yesterday"}, "invalid_date"),
        ({"DATE": "2019-02-30T08:00:00Z"}, "invalid_date"),
    ],
)
def test_observation_errors(fields, code):
    assert error("observation", **fields).code == code


# -- Immunization, AllergyIntolerance, Procedure, MedicationRequest -------------------------------------


def test_immunization_fields():
    imm = mapped("immunization")
    assert imm["status"] == "completed" and imm["primarySource"] is True
    assert imm["vaccineCode"]["coding"][0] == {
        "system": t.CVX,
        "code": "140",
        "display": "Influenza  seasonal  injectable  preservative free",
    }
    assert imm["occurrenceDateTime"] == "2019-02-17T08:51:37Z"
    assert error("immunization", CODE="").code == "missing_required_field"


def test_allergy_fields():
    allergy = mapped("allergy")
    assert allergy["clinicalStatus"]["coding"][0]["code"] == "active"
    assert allergy["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert allergy["type"] == "allergy" and allergy["category"] == ["environment"]
    assert allergy["reaction"] == [
        {
            "manifestation": [
                {
                    "coding": [{"system": t.SNOMED, "code": "247472004", "display": "Wheal (finding)"}],
                    "text": "Wheal (finding)",
                }
            ],
            "severity": "moderate",
        }
    ]
    resolved = mapped("allergy", STOP="2020-01-01", SYSTEM="RxNorm", REACTION1="", DESCRIPTION1="", SEVERITY1="")
    assert resolved["clinicalStatus"]["coding"][0]["code"] == "resolved"
    assert resolved["code"]["coding"][0]["system"] == t.RXNORM
    assert "reaction" not in resolved


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"SYSTEM": ""}, "unknown_code"),
        ({"SYSTEM": "LOINC"}, "unknown_code"),
        ({"CATEGORY": "weather"}, "unknown_code"),
        ({"TYPE": "dislike"}, "unknown_code"),
        ({"SEVERITY1": "extreme"}, "unknown_code"),
        ({"REACTION1": ""}, "missing_required_field"),
    ],
)
def test_allergy_errors(fields, code):
    assert error("allergy", **fields).code == code


@pytest.mark.parametrize(("code", "units"), [("QALY", "a"), ("DALY", "a"), ("QOLS", "{score}")])
def test_quality_of_life_rows_are_filtered_not_errors(code, units):
    # As Synthea 3.3 writes them: no category, the figure's name as the code.
    result = transform(raw("observation", CATEGORY="", CODE=code, DESCRIPTION=code, VALUE="0.9", UNITS=units))
    assert result == Filtered("CODE is a Synthea quality-of-life figure (QALY, DALY or QOLS), not an observation")


# Synthea 3.3 writes SYSTEM "Unknown" for every allergen.
@pytest.mark.parametrize(
    ("code", "system"),
    [
        ("111088007", t.SNOMED),  # Latex: a short concept identifier (partition 00)
        ("442571000124108", t.SNOMED),  # Tree nut: an extension's concept identifier (partition 10)
        ("1191", t.RXNORM),  # Aspirin: not an SCTID, in ValueSet rxnorm-allergens
        ("7984", t.RXNORM),  # Penicillin V
    ],
)
def test_allergy_with_system_unknown_maps_a_sctid_or_a_known_rxnorm_code(code, system):
    allergy = mapped("allergy", SYSTEM="Unknown", CODE=code)
    assert allergy["code"]["coding"][0] == {"system": system, "code": code, "display": "Latex allergy"}


@pytest.mark.parametrize(
    "code",
    [
        "111088008",  # the check digit is wrong
        "111088017",  # a description identifier (partition 01), not a concept
        "011088007",  # a leading zero
        "9999",  # too short for an SCTID, not an RxNorm allergen Synthea uses
        "latex",
    ],
)
def test_allergy_with_system_unknown_and_no_recognisable_code_is_refused(code):
    refused = error("allergy", SYSTEM="unknown", CODE=code)
    assert (refused.code, refused.detail) == (
        "unknown_code",
        "SYSTEM is Unknown and CODE is neither a SNOMED CT concept identifier (check digit, partition) nor in "
        "ValueSet rxnorm-allergens",
    )
    assert code not in refused.detail


def test_procedure_fields():
    proc = mapped("procedure")
    assert proc["status"] == "completed"
    assert proc["performedPeriod"] == {"start": "2019-02-17T08:51:37Z", "end": "2019-02-17T09:06:37Z"}
    assert proc["code"]["coding"][0]["system"] == t.SNOMED
    assert proc["reasonCode"][0]["coding"][0]["code"] == "444814009"
    assert mapped("procedure", STOP="")["performedPeriod"] == {"start": "2019-02-17T08:51:37Z"}


def test_medication_request_fields():
    request = mapped("medication")
    assert request["status"] == "active" and request["intent"] == "order"
    assert request["medicationCodeableConcept"]["coding"][0]["system"] == t.RXNORM
    assert request["authoredOn"] == "2019-02-17T08:51:37Z"
    # us-core-21: an order needs a requester; the row has none, so it is marked absent, not invented.
    assert request["requester"] == {"extension": [{"url": t.DATA_ABSENT_REASON, "valueCode": "unknown"}]}
    assert mapped("medication", STOP="2019-03-01T00:00:00Z")["status"] == "stopped"
    assert "reasonCode" not in request


def test_date_time_without_zone_keeps_only_its_date():
    assert mapped("immunization", DATE="2019-02-17T08:51:37")["occurrenceDateTime"] == "2019-02-17"


# -- no patient data in error details ------------------------------------------------------------------

SECRET = "Zyxwvut-Secret-Value"


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("encounter", {"ENCOUNTERCLASS": SECRET}),
        ("encounter", {"START": SECRET}),
        ("condition", {"SYSTEM": SECRET}),
        ("condition", {"CODE": {"x": SECRET}}),
        ("observation", {"VALUE": SECRET}),
        ("observation", {"CATEGORY": SECRET}),
        ("observation", {"TYPE": SECRET}),
        ("observation", {"UNITS": SECRET}),
        ("allergy", {"SEVERITY1": SECRET}),
        ("allergy", {"CATEGORY": SECRET}),
        ("medication", {"STOP": SECRET}),
    ],
)
def test_error_details_name_fields_never_values(kind, fields):
    result = error(kind, **fields)
    assert SECRET.lower() not in result.detail.lower()
    assert "secret" not in result.detail.lower()
