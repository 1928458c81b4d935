"""Terminology tables for the US Core mapping: data, in one module, not `if` chains in the mappers.

Codes are from public code systems: USPS state abbreviations and FIPS state codes, CDC Race & Ethnicity
(urn:oid:2.16.840.1.113883.6.238) OMB categories, HL7 v3 MaritalStatus, HL7 v2 table 0203 identifier
types. Keys of the lookup tables are lower case; look them up with `.lower()` / `.strip()` input.
"""

from __future__ import annotations

US_CORE_PATIENT = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"
US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
US_CORE_ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
GEOLOCATION = "http://hl7.org/fhir/StructureDefinition/geolocation"
BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"

CDC_RACE_ETHNICITY = "urn:oid:2.16.840.1.113883.6.238"
MARITAL_STATUS = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"

SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
PASSPORT_SYSTEM = "http://hl7.org/fhir/sid/passport-USA"
# HL7's root for US driver's licence numbers: the state's FIPS code is appended.
DRIVERS_LICENSE_ROOT = "urn:oid:2.16.840.1.113883.4.3."
DEFAULT_SOURCE_ID_SYSTEM = "urn:kafka-to-fhir:source-id"
DEFAULT_DRIVERS_LICENSE_SYSTEM = "urn:kafka-to-fhir:drivers-license"

# identifier kind -> (v2-0203 code, display)
IDENTIFIER_TYPES = {
    "source": ("MR", "Medical record number"),
    "ssn": ("SS", "Social Security number"),
    "drivers": ("DL", "Driver's license number"),
    "passport": ("PPN", "Passport number"),
}

# Synthea RACE -> OMB category (CDC code, display), or None when it has no OMB category ("other").
RACE = {
    "white": ("2106-3", "White"),
    "black": ("2054-5", "Black or African American"),
    "asian": ("2028-9", "Asian"),
    "native": ("1002-5", "American Indian or Alaska Native"),
    "hawaiian": ("2076-8", "Native Hawaiian or Other Pacific Islander"),
    "other": None,
}
RACE_TEXT = {
    "white": "White",
    "black": "Black or African American",
    "asian": "Asian",
    "native": "American Indian or Alaska Native",
    "hawaiian": "Native Hawaiian or Other Pacific Islander",
    "other": "Other Race",
}
# "Other Race" is a detailed CDC code outside the five OMB categories.
RACE_DETAILED = {"other": ("2131-1", "Other Race")}
OMB_RACE_CODES = frozenset(code for code, _ in filter(None, RACE.values()))

ETHNICITY = {
    "hispanic": ("2135-2", "Hispanic or Latino"),
    "nonhispanic": ("2186-5", "Not Hispanic or Latino"),
}
OMB_ETHNICITY_CODES = frozenset(code for code, _ in ETHNICITY.values())

# Synthea MARITAL (and spelled-out forms) -> v3-MaritalStatus (code, display)
MARITAL = {
    "m": ("M", "Married"),
    "married": ("M", "Married"),
    "s": ("S", "Never Married"),
    "single": ("S", "Never Married"),
    "never married": ("S", "Never Married"),
    "d": ("D", "Divorced"),
    "divorced": ("D", "Divorced"),
    "w": ("W", "Widowed"),
    "widowed": ("W", "Widowed"),
    "l": ("L", "Legally Separated"),
    "separated": ("L", "Legally Separated"),
    "a": ("A", "Annulled"),
    "i": ("I", "Interlocutory"),
    "p": ("P", "Polygamous"),
    "t": ("T", "Domestic partner"),
    "u": ("U", "Unmarried"),
}
MARITAL_CODES = frozenset(code for code, _ in MARITAL.values())

GENDER = {"f": "female", "female": "female", "m": "male", "male": "male", "o": "other", "other": "other"}
GENDER_CODES = frozenset({"male", "female", "other", "unknown"})

# USPS code -> (name, FIPS state code)
STATES = {
    "AL": ("Alabama", "01"), "AK": ("Alaska", "02"), "AZ": ("Arizona", "04"), "AR": ("Arkansas", "05"),
    "CA": ("California", "06"), "CO": ("Colorado", "08"), "CT": ("Connecticut", "09"),
    "DE": ("Delaware", "10"), "DC": ("District of Columbia", "11"), "FL": ("Florida", "12"),
    "GA": ("Georgia", "13"), "HI": ("Hawaii", "15"), "ID": ("Idaho", "16"), "IL": ("Illinois", "17"),
    "IN": ("Indiana", "18"), "IA": ("Iowa", "19"), "KS": ("Kansas", "20"), "KY": ("Kentucky", "21"),
    "LA": ("Louisiana", "22"), "ME": ("Maine", "23"), "MD": ("Maryland", "24"),
    "MA": ("Massachusetts", "25"), "MI": ("Michigan", "26"), "MN": ("Minnesota", "27"),
    "MS": ("Mississippi", "28"), "MO": ("Missouri", "29"), "MT": ("Montana", "30"),
    "NE": ("Nebraska", "31"), "NV": ("Nevada", "32"), "NH": ("New Hampshire", "33"),
    "NJ": ("New Jersey", "34"), "NM": ("New Mexico", "35"), "NY": ("New York", "36"),
    "NC": ("North Carolina", "37"), "ND": ("North Dakota", "38"), "OH": ("Ohio", "39"),
    "OK": ("Oklahoma", "40"), "OR": ("Oregon", "41"), "PA": ("Pennsylvania", "42"),
    "RI": ("Rhode Island", "44"), "SC": ("South Carolina", "45"), "SD": ("South Dakota", "46"),
    "TN": ("Tennessee", "47"), "TX": ("Texas", "48"), "UT": ("Utah", "49"), "VT": ("Vermont", "50"),
    "VA": ("Virginia", "51"), "WA": ("Washington", "53"), "WV": ("West Virginia", "54"),
    "WI": ("Wisconsin", "55"), "WY": ("Wyoming", "56"), "AS": ("American Samoa", "60"),
    "GU": ("Guam", "66"), "MP": ("Northern Mariana Islands", "69"), "PR": ("Puerto Rico", "72"),
    "VI": ("U.S. Virgin Islands", "78"),
}  # fmt: skip
# Any spelling we accept for a state -> USPS code.
STATE_LOOKUP = {name.lower(): code for code, (name, _) in STATES.items()} | {c.lower(): c for c in STATES}
STATE_LOOKUP["virgin islands"] = "VI"

COUNTRY_LOOKUP = {"us": "US", "usa": "US", "united states": "US", "united states of america": "US"}

# --- Clinical resource types (encounter, condition, observation, immunization, allergy, procedure,
# medication): US Core 6.1.0 profiles, canonical code system URIs, and the Synthea spellings that map to them.

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
US_CORE_ENCOUNTER = US_CORE + "us-core-encounter"
US_CORE_CONDITION_ENCOUNTER_DIAGNOSIS = US_CORE + "us-core-condition-encounter-diagnosis"
US_CORE_CONDITION_PROBLEMS = US_CORE + "us-core-condition-problems-health-concerns"
US_CORE_OBSERVATION_LAB = US_CORE + "us-core-observation-lab"
US_CORE_VITAL_SIGNS = US_CORE + "us-core-vital-signs"
US_CORE_SMOKING_STATUS = US_CORE + "us-core-smokingstatus"
US_CORE_SCREENING_ASSESSMENT = US_CORE + "us-core-observation-screening-assessment"
US_CORE_SIMPLE_OBSERVATION = US_CORE + "us-core-simple-observation"
US_CORE_CLINICAL_RESULT = US_CORE + "us-core-observation-clinical-result"
US_CORE_IMMUNIZATION = US_CORE + "us-core-immunization"
US_CORE_ALLERGY = US_CORE + "us-core-allergyintolerance"
US_CORE_PROCEDURE = US_CORE + "us-core-procedure"
US_CORE_MEDICATION_REQUEST = US_CORE + "us-core-medicationrequest"

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"

# Identifier system of rows that carry no Id (conditions, observations, ...): the value is a hash of the
# row's natural key, so a redelivered or replayed row lands on the same resource.
DEFAULT_NATURAL_KEY_SYSTEM = "urn:kafka-to-fhir:natural-key"

# The SYSTEM column's spellings (lower case) -> canonical code system URI.
CODE_SYSTEMS = {
    "snomed-ct": SNOMED, "snomed": SNOMED, "sct": SNOMED, SNOMED: SNOMED,
    "loinc": LOINC, LOINC: LOINC,
    "rxnorm": RXNORM, RXNORM: RXNORM,
    "cvx": CVX, CVX: CVX,
    "icd-10-cm": ICD10CM, "icd10cm": ICD10CM, "icd-10": ICD10CM, ICD10CM: ICD10CM,
}  # fmt: skip

# Synthea ENCOUNTERCLASS -> v3 ActCode (code, display), as Synthea's own FHIR exporter classes them.
ENCOUNTER_CLASS = {
    "ambulatory": ("AMB", "ambulatory"),
    "wellness": ("AMB", "ambulatory"),
    "outpatient": ("AMB", "ambulatory"),
    "urgentcare": ("AMB", "ambulatory"),
    "emergency": ("EMER", "emergency"),
    "inpatient": ("IMP", "inpatient encounter"),
    "snf": ("IMP", "inpatient encounter"),
    "home": ("HH", "home health"),
    "hospice": ("HH", "home health"),
    "virtual": ("VR", "virtual"),
    "telemedicine": ("VR", "virtual"),
}

# Observation CATEGORY (observation-category codes) -> US Core profile, for rows that no code-specific
# profile below claims.
OBSERVATION_CATEGORY_PROFILES = {
    "vital-signs": US_CORE_VITAL_SIGNS,
    "laboratory": US_CORE_OBSERVATION_LAB,
    "survey": US_CORE_SCREENING_ASSESSMENT,
    "social-history": US_CORE_SIMPLE_OBSERVATION,
    "exam": US_CORE_CLINICAL_RESULT,
    "imaging": US_CORE_CLINICAL_RESULT,
    "procedure": US_CORE_CLINICAL_RESULT,
    "therapy": US_CORE_CLINICAL_RESULT,
    "activity": US_CORE_CLINICAL_RESULT,
}
OBSERVATION_CATEGORY_DISPLAY = {
    "vital-signs": "Vital Signs", "laboratory": "Laboratory", "survey": "Survey",
    "social-history": "Social History", "exam": "Exam", "imaging": "Imaging", "procedure": "Procedure",
    "therapy": "Therapy", "activity": "Activity",
}  # fmt: skip

US_CORE_PULSE_OXIMETRY = US_CORE + "us-core-pulse-oximetry"
O2_SATURATION = "Oxygen saturation in Arterial blood"
O2_SATURATION_PULSE_OXIMETRY = "Oxygen saturation in Arterial blood by Pulse oximetry"
# LOINC vital sign -> (US Core profile, the UCUM units that profile allows, LOINC codings the profile needs
# besides the row's own). Blood pressure arrives as separate systolic (8480-6) and diastolic (8462-4) rows:
# each is a vital sign of its own under the generic profile (the 85354-9 panel needs both in one resource).
VITAL_SIGNS: dict[str, tuple[str, frozenset[str], tuple[tuple[str, str], ...]]] = {
    "8302-2": (US_CORE + "us-core-body-height", frozenset({"cm", "[in_i]"}), ()),
    "29463-7": (US_CORE + "us-core-body-weight", frozenset({"kg", "[lb_av]", "g"}), ()),
    "39156-5": (US_CORE + "us-core-bmi", frozenset({"kg/m2"}), ()),
    "8867-4": (US_CORE + "us-core-heart-rate", frozenset({"/min"}), ()),
    "9279-1": (US_CORE + "us-core-respiratory-rate", frozenset({"/min"}), ()),
    "8310-5": (US_CORE + "us-core-body-temperature", frozenset({"Cel", "[degF]"}), ()),
    "9843-4": (US_CORE + "us-core-head-circumference", frozenset({"cm", "[in_i]"}), ()),
    "59576-9": (US_CORE + "pediatric-bmi-for-age", frozenset({"%"}), ()),
    "77606-2": (US_CORE + "pediatric-weight-for-height", frozenset({"%"}), ()),
    "8289-1": (US_CORE + "head-occipital-frontal-circumference-percentile", frozenset({"%"}), ()),
    "59408-5": (US_CORE_PULSE_OXIMETRY, frozenset({"%"}), (("2708-6", O2_SATURATION),)),
    "2708-6": (US_CORE_PULSE_OXIMETRY, frozenset({"%"}), (("59408-5", O2_SATURATION_PULSE_OXIMETRY),)),
    "8480-6": (US_CORE_VITAL_SIGNS, frozenset({"mm[Hg]"}), ()),
    "8462-4": (US_CORE_VITAL_SIGNS, frozenset({"mm[Hg]"}), ()),
}  # fmt: skip
BLOOD_PRESSURE_PARTS = frozenset({"8480-6", "8462-4"})

SMOKING_STATUS_CODE = "72166-2"
# Synthea's smoking status text (lower case, "(finding)" removed) -> SNOMED CT (code, display).
SMOKING_STATUS = {
    "never smoked tobacco": ("266919005", "Never smoked tobacco"),
    "never smoker": ("266919005", "Never smoked tobacco"),
    "ex-smoker": ("8517006", "Ex-smoker"),
    "former smoker": ("8517006", "Ex-smoker"),
    "smokes tobacco daily": ("449868002", "Smokes tobacco daily"),
    "current every day smoker": ("449868002", "Smokes tobacco daily"),
    "occasional tobacco smoker": ("428041000124106", "Occasional tobacco smoker"),
    "current some day smoker": ("428041000124106", "Occasional tobacco smoker"),
    "smoker, current status unknown": ("77176002", "Smoker"),
    "heavy tobacco smoker": ("428071000124103", "Heavy tobacco smoker"),
    "light tobacco smoker": ("428061000124105", "Light tobacco smoker"),
    "unknown if ever smoked": ("266927001", "Tobacco smoking consumption unknown"),
}

# Observation TYPE -> how VALUE is carried.
OBSERVATION_VALUE_TYPES = {"numeric": "numeric", "text": "text", "string": "text"}

ALLERGY_TYPES = frozenset({"allergy", "intolerance"})
ALLERGY_CATEGORIES = frozenset({"food", "medication", "environment", "biologic"})
ALLERGY_SEVERITIES = frozenset({"mild", "moderate", "severe"})
