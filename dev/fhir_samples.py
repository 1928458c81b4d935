"""Synthetic US Core Patients for the integration tests and the benchmarks. Every value here is made up;
nothing resembles real patient data."""

from __future__ import annotations

import uuid
from typing import Any

from beam_pipeline.us_core.terminology import US_CORE_PATIENT

_GIVEN = ("Alex", "Blair", "Casey", "Drew", "Emery", "Finley", "Harper", "Jordan", "Kai", "Logan")
_FAMILY = ("Testperson", "Sample", "Synthetic", "Example", "Mockwell", "Fakeham")
_GENDERS = ("female", "male", "other", "unknown")


def unique_system(purpose: str) -> str:
    """An identifier system no earlier run used, so reruns never see each other's resources."""
    return f"urn:k2f-{purpose}:{uuid.uuid4()}"


def us_core_patient(system: str, n: int, *, family: str | None = None) -> dict[str, Any]:
    """A valid US Core 6.1.0 Patient with identifier system|P<n>: profile, identifier, name, gender, birthDate."""
    return {
        "resourceType": "Patient",
        "meta": {"profile": [US_CORE_PATIENT]},
        "identifier": [{"system": system, "value": f"P{n:06d}"}],
        "name": [{"family": family or _FAMILY[n % len(_FAMILY)], "given": [_GIVEN[n % len(_GIVEN)]]}],
        "gender": _GENDERS[n % len(_GENDERS)],
        "birthDate": f"{1940 + n % 80}-{1 + n % 12:02d}-{1 + n % 28:02d}",
    }


def identifier_of(patient: dict[str, Any]) -> tuple[str, str]:
    ident = patient["identifier"][0]
    return ident["system"], ident["value"]
