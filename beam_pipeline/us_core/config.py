"""Settings of the transformation: identifier systems, limits, business filters, validation switches, and
the command-line flags that set them (the pipeline's and the dry-run CLI's, one definition for both)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from beam_pipeline.contracts.job_settings import (
    DEFAULT_PROFILE_VALIDATION,
    PROFILE_VALIDATION_MODES,
    comma_list,
)
from beam_pipeline.us_core import terminology

if TYPE_CHECKING:  # the mapping engine imports this package's outcome types
    from beam_pipeline.mapping.mapping_set import MappingSources

DEFAULT_MAX_MESSAGE_BYTES = 1_000_000
# Full structural validation with fhir.resources costs more than the mapping itself (README.md has the
# figures); off unless asked for, the US Core rule check always runs and the store can validate again.
DEFAULT_STRUCTURAL_VALIDATION = False


@dataclass(frozen=True)
class TransformConfig:
    source_id_system: str = terminology.DEFAULT_SOURCE_ID_SYSTEM
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    # Business filters: None keeps everything (the default); a filtered message is counted, not an error.
    filter_country: str | None = None
    filter_program_names: frozenset[str] | None = None
    # Full structural validation with fhir.resources on every resource (the US Core rule check always runs).
    structural_validation: bool = DEFAULT_STRUCTURAL_VALIDATION
    # Each mapped resource against every profile it claims: off, warn or enforce (us_core/conformance.py).
    profile_validation: str = DEFAULT_PROFILE_VALIDATION
    # topic -> message type, for topics that carry one kind of message; otherwise the message's own
    # MESSAGE_TYPE / resourceType field decides, and "patient" is the default.
    topic_types: Mapping[str, str] = field(default_factory=dict)
    default_message_type: str = "patient"
    # Identifier system of clinical rows without an Id (their value is a hash of the row's natural key).
    natural_key_system: str = terminology.DEFAULT_NATURAL_KEY_SYSTEM
    # The mapping and terminology files (their texts, compiled once per worker); None: the shipped mappings/.
    mappings: MappingSources | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.profile_validation not in PROFILE_VALIDATION_MODES:
            raise ValueError(f"profile_validation is one of {', '.join(PROFILE_VALIDATION_MODES)}")


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


def add_mapping_flags(parser: Any) -> None:  # noqa: ANN401  (an argparse parser or group, Beam's included)
    """The flags that choose the mapping's settings, with their defaults."""
    parser.add_argument(
        "--mappings",
        default=None,
        help="Folder or gs://bucket/prefix of the mapping set: <feed>/*.yaml mapping files and "
        "terminology/*.json ConceptMaps and ValueSets (docs/mapping.md). Default: the set shipped with the "
        "pipeline (mappings/). It is checked and its samples mapped before any job starts; a problem stops the "
        "launch with the file, the line and the fix.",
    )
    parser.add_argument(
        "--topic_types",
        default=None,
        help="Topics that carry one kind of message, as topic=type pairs separated by commas, the types being "
        "those the mapping files recognise (the shipped set: patient, encounter, condition, observation, "
        "immunization, allergy, procedure, medication, adt^a01...), e.g. 'synthea.conditions=condition'. "
        "Messages of other topics say their type in MESSAGE_TYPE, messageType or resourceType; without one "
        "the set's default mapping (the shipped set: patient) takes them. An unknown type gives error records "
        "(unknown_message_type).",
    )
    parser.add_argument(
        "--source_id_system",
        default=terminology.DEFAULT_SOURCE_ID_SYSTEM,
        help="Identifier system of the source record Id: the business identifier that makes writes "
        f"idempotent (default {terminology.DEFAULT_SOURCE_ID_SYSTEM}).",
    )
    parser.add_argument(
        "--filter_country",
        help="Keep only messages whose COUNTRY equals this, e.g. US (default: keep all; filtered messages are "
        "counted, not errors).",
    )
    parser.add_argument(
        "--filter_program_names",
        help="Comma-separated PROGRAM_NAME allow-list (default: keep all).",
    )
    parser.add_argument(
        "--structural_validation",
        action="store_true",
        default=DEFAULT_STRUCTURAL_VALIDATION,
        help="Also validate each mapped resource's full structure with fhir.resources (costly: README.md has "
        "the figures). Off by default: the US Core rule check always runs, and the FHIR store validates "
        "again when configured to.",
    )
    parser.add_argument(
        "--profile_validation",
        choices=PROFILE_VALIDATION_MODES,
        default=DEFAULT_PROFILE_VALIDATION,
        help="Check each mapped resource against every US Core profile it claims (meta.profile), with the "
        "validator compiled from the implementation guide (docs/validation.md). enforce (default): a resource "
        "that breaks one is not written; its message becomes an error record validate/profile_violation whose "
        "detail lists the element paths and rule keys. warn: it is written, and the counter "
        "map_to_fhir/profile_violation.<profile>.<rule> counts it. off: no profile validation (the rules of "
        "beam_pipeline/us_core/rules.py still run).",
    )
    # The dry-run CLI's former spelling; the default is the same either way.
    parser.add_argument(
        "--no_structural_validation",
        dest="structural_validation",
        action="store_false",
        default=DEFAULT_STRUCTURAL_VALIDATION,
        help=argparse.SUPPRESS,
    )


def config_from_flags(flags: Any, **overrides: Any) -> TransformConfig:  # noqa: ANN401  (parsed flags)
    """The TransformConfig of parsed add_mapping_flags flags (an argparse Namespace or a Beam options view).
    The mapping set is read and checked here, so a broken mapping stops the caller (MappingError, a
    ValueError naming the file, the line and the fix) before anything runs; the config carries its texts."""
    from beam_pipeline.mapping.check import load_checked

    programs = comma_list(flags.filter_program_names)
    sources, _ = load_checked(getattr(flags, "mappings", None))
    return TransformConfig(
        mappings=sources,
        source_id_system=flags.source_id_system,
        filter_country=flags.filter_country,
        filter_program_names=frozenset(programs) if programs else None,
        structural_validation=flags.structural_validation,
        profile_validation=getattr(flags, "profile_validation", None) or DEFAULT_PROFILE_VALIDATION,
        topic_types=parse_topic_types(flags.topic_types),
        **overrides,
    )
