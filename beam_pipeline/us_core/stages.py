"""One raw message through the mapping's stages -> Ok / Filtered / Error. Pure: never raises, never logs,
never reads a clock it was not given. The pipeline runs the two halves as separate steps (ParseAndValidate,
MapToFhir)."""

from __future__ import annotations

from datetime import date
from typing import Any

from beam_pipeline.us_core import outcome as o
from beam_pipeline.us_core.config import TransformConfig
from beam_pipeline.us_core.parse import parse_json_object, text
from beam_pipeline.us_core.registry import REGISTRY, message_type
from beam_pipeline.us_core.structural import structural_problems


def business_filter(record: dict[str, Any], config: TransformConfig) -> o.Filtered | None:
    if config.filter_country is not None:
        country = text(record, "COUNTRY")
        if country is None or country.upper() != config.filter_country.upper():
            return o.Filtered("COUNTRY is not " + config.filter_country)
    if config.filter_program_names is not None and text(record, "PROGRAM_NAME") not in config.filter_program_names:
        return o.Filtered("PROGRAM_NAME is not in the allow-list")
    return None


def parse_and_validate(
    raw: bytes, topic: str | None, config: TransformConfig, today: date | None = None
) -> o.Parsed | o.Filtered | o.Error:
    record = parse_json_object(raw, config.max_message_bytes)
    if isinstance(record, o.Error):
        return record
    kind = message_type(record, topic, config)
    mapper = REGISTRY.get(kind)
    if mapper is None:
        # The type is a message value: the detail says where it came from, never what it was.
        source = "the topic's configured type" if topic in config.topic_types else "the message's type field"
        return o.Error(o.VALIDATE, o.UNKNOWN_MESSAGE_TYPE, f"no mapper for {source}")
    filtered = business_filter(record, config) if mapper.filtered_by_business_rules else None
    if filtered is not None:
        return filtered
    try:
        error = mapper.validate(record, today)
    except Exception as exc:  # noqa: BLE001  (a validator bug must not stop the stream)
        return o.Error(o.VALIDATE, o.MAPPING_FAILED, f"validator raised {type(exc).__name__}")
    return error if error is not None else o.Parsed(record, kind)


def map_parsed(parsed: o.Parsed, config: TransformConfig) -> o.Ok | o.Error:
    mapper = REGISTRY[parsed.message_type]
    try:
        resource = mapper.map(parsed.record, config)
        identifier = mapper.business_identifier(parsed.record, config)
    except Exception as exc:  # noqa: BLE001  (the exception text could quote the record)
        return o.Error(o.MAP, o.MAPPING_FAILED, f"mapper raised {type(exc).__name__}")
    problems = mapper.check(resource)
    if problems:
        return o.Error(o.MAP, o.US_CORE_RULES, "; ".join(problems[:10]))
    if config.structural_validation:
        problems = structural_problems(resource)
        if problems:
            return o.Error(o.MAP, o.STRUCTURE_INVALID, "; ".join(problems[:10]))
    return o.Ok((o.MappedResource(resource, identifier),))


def transform(raw: bytes, topic: str | None = None, config: TransformConfig | None = None) -> o.Outcome:
    config = config or TransformConfig()
    parsed = parse_and_validate(raw, topic, config)
    return map_parsed(parsed, config) if isinstance(parsed, o.Parsed) else parsed
