"""Message type -> mapper. Adding a resource type is one module with these functions, registered here,
plus its tests. A message type with no entry here is an error record (unknown_message_type), never a guess."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from beam_pipeline.us_core import (
    allergy,
    clinical,
    condition,
    encounter,
    immunization,
    medication,
    observation,
    patient,
    procedure,
    rules,
)
from beam_pipeline.us_core import outcome as o
from beam_pipeline.us_core.config import TransformConfig


@dataclass(frozen=True)
class Mapper:
    # (record, today or None for the real date) -> the error that makes it unmappable, or None
    validate: Callable[[dict[str, Any], date | None], o.Error | None]
    map: Callable[[dict[str, Any], TransformConfig], dict[str, Any]]
    check: Callable[[dict[str, Any]], list[str]]
    business_identifier: Callable[[dict[str, Any], TransformConfig], tuple[str, str] | None]
    # Whether the business filters (COUNTRY, PROGRAM_NAME) apply: they are patient attributes, which
    # clinical rows do not carry, so a filter on them would drop every clinical row.
    filtered_by_business_rules: bool = False


REGISTRY: dict[str, Mapper] = {
    "patient": Mapper(
        validate=patient.validate_patient,
        map=patient.map_patient,
        check=rules.check_patient,
        business_identifier=patient.business_identifier,
        filtered_by_business_rules=True,
    ),
    "encounter": Mapper(
        validate=encounter.validate_encounter,
        map=encounter.map_encounter,
        check=rules.check_clinical,
        business_identifier=clinical.source_identifier,
    ),
    "condition": Mapper(
        validate=condition.validate_condition,
        map=condition.map_condition,
        check=rules.check_clinical,
        business_identifier=condition.KEY.business_identifier,
    ),
    "observation": Mapper(
        validate=observation.validate_observation,
        map=observation.map_observation,
        check=rules.check_clinical,
        business_identifier=observation.KEY.business_identifier,
    ),
    "immunization": Mapper(
        validate=immunization.validate_immunization,
        map=immunization.map_immunization,
        check=rules.check_clinical,
        business_identifier=immunization.KEY.business_identifier,
    ),
    "allergy": Mapper(
        validate=allergy.validate_allergy,
        map=allergy.map_allergy,
        check=rules.check_clinical,
        business_identifier=allergy.KEY.business_identifier,
    ),
    "procedure": Mapper(
        validate=procedure.validate_procedure,
        map=procedure.map_procedure,
        check=rules.check_clinical,
        business_identifier=procedure.KEY.business_identifier,
    ),
    "medication": Mapper(
        validate=medication.validate_medication,
        map=medication.map_medication,
        check=rules.check_clinical,
        business_identifier=medication.KEY.business_identifier,
    ),
}

# Other names a message may give its type (FHIR resource types, Synthea file names), lower case.
ALIASES = {
    "patients": "patient",
    "encounters": "encounter",
    "conditions": "condition",
    "observations": "observation",
    "immunizations": "immunization",
    "allergies": "allergy",
    "allergyintolerance": "allergy",
    "procedures": "procedure",
    "medications": "medication",
    "medicationrequest": "medication",
}

# Fields a message may carry to say what it is; compared case-insensitively with the registry keys.
TYPE_FIELDS = ("MESSAGE_TYPE", "messageType", "resourceType")


def message_type(record: dict[str, Any], topic: str | None, config: TransformConfig) -> str:
    """The registry key for this message: its topic's type, else its own type field, else the default. The
    answer may be a key the registry does not have; the caller makes that an error record."""
    if topic is not None and topic in config.topic_types:
        kind = config.topic_types[topic].strip().lower()
        return ALIASES.get(kind, kind)
    for name in TYPE_FIELDS:
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            kind = value.strip().lower()
            return ALIASES.get(kind, kind)
    return config.default_message_type
