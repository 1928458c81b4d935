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
