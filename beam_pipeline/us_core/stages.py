"""One raw message through the mapping's stages -> Ok / Filtered / Error. Pure: never raises, never logs,
never reads a clock it was not given. The pipeline runs the two halves as separate steps (ParseAndValidate,
MapToFhir). What each message type means is data: the mapping files (beam_pipeline/mapping)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Any

from beam_pipeline.contracts import outcome as o
from beam_pipeline.mapping import feed, runtime
from beam_pipeline.mapping.mapping_set import MappingSet, compiled
from beam_pipeline.us_core import conformance
from beam_pipeline.us_core.config import TransformConfig
from beam_pipeline.us_core.parse import parse_json_object, text
from beam_pipeline.us_core.rules import check_resource
from beam_pipeline.us_core.structural import structural_problems

# Fields a message may carry to say what it is; their values are compared in lower case with the types the
# mappings recognise.
TYPE_FIELDS = ("MESSAGE_TYPE", "messageType", "resourceType")


def mapping_set(config: TransformConfig) -> MappingSet:
    return compiled(config.mappings)


def declared_profiles(config: TransformConfig) -> list[str]:
    """Every profile the job's mappings declare their resources conform to, each once."""
    found = (p for mapping in mapping_set(config).mappings for r in mapping.resources for p in r.profiles)
    return list(dict.fromkeys(found))


def message_type(record: dict[str, Any], topic: str | None, config: TransformConfig) -> str | None:
    """The type this message says it is (its topic's configured type, else its own type field, in lower
    case), or None when it names none."""
    if topic is not None and topic in config.topic_types:
        return config.topic_types[topic].strip().lower()
    for name in TYPE_FIELDS:
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    return None


def business_filter(record: dict[str, Any], config: TransformConfig) -> o.Filtered | None:
    if config.filter_country is not None:
        country = text(record, "COUNTRY")
        if country is None or country.upper() != config.filter_country.upper():
            return o.Filtered("COUNTRY is not " + config.filter_country)
    if config.filter_program_names is not None and text(record, "PROGRAM_NAME") not in config.filter_program_names:
        return o.Filtered("PROGRAM_NAME is not in the allow-list")
    return None


_today: tuple[int, str] = (0, "")


def _today_text() -> str:
    """Today's UTC date as text, worked out again only when the day changes (this runs for every message)."""
    global _today  # noqa: PLW0603  (a per-process cache of one value)
    day = int(time.time() // 86400)
    if _today[0] != day:
        _today = (day, datetime.now(UTC).date().isoformat())
    return _today[1]


_SETTINGS: dict[tuple[str, str, str], dict[str, list[Any]]] = {}


def settings(config: TransformConfig, today: date | None = None) -> dict[str, list[Any]]:
    """The variables every mapping reads besides its own (feed.BUILT_IN_VARIABLES). The same for every
    message of a day, so built once (callers copy it: feed.environment)."""
    day = today.isoformat() if today is not None else _today_text()
    key = (config.source_id_system, config.natural_key_system, day)
    found = _SETTINGS.get(key)
    if found is None:
        if len(_SETTINGS) > 64:  # a new day, or many configs in one process (tests): start again
            _SETTINGS.clear()
        found = _SETTINGS[key] = {
            "sourceIdSystem": [config.source_id_system],
            "naturalKeySystem": [config.natural_key_system],
            "today": [day],
        }
    return found


def parse_and_validate(
    raw: bytes, topic: str | None, config: TransformConfig, today: date | None = None
) -> o.Parsed | o.Filtered | o.Error:
    record = parse_json_object(raw, config.max_message_bytes)
    if isinstance(record, o.Error):
        return record
    kind = message_type(record, topic, config)
    mapping = mapping_set(config).recognise(kind)
    if mapping is None:
        # The type is a message value: the detail says where it came from, never what it was.
        source = "the topic's configured type" if topic in config.topic_types else "the message's type field"
        return o.Error(o.VALIDATE, o.UNKNOWN_MESSAGE_TYPE, f"no mapping for {source}")
    filtered = business_filter(record, config) if mapping.business_filters else None
    if filtered is not None:
        return filtered
    try:
        env = feed.environment(mapping, record, settings(config, today))
        # JSON carries a control character only as an escape: without a backslash, the text has none.
        result = feed.check(mapping, record, env, plain=b"\\" not in raw)
    except Exception as exc:  # noqa: BLE001  (a mapping's bug must not stop the stream)
        return o.Error(o.VALIDATE, o.MAPPING_FAILED, f"mapping {mapping.id} raised {type(exc).__name__} in validate")
    return result if result is not None else o.Parsed(record, mapping.message_type, env)


def _identifier(values: list[Any]) -> tuple[str, str] | None:
    ident = values[0] if values else None
    if isinstance(ident, dict) and isinstance(ident.get("system"), str) and isinstance(ident.get("value"), str):
        return ident["system"], ident["value"]
    return None


def _element(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path if isinstance(p, str))


def map_parsed(parsed: o.Parsed, config: TransformConfig) -> o.Ok | o.Error:
    mapping = mapping_set(config).by_type[parsed.message_type]
    record = parsed.record
    resources = []
    try:
        env = parsed.env if parsed.env is not None else feed.environment(mapping, record, settings(config))
        for compiled_resource in mapping.resources:
            if compiled_resource.when is not None and not compiled_resource.when(record, env):
                continue
            resource = compiled_resource.build(record, env)
            if resource is None:
                continue
            resource.setdefault("meta", {})["tag"] = [mapping.tag]
            if compiled_resource.business_identifier is None:  # the default: the first identifier
                identifiers = resource.get("identifier")
                identifier = _identifier(identifiers[:1] if isinstance(identifiers, list) else [])
            else:
                identifier = _identifier(compiled_resource.business_identifier(resource, env))
            resources.append((compiled_resource, resource, identifier))
    except runtime.SeveralValues as exc:
        where = _element(compiled_resource.paths[exc.path_id])
        return o.Error(o.MAP, o.MAPPING_FAILED, f"element '{where}' got {exc.count} values; it takes one")
    except runtime.Placeholder as exc:
        return o.Error(
            o.MAP, o.US_CORE_RULES, f"{_element(compiled_resource.paths[exc.path_id])}: empty or placeholder"
        )
    except Exception as exc:  # noqa: BLE001  (the exception text could quote the record)
        return o.Error(o.MAP, o.MAPPING_FAILED, f"mapping {mapping.id} raised {type(exc).__name__}")
    if not resources:
        return o.Error(o.MAP, o.MAPPING_FAILED, f"mapping {mapping.id} wrote no resource for this message")
    mapped = []
    for compiled_resource, resource, identifier in resources:
        problems = check_resource(resource, compiled_resource.profiles, clean=True)
        if identifier is None:
            problems.append("identifier: the business identifier (system and value) is missing")
        if problems:
            return o.Error(o.MAP, o.US_CORE_RULES, "; ".join(problems[:10]))
        if config.structural_validation:
            problems = structural_problems(resource)
            if problems:
                return o.Error(o.MAP, o.STRUCTURE_INVALID, "; ".join(problems[:10]))
        mapped.append(o.MappedResource(resource, identifier))
    return conformance.apply(tuple(mapped), config.profile_validation)


def transform(raw: bytes, topic: str | None = None, config: TransformConfig | None = None) -> o.Outcome:
    config = config or TransformConfig()
    parsed = parse_and_validate(raw, topic, config)
    return map_parsed(parsed, config) if isinstance(parsed, o.Parsed) else parsed
