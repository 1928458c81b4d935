"""Raw patient record (the original sample's payload or a Synthea patients.csv row as JSON) -> US Core
6.1.0 Patient. Pure functions: no I/O, no clock, same input same output. Absent input stays absent."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from beam_pipeline.us_core import outcome as o
from beam_pipeline.us_core import terminology as t
from beam_pipeline.us_core.config import TransformConfig
from beam_pipeline.us_core.parse import text, wrong_type

TEXT_FIELDS = (
    "Id", "BIRTHDATE", "DEATHDATE", "SSN", "DRIVERS", "PASSPORT", "PREFIX", "FIRST", "MIDDLE", "LAST",
    "SUFFIX", "MAIDEN", "MARITAL", "RACE", "ETHNICITY", "GENDER", "BIRTHPLACE", "ADDRESS", "CITY", "STATE",
    "COUNTY", "ZIP", "LAT", "LON", "EMAIL", "COUNTRY",
)  # fmt: skip
# YYYY-MM-DD, optionally with a time (seconds and fraction optional) and a zone.
_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(?:(Z)|([+-])(\d{2}):(\d{2}))?)?$"
)
_BIRTHPLACE_PARTS = re.compile(r"\s{2,}|,\s*")
# C0 control characters other than tab, line feed and carriage return: FHIR strings may not carry them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def fhir_date_time(value: str) -> tuple[date, str] | None:
    """A date or ISO date-time -> (its date, its FHIR dateTime), or None unless every part is in range.

    FHIR needs seconds and a zone once a time is given; a time without a zone keeps only its date, which
    is all that is certain.
    """
    match = _DATE_TIME.match(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, utc, sign, zone_h, zone_m = match.groups()
    try:
        day_value = date(int(year), int(month), int(day))
    except ValueError:
        return None
    if hour is None:
        return day_value, value
    # Seconds up to 60 (a leap second, which FHIR allows); zone offsets from -14:00 to +14:00.
    if int(hour) > 23 or int(minute) > 59 or (second is not None and int(second) > 60):
        return None
    if sign is not None and (int(zone_m) > 59 or int(zone_h) > 14 or (int(zone_h) == 14 and int(zone_m) > 0)):
        return None
    if utc is None and sign is None:
        return day_value, value[:10]
    zone = "Z" if utc else f"{sign}{zone_h}:{zone_m}"
    return day_value, f"{value[:10]}T{hour}:{minute}:{second or '00'}{fraction or ''}{zone}"


def parse_date(value: str) -> date | None:
    """YYYY-MM-DD, or the date of an ISO date-time; None when it is not a real date and time."""
    parsed = fhir_date_time(value)
    return parsed[0] if parsed else None


def validate_patient(record: dict[str, Any], today: date | None = None) -> o.Error | None:
    """The checks that make a record unmappable; each error names the field, never its value."""
    bad = wrong_type(record, TEXT_FIELDS)
    if bad:
        return o.Error(o.VALIDATE, o.INVALID_FIELD_TYPE, f"not text or a number: {', '.join(bad)}")
    # Fast path for the usual record, all printable: one C-level scan of every text value at once.
    joined = " ".join([v for v in record.values() if type(v) is str])
    if not joined.isprintable() and _CONTROL.search(joined):
        controls = [name for name in TEXT_FIELDS if isinstance(v := record.get(name), str) and _CONTROL.search(v)]
        if controls:  # a control character in a field the mapping ignores does no harm
            return o.Error(o.VALIDATE, o.INVALID_CHARACTERS, f"control characters in: {', '.join(controls)}")
    if text(record, "Id") is None:
        return o.Error(o.VALIDATE, o.MISSING_SOURCE_ID, "Id is missing or empty")
    if text(record, "FIRST") is None and text(record, "LAST") is None:
        return o.Error(o.VALIDATE, o.NO_USABLE_NAME, "neither FIRST nor LAST has a value")
    today = today or datetime.now(UTC).date()
    dates = {}
    for name in ("BIRTHDATE", "DEATHDATE"):
        value = text(record, name)
        if value is None:
            continue
        parsed = parse_date(value)
        if parsed is None:
            return o.Error(o.VALIDATE, o.INVALID_DATE, f"{name} is not a valid date or date-time")
        if parsed > today:
            return o.Error(o.VALIDATE, o.INVALID_DATE, f"{name} is in the future")
        dates[name] = parsed
    if "BIRTHDATE" in dates and "DEATHDATE" in dates and dates["DEATHDATE"] < dates["BIRTHDATE"]:
        return o.Error(o.VALIDATE, o.INVALID_DATE, "DEATHDATE is before BIRTHDATE")
    for name, limit in (("LAT", 90.0), ("LON", 180.0)):
        value = text(record, name)
        if value is not None and _coordinate(value, limit) is None:
            return o.Error(o.VALIDATE, o.INVALID_FIELD_TYPE, f"{name} is not a coordinate within ±{limit:g}")
    return None


def _coordinate(value: str, limit: float) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if -limit <= number <= limit else None


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


def _identifier(kind: str, system: str, value: str, use: str | None = None) -> dict[str, Any]:
    code, display = t.IDENTIFIER_TYPES[kind]
    ident: dict[str, Any] = {}
    if use:
        ident["use"] = use
    ident["type"] = {"coding": [_coding(t.IDENTIFIER_TYPE, code, display)], "text": display}
    ident["system"] = system
    ident["value"] = value
    return ident


def _state_code(value: str | None) -> str | None:
    return t.STATE_LOOKUP.get(value.lower()) if value else None


def identifiers(record: dict[str, Any], config: TransformConfig) -> list[dict[str, Any]]:
    out = [_identifier("source", config.source_id_system, text(record, "Id") or "", use="usual")]
    if ssn := text(record, "SSN"):
        out.append(_identifier("ssn", t.SSN_SYSTEM, ssn, use="official"))
    if drivers := text(record, "DRIVERS"):
        state = _state_code(text(record, "STATE"))
        # OID arcs carry no leading zeros: Alabama's FIPS 01 is arc 1 (a validator rejects "...4.3.01").
        system = t.DRIVERS_LICENSE_ROOT + str(int(t.STATES[state][1])) if state else t.DEFAULT_DRIVERS_LICENSE_SYSTEM
        out.append(_identifier("drivers", system, drivers))
    if passport := text(record, "PASSPORT"):
        out.append(_identifier("passport", t.PASSPORT_SYSTEM, passport))
    return out


def names(record: dict[str, Any]) -> list[dict[str, Any]]:
    given = [g for g in (text(record, "FIRST"), text(record, "MIDDLE")) if g]
    official: dict[str, Any] = {"use": "official"}
    if family := text(record, "LAST"):
        official["family"] = family
    if given:
        official["given"] = given
    if prefix := text(record, "PREFIX"):
        official["prefix"] = [prefix]
    if suffix := text(record, "SUFFIX"):
        official["suffix"] = [suffix]
    out = [official]
    if maiden := text(record, "MAIDEN"):
        out.append({"use": "maiden", "family": maiden, **({"given": given} if given else {})})
    return out


def _postal_code(value: str | None, country: str | None) -> str | None:
    # JSON producers that treat ZIP as a number drop the leading zeros of New England's (and Puerto
    # Rico's) ZIP codes. Only US ZIP codes have five digits: Australia's 2000 stays 2000.
    if value and country in (None, "US") and value.isdigit() and 3 <= len(value) <= 4:
        return value.zfill(5)
    return value


def _country(value: str | None) -> str | None:
    return t.COUNTRY_LOOKUP.get(value.lower(), value) if value else None


def address(record: dict[str, Any]) -> dict[str, Any] | None:
    state_text = text(record, "STATE")
    parts: dict[str, Any] = {}
    if line := text(record, "ADDRESS"):
        parts["line"] = [line]
    if city := text(record, "CITY"):
        parts["city"] = city
    if county := text(record, "COUNTY"):
        parts["district"] = county
    if state_text:
        parts["state"] = _state_code(state_text) or state_text
    country = _country(text(record, "COUNTRY"))
    if postal := _postal_code(text(record, "ZIP"), country):
        parts["postalCode"] = postal
    if country:
        parts["country"] = country
    lat, lon = text(record, "LAT"), text(record, "LON")
    if lat is not None and lon is not None:
        parts["extension"] = [
            {
                "url": t.GEOLOCATION,
                "extension": [
                    {"url": "latitude", "valueDecimal": float(lat)},
                    {"url": "longitude", "valueDecimal": float(lon)},
                ],
            }
        ]
    if not parts:
        return None
    # FHIR orders extension first in JSON by convention; keep the output stable and readable.
    ext = parts.pop("extension", None)
    return ({"extension": ext} if ext else {}) | parts


def birth_place(value: str) -> dict[str, Any]:
    """Synthea's "City  State  Country" (or "City, State, Country") -> Address; otherwise its text."""
    pieces = [p for p in _BIRTHPLACE_PARTS.split(value) if p]
    if len(pieces) == 3:
        city, state, country = pieces
        return {"city": city, "state": _state_code(state) or state, "country": _country(country)}
    return {"text": value}


def race_extension(value: str) -> dict[str, Any]:
    key = value.lower()
    inner: list[dict[str, Any]] = []
    if omb := t.RACE.get(key):
        inner.append({"url": "ombCategory", "valueCoding": _coding(t.CDC_RACE_ETHNICITY, *omb)})
    if detailed := t.RACE_DETAILED.get(key):
        inner.append({"url": "detailed", "valueCoding": _coding(t.CDC_RACE_ETHNICITY, *detailed)})
    inner.append({"url": "text", "valueString": t.RACE_TEXT.get(key, value)})
    return {"url": t.US_CORE_RACE, "extension": inner}


def ethnicity_extension(value: str) -> dict[str, Any]:
    key = value.lower()
    inner: list[dict[str, Any]] = []
    if omb := t.ETHNICITY.get(key):
        inner.append({"url": "ombCategory", "valueCoding": _coding(t.CDC_RACE_ETHNICITY, *omb)})
        inner.append({"url": "text", "valueString": omb[1]})
    else:
        inner.append({"url": "text", "valueString": value})
    return {"url": t.US_CORE_ETHNICITY, "extension": inner}


def map_patient(record: dict[str, Any], config: TransformConfig) -> dict[str, Any]:
    """A validated record (validate_patient returned None) -> US Core Patient JSON."""
    patient: dict[str, Any] = {"resourceType": "Patient", "meta": {"profile": [t.US_CORE_PATIENT]}}
    extensions = []
    if race := text(record, "RACE"):
        extensions.append(race_extension(race))
    if ethnicity := text(record, "ETHNICITY"):
        extensions.append(ethnicity_extension(ethnicity))
    if place := text(record, "BIRTHPLACE"):
        extensions.append({"url": t.BIRTH_PLACE, "valueAddress": birth_place(place)})
    if extensions:
        patient["extension"] = extensions
    patient["identifier"] = identifiers(record, config)
    patient["name"] = names(record)
    if email := text(record, "EMAIL"):
        patient["telecom"] = [{"system": "email", "value": email}]
    gender = text(record, "GENDER")
    patient["gender"] = t.GENDER.get(gender.lower(), "unknown") if gender else "unknown"
    if birth := text(record, "BIRTHDATE"):
        patient["birthDate"] = birth[:10]
    if (death := text(record, "DEATHDATE")) and (deceased := fhir_date_time(death)):
        patient["deceasedDateTime"] = deceased[1]
    if addr := address(record):
        patient["address"] = [addr]
    if marital := text(record, "MARITAL"):
        coded = t.MARITAL.get(marital.lower())
        patient["maritalStatus"] = (
            {"coding": [_coding(t.MARITAL_STATUS, *coded)], "text": coded[1]} if coded else {"text": marital}
        )
    return patient


def business_identifier(record: dict[str, Any], config: TransformConfig) -> tuple[str, str]:
    return config.source_id_system, text(record, "Id") or ""
