"""Synthetic Synthea-shaped clinical rows (made-up values) covering every profile the clinical mappers
choose: each vital-sign profile, both blood-pressure parts, lab, smoking status, the other observation
categories, both condition categories, every encounter class. Used by the HAPI integration tests."""

from __future__ import annotations

from typing import Any

from dev import terminology_tables as tt

START = "2019-02-17T08:51:37Z"
STOP = "2019-02-17T09:06:37Z"


def patient_row(patient: str, n: int = 0) -> dict[str, Any]:
    return {
        "MESSAGE_TYPE": "patient", "Id": patient, "BIRTHDATE": "1970-03-04", "FIRST": f"Testa{n}",
        "LAST": "Synthetic", "GENDER": "F", "RACE": "white", "ETHNICITY": "nonhispanic", "STATE": "MA",
    }  # fmt: skip


def encounter_row(patient: str, encounter: str, cls: str = "wellness") -> dict[str, Any]:
    # No ORGANIZATION or PROVIDER: the tests that use these rows publish no organizations or clinicians, and an
    # encounter referring to one would wait for it.
    return {
        "MESSAGE_TYPE": "encounter", "Id": encounter, "START": START, "STOP": STOP, "PATIENT": patient,
        "ORGANIZATION": "", "PROVIDER": "", "PAYER": "", "ENCOUNTERCLASS": cls,
        "CODE": "162673000", "DESCRIPTION": "General examination of patient (procedure)",
        "REASONCODE": "444814009", "REASONDESCRIPTION": "Viral sinusitis (disorder)",
    }  # fmt: skip


def observation_row(patient: str, encounter: str, category: str, code: str, value: str, units: str,
                    kind: str = "numeric", description: str = "Synthetic observation") -> dict[str, Any]:  # fmt: skip
    return {
        "MESSAGE_TYPE": "observation", "DATE": START, "PATIENT": patient, "ENCOUNTER": encounter,
        "CATEGORY": category, "CODE": code, "DESCRIPTION": description, "VALUE": value, "UNITS": units,
        "TYPE": kind,
    }  # fmt: skip


_VITAL_VALUES = {
    "8302-2": ("172.4", "cm", "Body Height"),
    "29463-7": ("71.3", "kg", "Body Weight"),
    "39156-5": ("24.0", "kg/m2", "Body mass index (BMI) [Ratio]"),
    "8867-4": ("72", "/min", "Heart rate"),
    "9279-1": ("14", "/min", "Respiratory rate"),
    "8310-5": ("37.1", "Cel", "Body temperature"),
    "9843-4": ("45.2", "cm", "Head Occipital-frontal circumference"),
    "59576-9": ("55.0", "%", "Body mass index (BMI) [Percentile] Per age and sex"),
    "77606-2": ("48.0", "%", "Weight-for-length Per age and sex"),
    "8289-1": ("60.0", "%", "Head Occipital-frontal circumference Percentile"),
    "59408-5": ("98", "%", "Oxygen saturation in Arterial blood by Pulse oximetry"),
    "2708-6": ("97", "%", "Oxygen saturation in Arterial blood"),
    "8480-6": ("128", "mm[Hg]", "Systolic Blood Pressure"),
    "8462-4": ("81", "mm[Hg]", "Diastolic Blood Pressure"),
}
assert set(_VITAL_VALUES) == set(tt.VITAL_SIGNS)


def observation_rows(patient: str, encounter: str) -> list[dict[str, Any]]:
    rows = [
        observation_row(patient, encounter, "vital-signs", code, value, units, description=description)
        for code, (value, units, description) in _VITAL_VALUES.items()
    ]
    return rows + [
        observation_row(patient, encounter, "vital-signs", "72514-3", "2", "{score}",
                        description="Pain severity - 0-10 verbal numeric rating [Score] - Reported"),
        observation_row(patient, encounter, "laboratory", "2339-0", "87.0", "mg/dL",
                        description="Glucose [Mass/volume] in Blood"),
        observation_row(patient, encounter, "laboratory", "5778-6", "Yellow", "", "text",
                        description="Color of Urine"),
        observation_row(patient, encounter, "survey", "72166-2", "Never smoked tobacco (finding)", "", "text",
                        description="Tobacco smoking status"),
        observation_row(patient, encounter, "survey", "72166-2", "Ex-smoker (finding)", "", "text",
                        description="Tobacco smoking status") | {"DATE": STOP},
        observation_row(patient, encounter, "survey", "44250-9", "1.0", "{score}",
                        description="Little interest or pleasure in doing things"),
        observation_row(patient, encounter, "social-history", "76690-7", "Heterosexual", "", "text",
                        description="Sexual orientation"),
        observation_row(patient, encounter, "exam", "29544-4", "Normal", "", "text",
                        description="Physical findings"),
        observation_row(patient, encounter, "therapy", "80271-0", "Yes", "", "text",
                        description="Therapy note"),
    ]  # fmt: skip


def clinical_rows(patient: str, encounter: str) -> list[dict[str, Any]]:
    """One encounter and every other type for `patient`, all in that encounter (some without it)."""
    return [
        encounter_row(patient, encounter),
        {"MESSAGE_TYPE": "condition", "START": "2019-02-17", "STOP": "2019-03-03", "PATIENT": patient,
         "ENCOUNTER": encounter, "SYSTEM": "SNOMED-CT", "CODE": "444814009",
         "DESCRIPTION": "Viral sinusitis (disorder)"},
        {"MESSAGE_TYPE": "condition", "START": "2015-06-01", "STOP": "", "PATIENT": patient, "ENCOUNTER": "",
         "CODE": "38341003", "DESCRIPTION": "Hypertension"},
        *observation_rows(patient, encounter),
        {"MESSAGE_TYPE": "immunization", "DATE": START, "PATIENT": patient, "ENCOUNTER": encounter,
         "CODE": "140", "DESCRIPTION": "Influenza  seasonal  injectable  preservative free", "BASE_COST": "140.52"},
        {"MESSAGE_TYPE": "allergy", "START": "2019-02-17", "STOP": "", "PATIENT": patient, "ENCOUNTER": encounter,
         "CODE": "91935009", "SYSTEM": "SNOMED-CT", "DESCRIPTION": "Allergy to peanuts", "TYPE": "allergy",
         "CATEGORY": "food", "REACTION1": "39579001", "DESCRIPTION1": "Anaphylaxis (disorder)",
         "SEVERITY1": "SEVERE", "REACTION2": "271807003", "DESCRIPTION2": "Eruption of skin (disorder)",
         "SEVERITY2": "MILD"},
        {"MESSAGE_TYPE": "allergy", "START": "2010-01-01", "STOP": "2012-01-01", "PATIENT": patient,
         "ENCOUNTER": "", "CODE": "7980", "SYSTEM": "RxNorm", "DESCRIPTION": "Penicillin G",
         "TYPE": "allergy", "CATEGORY": "medication"},
        {"MESSAGE_TYPE": "procedure", "START": START, "STOP": STOP, "PATIENT": patient, "ENCOUNTER": encounter,
         "SYSTEM": "SNOMED-CT", "CODE": "710824005",
         "DESCRIPTION": "Assessment of health and social care needs (procedure)", "REASONCODE": "444814009",
         "REASONDESCRIPTION": "Viral sinusitis (disorder)"},
        {"MESSAGE_TYPE": "medication", "START": START, "STOP": "2019-02-27T08:51:37Z", "PATIENT": patient,
         "ENCOUNTER": encounter, "CODE": "308182", "DESCRIPTION": "Amoxicillin 250 MG Oral Capsule",
         "DISPENSES": "1", "REASONCODE": "444814009", "REASONDESCRIPTION": "Viral sinusitis (disorder)"},
        {"MESSAGE_TYPE": "medication", "START": "2015-06-01T10:00:00Z", "STOP": "", "PATIENT": patient,
         "ENCOUNTER": "", "CODE": "316049", "DESCRIPTION": "Hydrochlorothiazide 25 MG Oral Tablet"},
    ]  # fmt: skip
