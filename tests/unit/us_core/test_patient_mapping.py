from __future__ import annotations

import json
import re
from datetime import date

import pytest

from beam_pipeline.us_core import Error, Filtered, Ok, TransformConfig, transform
from beam_pipeline.us_core import terminology as t
from beam_pipeline.us_core.stages import parse_and_validate
from dev import terminology_tables as tt

BASE = {"Id": "id-1", "FIRST": "Ann", "LAST": "Lee"}


def patient(**fields) -> dict:
    result = transform(json.dumps(BASE | fields).encode())
    assert isinstance(result, Ok), result
    return result.resources[0].resource


def error(raw: bytes | dict, **config) -> Error:
    data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    result = transform(data, config=TransformConfig(**config))
    assert isinstance(result, Error), result
    return result


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("F", "female"),
        ("f", "female"),
        ("Female", "female"),
        ("FEMALE", "female"),
        ("M", "male"),
        ("male", "male"),
        ("Male", "male"),
        ("", "unknown"),
        (None, "unknown"),
        ("x", "unknown"),
    ],
)
def test_gender_in_any_case(given, expected):
    assert patient(GENDER=given)["gender"] == expected


@pytest.mark.parametrize(("race", "omb"), [*tt.RACE.items(), *((k, None) for k in tt.RACE_DETAILED)])
def test_every_synthea_race_has_omb_code_and_text(race, omb):
    ext = next(e for e in patient(RACE=race)["extension"] if e["url"] == t.US_CORE_RACE)
    inner = {e["url"]: e for e in ext["extension"]}
    assert inner["text"]["valueString"] == (omb or tt.RACE_DETAILED[race])[1]
    if omb:
        assert inner["ombCategory"]["valueCoding"] == {
            "system": t.CDC_RACE_ETHNICITY,
            "code": omb[0],
            "display": omb[1],
        }
    else:
        assert "ombCategory" not in inner and inner["detailed"]["valueCoding"]["code"] == "2131-1"


@pytest.mark.parametrize(("value", "code"), [("hispanic", "2135-2"), ("nonhispanic", "2186-5")])
def test_ethnicity(value, code):
    ext = next(e for e in patient(ETHNICITY=value)["extension"] if e["url"] == t.US_CORE_ETHNICITY)
    assert ext["extension"][0]["valueCoding"]["code"] == code


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ("Massachusetts", "MA"),
        ("massachusetts", "MA"),
        ("MA", "MA"),
        ("District of Columbia", "DC"),
        ("Puerto Rico", "PR"),
    ],
)
def test_state_becomes_usps_code(state, code):
    assert patient(STATE=state, CITY="X")["address"][0]["state"] == code


@pytest.mark.parametrize(("marital", "code"), [("M", "M"), ("S", "S"), ("D", "D"), ("W", "W"), ("married", "M")])
def test_marital_status_coded(marital, code):
    coding = patient(MARITAL=marital)["maritalStatus"]["coding"][0]
    assert coding == {"system": t.MARITAL_STATUS, "code": code, "display": tt.MARITAL[marital.lower()][1]}


def test_identifiers_have_absolute_systems_and_types():
    idents = patient(SSN="999-11-2222", DRIVERS="S123", PASSPORT="X1X", STATE="New York")["identifier"]
    by_type = {i["type"]["coding"][0]["code"]: i for i in idents}
    assert by_type["MR"]["system"] == t.DEFAULT_SOURCE_ID_SYSTEM and by_type["MR"]["value"] == "id-1"
    assert by_type["SS"]["system"] == "http://hl7.org/fhir/sid/us-ssn"
    assert by_type["DL"]["system"] == "urn:oid:2.16.840.1.113883.4.3.36"  # New York's FIPS code
    assert by_type["PPN"]["system"] == t.PASSPORT_SYSTEM


@pytest.mark.parametrize("state", sorted(name for name, _ in tt.STATES.values()))
def test_drivers_license_system_is_a_valid_oid_for_every_state(state):
    # A leading zero in an OID arc (Alabama's FIPS is 01) makes HAPI's validator reject the Patient.
    [dl] = [i for i in patient(DRIVERS="S123", STATE=state)["identifier"] if i["type"]["coding"][0]["code"] == "DL"]
    assert re.fullmatch(r"urn:oid:2\.16\.840\.1\.113883\.4\.3\.[1-9][0-9]*", dl["system"]), dl["system"]


def test_source_id_system_is_configurable_and_is_the_business_identifier():
    result = transform(json.dumps(BASE).encode(), config=TransformConfig(source_id_system="urn:oid:1.2.3"))
    assert result.resources[0].identifier == ("urn:oid:1.2.3", "id-1")
    assert result.resources[0].resource["identifier"][0]["system"] == "urn:oid:1.2.3"


def test_names_prefix_suffix_middle_and_maiden():
    names = patient(PREFIX="Dr.", MIDDLE="B", SUFFIX="PhD", MAIDEN="Old")["name"]
    assert names[0] == {"use": "official", "family": "Lee", "given": ["Ann", "B"], "prefix": ["Dr."], "suffix": ["PhD"]}
    assert names[1] == {"use": "maiden", "family": "Old", "given": ["Ann", "B"]}


def test_address_geolocation_zip_and_birthplace():
    p = patient(
        ADDRESS="1 Main",
        CITY="Boston",
        STATE="MA",
        COUNTY="Suffolk",
        ZIP=2115,
        LAT="42.1",
        LON=-71.5,
        BIRTHPLACE="Hilo  Hawaii  US",
        COUNTRY="USA",
    )
    addr = p["address"][0]
    assert addr["postalCode"] == "02115" and addr["district"] == "Suffolk" and addr["country"] == "US"
    geo = {e["url"]: e["valueDecimal"] for e in addr["extension"][0]["extension"]}
    assert geo == {"latitude": 42.1, "longitude": -71.5}
    place = next(e for e in p["extension"] if e["url"] == t.BIRTH_PLACE)["valueAddress"]
    assert place == {"city": "Hilo", "state": "HI", "country": "US"}


def test_dates_email_and_death():
    p = patient(BIRTHDATE="1950-01-31", DEATHDATE="2020-05-05T10:00:00Z", EMAIL="a@example.com")
    assert p["birthDate"] == "1950-01-31" and p["deceasedDateTime"] == "2020-05-05T10:00:00Z"
    assert p["telecom"] == [{"system": "email", "value": "a@example.com"}]
    assert patient(DEATHDATE="2020-05-05T10:00:00")["deceasedDateTime"] == "2020-05-05"


def test_nothing_absent_is_invented():
    p = patient(SSN="", MIDDLE="  ", RACE=None)
    assert set(p) == {"resourceType", "meta", "identifier", "name", "gender"}
    assert len(p["identifier"]) == 1 and p["name"] == [{"use": "official", "family": "Lee", "given": ["Ann"]}]


@pytest.mark.parametrize(
    ("raw", "stage", "code"),
    [
        (b"\xff\xfe", "parse", "invalid_utf8"),
        (b"{not json", "parse", "invalid_json"),
        (b"[]", "parse", "not_an_object"),
        (b'"text"', "parse", "not_an_object"),
        ({"FIRST": "Ann"}, "validate", "missing_source_id"),
        ({"Id": "  ", "FIRST": "Ann"}, "validate", "missing_source_id"),
        ({"Id": "1", "MIDDLE": "Ann"}, "validate", "no_usable_name"),
        (BASE | {"BIRTHDATE": "2001-02-30"}, "validate", "invalid_date"),
        (BASE | {"BIRTHDATE": "31/01/2001"}, "validate", "invalid_date"),
        (BASE | {"BIRTHDATE": "2999-01-01"}, "validate", "invalid_date"),
        (BASE | {"BIRTHDATE": "2000-01-01", "DEATHDATE": "1999-01-01"}, "validate", "invalid_date"),
        (BASE | {"LAT": "north"}, "validate", "invalid_field_type"),
        (BASE | {"FIRST": {"nested": "x"}}, "validate", "invalid_field_type"),
        (BASE | {"MESSAGE_TYPE": "Spaceship"}, "validate", "unknown_message_type"),
    ],
)
def test_errors_have_stage_and_code(raw, stage, code):
    result = error(raw)
    assert (result.stage, result.code) == (stage, code)


def test_error_details_name_fields_never_values():
    secret = "Zyxwvut-Patient-Name"
    for raw in (BASE | {"BIRTHDATE": secret}, {"Id": "1", "LAST": {"x": secret}}, {"FIRST": secret}):
        result = error(raw)
        assert secret not in result.detail
    assert "BIRTHDATE" in error(BASE | {"BIRTHDATE": "nope"}).detail
    assert secret not in error(b'{"FIRST": "' + secret.encode() + b'" oops}').detail


def test_size_limit():
    result = error(json.dumps(BASE | {"ADDRESS": "x" * 500}).encode(), max_message_bytes=100)
    assert (result.stage, result.code) == ("parse", "too_large")


def test_filters_are_off_by_default_and_give_filtered():
    raw = json.dumps(BASE | {"COUNTRY": "CA", "PROGRAM_NAME": "P1"}).encode()
    assert isinstance(transform(raw), Ok)
    assert transform(raw, config=TransformConfig(filter_country="US")) == Filtered("COUNTRY is not US")
    only_p2 = TransformConfig(filter_program_names=frozenset({"P2"}))
    assert isinstance(transform(raw, config=only_p2), Filtered)
    assert isinstance(
        transform(raw, config=TransformConfig(filter_country="ca", filter_program_names=frozenset({"P1"}))), Ok
    )


def test_message_type_by_topic():
    raw = json.dumps(BASE).encode()
    config = TransformConfig(topic_types={"encounters": "spaceship"})
    assert transform(raw, topic="encounters", config=config).code == "unknown_message_type"
    assert isinstance(transform(raw, topic="patients", config=config), Ok)


def test_validation_uses_the_given_date():
    raw = json.dumps(BASE | {"BIRTHDATE": "2030-01-01"}).encode()
    assert parse_and_validate(raw, None, TransformConfig(), today=date(2031, 1, 1)).message_type == "patient"


@pytest.mark.parametrize("name", ["Na", "Null", "None", "NULL", "none", "NA"])
def test_real_names_that_look_like_placeholders_are_kept(name):
    # Only empty values mean absent: "Na" is a Korean surname, "Null" and "None" are family names too.
    p = patient(FIRST=name, MIDDLE=name, LAST=name, MAIDEN=name)
    assert p["name"][0] == {"use": "official", "family": name, "given": [name, name]}
    assert p["name"][1]["family"] == name


@pytest.mark.parametrize(
    ("country", "zip_code", "expected"),
    [
        (None, 2115, "02115"),
        ("US", "2115", "02115"),
        ("USA", 501, "00501"),  # Holtsville, NY
        ("United States", 12345, "12345"),
        ("AU", 2000, "2000"),  # Sydney: four digits is the whole postcode
        ("Denmark", "1050", "1050"),
        ("CA", "K1A 0B1", "K1A 0B1"),
        ("US", 12, "12"),  # not a ZIP code a dropped zero explains: kept as given
    ],
)
def test_postal_code_gets_its_leading_zeros_back_only_for_us_addresses(country, zip_code, expected):
    fields = {"ZIP": zip_code, "CITY": "X"} | ({"COUNTRY": country} if country else {})
    assert patient(**fields)["address"][0]["postalCode"] == expected


@pytest.mark.parametrize(
    ("death", "expected"),
    [
        ("2020-05-05", "2020-05-05"),
        ("2020-05-05T10:00:00Z", "2020-05-05T10:00:00Z"),
        ("2020-05-05T10:00Z", "2020-05-05T10:00:00Z"),  # FHIR needs the seconds
        ("2020-05-05T23:59:60.123+14:00", "2020-05-05T23:59:60.123+14:00"),
        ("2020-05-05T00:00:00.123456789-12:30", "2020-05-05T00:00:00.123456789-12:30"),
        ("2020-05-05T10:00:00", "2020-05-05"),  # no zone: only the date is certain
    ],
)
def test_deathdate_becomes_a_valid_fhir_date_time(death, expected):
    assert patient(DEATHDATE=death)["deceasedDateTime"] == expected


@pytest.mark.parametrize("field", ["DEATHDATE", "BIRTHDATE"])
@pytest.mark.parametrize(
    "value",
    [
        "2020-05-05T24:00:00Z",
        "2020-05-05T10:60:00Z",
        "2020-05-05T10:00:61Z",
        "2020-05-05T10:00:00+15:00",
        "2020-05-05T10:00:00+14:30",
        "2020-05-05T10:00:00+05:60",
        "2020-05-05T10:00:00.1234567890Z",
        "2020-05-05T1:00:00Z",
        "2020-05-05 10:00:00Z",
        "0000-01-01",
        "2020-05-05T10:00:00ZZ",
    ],
)
def test_date_times_with_an_invalid_time_are_refused_before_the_store_sees_them(field, value):
    result = error(BASE | {field: value})
    assert (result.stage, result.code) == ("validate", "invalid_date")
    assert value not in result.detail and field in result.detail


@pytest.mark.parametrize("name", ["FIRST", "LAST", "MIDDLE", "ADDRESS", "Id", "SSN"])
@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x1f", "\x0b"])
def test_control_characters_are_refused_with_the_field_named(name, char):
    result = error(BASE | {name: f"A{char}b"})
    assert (result.stage, result.code) == ("validate", "invalid_characters") and name in result.detail


def test_tabs_and_line_breaks_are_text():
    assert patient(ADDRESS="1 Main St\nApt 2\t(rear)")["address"][0]["line"] == ["1 Main St\nApt 2\t(rear)"]
