"""Settings of the transformation: identifier systems, limits, business filters, validation switches."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from beam_pipeline.us_core import terminology

DEFAULT_MAX_MESSAGE_BYTES = 1_000_000


@dataclass(frozen=True)
class TransformConfig:
    source_id_system: str = terminology.DEFAULT_SOURCE_ID_SYSTEM
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    # Business filters: None keeps everything (the default); a filtered message is counted, not an error.
    filter_country: str | None = None
    filter_program_names: frozenset[str] | None = None
    # Full structural validation with fhir.resources on every resource (the US Core rule check always runs).
    structural_validation: bool = True
    # topic -> message type, for topics that carry one kind of message; otherwise the message's own
    # MESSAGE_TYPE / resourceType field decides, and "patient" is the default.
    topic_types: Mapping[str, str] = field(default_factory=dict)
    default_message_type: str = "patient"
    # Identifier system of clinical rows without an Id (their value is a hash of the row's natural key).
    natural_key_system: str = terminology.DEFAULT_NATURAL_KEY_SYSTEM


def parse_topic_types(value: str | None) -> dict[str, str]:
    """`--topic_types "patients=patient,conditions=condition"` -> {topic: message type}. Types are checked
    against the registry per message (an unknown one gives error records), not here."""
    out: dict[str, str] = {}
    for pair in (value or "").split(","):
        if not pair.strip():
            continue
        topic, sep, kind = pair.partition("=")
        if not sep or not topic.strip() or not kind.strip():
            raise ValueError("--topic_types takes topic=type pairs separated by commas")
        out[topic.strip()] = kind.strip().lower()
    return out
