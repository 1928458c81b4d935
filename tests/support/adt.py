"""Synthetic HL7 v2 ADT events as JSON (mappings/adt/adt-patient-visit.yaml), made from the admit sample with
their own medical record and visit numbers. Every value is made up; nothing resembles real patient data."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ADMIT_SAMPLE = ROOT / "include" / "sample_messages" / "20_adt_a01_admit.json"
DISCHARGE_SAMPLE = ROOT / "include" / "sample_messages" / "21_adt_a03_discharge.json"
VISIT_NUMBER_SYSTEM = "urn:kafka-to-fhir:visit-number"

_GIVEN = ("Alex", "Blair", "Casey", "Drew", "Emery", "Finley", "Harper", "Jordan", "Kai", "Logan")
_FAMILY = ("Testperson", "Sample", "Synthetic", "Example", "Mockwell", "Fakeham")
# (messageType, PV1-2 class, discharged): admits, registrations, updates and discharges of each class.
_EVENTS = (
    ("ADT^A01", "I", False),
    ("ADT^A04", "O", False),
    ("ADT^A04", "E", False),
    ("ADT^A08", "I", False),
    ("ADT^A03", "I", True),
    ("ADT^A03", "E", True),
    ("ADT^A01", "B", False),
    ("ADT^A04", "R", False),
    ("ADT^A01", "P", False),
    ("ADT^A03", "O", True),
)


def admit_sample() -> dict[str, Any]:
    """The admit sample (include/sample_messages/20_adt_a01_admit.json), a fresh copy."""
    return json.loads(ADMIT_SAMPLE.read_text())


def adt_message(mrn: str, visit_number: str, n: int = 0) -> dict[str, Any]:
    """The admit sample as the n-th synthetic event: its own MRN, visit number, name, SSN and event type
    (A01, A04, A08 or A03, and a patient class, cycling through `_EVENTS`)."""
    message = copy.deepcopy(_SAMPLE)
    message_type, patient_class, discharged = _EVENTS[n % len(_EVENTS)]
    message["messageType"] = message_type
    message["messageControlId"] = f"SYN-{n:06d}"
    patient, visit = message["patient"], message["visit"]
    ssn = f"999-{10 + n % 90:02d}-{n % 10000:04d}"
    patient["identifiers"] = [{"type": "MR", "value": mrn}, {"type": "SS", "value": ssn}]
    patient["name"] = [{"use": "official", "family": _FAMILY[n % len(_FAMILY)], "given": [_GIVEN[n % len(_GIVEN)]]}]
    patient["birthDate"] = f"{1940 + n % 80}-{1 + n % 12:02d}-{1 + n % 28:02d}"
    patient["sex"] = "FMO"[n % 3]
    visit["visitNumber"] = visit_number
    visit["class"] = patient_class
    visit["dischargeTime"] = "2024-03-06T10:05:00-05:00" if discharged else None
    return message


def adt_messages(prefix: str, count: int) -> list[tuple[str, str, bytes]]:
    """`count` events as (MRN, visit number, raw message): MRNs `<prefix>-mrn-NNN`, visits `<prefix>-visit-NNN`."""
    out = []
    for n in range(count):
        mrn, visit = f"{prefix}-mrn-{n:03d}", f"{prefix}-visit-{n:03d}"
        out.append((mrn, visit, json.dumps(adt_message(mrn, visit, n)).encode()))
    return out


_SAMPLE = admit_sample()
