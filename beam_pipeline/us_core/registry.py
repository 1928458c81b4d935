"""Message type -> mapper. Adding Encounter or Observation is one module with these three functions,
registered here, plus its tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from beam_pipeline.us_core import outcome as o
from beam_pipeline.us_core import patient, rules
from beam_pipeline.us_core.config import TransformConfig


@dataclass(frozen=True)
class Mapper:
    # (record, today or None for the real date) -> the error that makes it unmappable, or None
    validate: Callable[[dict[str, Any], date | None], o.Error | None]
    map: Callable[[dict[str, Any], TransformConfig], dict[str, Any]]
    check: Callable[[dict[str, Any]], list[str]]
    business_identifier: Callable[[dict[str, Any], TransformConfig], tuple[str, str] | None]


REGISTRY: dict[str, Mapper] = {
    "patient": Mapper(
        validate=patient.validate_patient,
        map=patient.map_patient,
        check=rules.check_patient,
        business_identifier=patient.business_identifier,
    ),
}

# Fields a message may carry to say what it is; compared case-insensitively with the registry keys.
TYPE_FIELDS = ("MESSAGE_TYPE", "messageType", "resourceType")


def message_type(record: dict[str, Any], topic: str | None, config: TransformConfig) -> str:
    if topic is not None and topic in config.topic_types:
        return config.topic_types[topic]
    for name in TYPE_FIELDS:
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    return config.default_message_type
