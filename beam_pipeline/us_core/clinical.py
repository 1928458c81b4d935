"""What every clinical row shares (encounter, condition, observation, immunization, allergy, procedure,
medication): checks of its columns, references to its patient and encounter, its business identifier,
FHIR dates and codings. Pure functions; terminology is data in `terminology.py`.

References name the patient and the encounter by business identifier, as conditional references
(`Patient?identifier=system|value`) that the FHIR store resolves when it writes the entry. HAPI resolves them
in any create or update; the Healthcare API resolves them in executeBundle and rejects the entry when no
resource, or more than one, matches. A row whose patient is not stored yet therefore fails at the write and
lands once the patient is there (the replay re-delivers it): nothing is written pointing nowhere.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from beam_pipeline.fhir_store.bundles import token_search_value
from beam_pipeline.us_core import outcome as o
from beam_pipeline.us_core import terminology as t
from beam_pipeline.us_core.config import TransformConfig
from beam_pipeline.us_core.parse import text, wrong_type

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$")
_ZONE = re.compile(r"(Z|[+-]\d{2}:\d{2})$")
# Characters a conditional reference keeps as they are; everything else in the token is percent-encoded.
_REFERENCE_SAFE = ":/|\\"


# -- checks -------------------------------------------------------------------------------------------


def check_columns(
    record: dict[str, Any], text_fields: Iterable[str], required: Iterable[str], dates: Iterable[str]
) -> o.Error | None:
    """The checks every clinical row passes: text where text is expected, required columns present, dates
    that are real dates, and no period that ends before it starts. Details name columns, never values."""
    bad = wrong_type(record, tuple(text_fields))
    if bad:
        return o.Error(o.VALIDATE, o.INVALID_FIELD_TYPE, f"not text or a number: {', '.join(bad)}")
    missing = [name for name in required if text(record, name) is None]
    if missing:
        return o.Error(o.VALIDATE, o.MISSING_REQUIRED_FIELD, f"missing or empty: {', '.join(missing)}")
    parsed = {}
    for name in dates:
        value = text(record, name)
        if value is None:
            continue
        moment = parse_moment(value)
        if moment is None:
            return o.Error(o.VALIDATE, o.INVALID_DATE, f"{name} is not a YYYY-MM-DD date or ISO date-time")
        parsed[name] = (moment, value)
    if "START" in parsed and "STOP" in parsed and _ends_before(parsed["START"], parsed["STOP"]):
        return o.Error(o.VALIDATE, o.INVALID_DATE, "STOP is before START")
    return None


def parse_moment(value: str) -> datetime | None:
    """A YYYY-MM-DD date or an ISO date-time (with or without zone) as a datetime; None if not real."""
    if not (_DATE.match(value) or _DATETIME.match(value)):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ends_before(start: tuple[datetime, str], stop: tuple[datetime, str]) -> bool:
    # A bare date covers its whole day: compare dates when either side has no time.
    if len(start[1]) == 10 or len(stop[1]) == 10:
        return stop[1][:10] < start[1][:10]
    return stop[0] < start[0]


def code_system(record: dict[str, Any], default: str) -> str | None:
    """The row's SYSTEM column as a canonical URI (the type's default when absent); None when unknown."""
    name = text(record, "SYSTEM")
    return default if name is None else t.CODE_SYSTEMS.get(name.lower())


def unknown_system_error() -> o.Error:
    return o.Error(o.VALIDATE, o.UNKNOWN_CODE, "SYSTEM is not a known code system")


# -- FHIR values --------------------------------------------------------------------------------------


def fhir_datetime(value: str) -> str:
    """A FHIR dateTime: kept as is when it is a date or has a zone; a time without a zone is not a FHIR
    dateTime, and only its date is certain."""
    if len(value) > 10 and not _ZONE.search(value):
        return value[:10]
    return value


def coding(system: str, code: str, display: str | None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str | None) -> dict[str, Any]:
    """A CodeableConcept of one coding, with the row's description as its text."""
    out: dict[str, Any] = {"coding": [coding(system, code, display)]}
    if display:
        out["text"] = display
    return out


def reason(record: dict[str, Any]) -> list[dict[str, Any]] | None:
    """REASONCODE / REASONDESCRIPTION as a SNOMED CT reasonCode list (Synthea codes reasons in SNOMED)."""
    code = text(record, "REASONCODE")
    return [concept(t.SNOMED, code, text(record, "REASONDESCRIPTION"))] if code else None


def period(record: dict[str, Any]) -> dict[str, str] | None:
    out = {}
    if start := text(record, "START"):
        out["start"] = fhir_datetime(start)
    if stop := text(record, "STOP"):
        out["end"] = fhir_datetime(stop)
    return out or None


# -- identity and references -------------------------------------------------------------------------


def conditional_reference(resource_type: str, system: str, value: str) -> dict[str, str]:
    """`Type?identifier=system|value`, resolved by the FHIR store when the entry is written."""
    token = quote(token_search_value(system, value), safe=_REFERENCE_SAFE)
    return {"reference": f"{resource_type}?identifier={token}"}


def patient_reference(record: dict[str, Any], config: TransformConfig) -> dict[str, str]:
    # PATIENT holds the patient's source Id: the identifier the Patient mapping writes.
    return conditional_reference("Patient", config.source_id_system, text(record, "PATIENT") or "")


def encounter_reference(record: dict[str, Any], config: TransformConfig) -> dict[str, str] | None:
    encounter = text(record, "ENCOUNTER")
    return conditional_reference("Encounter", config.source_id_system, encounter) if encounter else None


@dataclass(frozen=True)
class NaturalKey:
    """The identity of a row without an Id: a hash of the source system, the type and the natural-key
    columns, so a redelivered or replayed row updates the resource it wrote. A hash, not the columns
    themselves, keeps patient data out of the identifier and out of conditional URLs."""

    kind: str
    fields: tuple[str, ...]

    def business_identifier(self, record: dict[str, Any], config: TransformConfig) -> tuple[str, str]:
        parts = [config.source_id_system, self.kind, *(text(record, name) or "" for name in self.fields)]
        return config.natural_key_system, hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]

    def identifier(self, record: dict[str, Any], config: TransformConfig) -> list[dict[str, str]]:
        system, value = self.business_identifier(record, config)
        return [{"system": system, "value": value}]


def source_identifier(record: dict[str, Any], config: TransformConfig) -> tuple[str, str]:
    """The business identifier of a row with its own Id (encounters)."""
    return config.source_id_system, text(record, "Id") or ""


def resource(resource_type: str, profile: str, identifier: list[dict[str, str]]) -> dict[str, Any]:
    """The head every clinical resource starts with: type, profile, identifier."""
    return {"resourceType": resource_type, "meta": {"profile": [profile]}, "identifier": identifier}


def data_absent(reason_code: str = "unknown") -> dict[str, Any]:
    """An element the profile requires but the row does not carry, marked as absent rather than invented."""
    return {"extension": [{"url": t.DATA_ABSENT_REASON, "valueCode": reason_code}]}
