"""ParseAndValidate and MapToFhir: the US Core transformation core (beam_pipeline.us_core) as two steps.

ParseAndValidate splits consumed messages into valid, filtered (counted, not errors) and invalid (error
records); MapToFhir turns valid ones into US Core resources with their business identifiers, or error
records when the mapping, the US Core rule check or the profile validation (--profile_validation) fails.
Neither logs message content.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from beam_pipeline import failed_message
from beam_pipeline.contracts.error_record import ErrorRecord
from beam_pipeline.contracts.job_settings import PROFILE_VALIDATION_OFF
from beam_pipeline.contracts.outcome import INTERNAL_ERROR, MAP, PARSE
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms import coders  # noqa: F401  (registers the coders of the types declared below)
from beam_pipeline.transforms.elements import MappedMessage, ParsedMessage
from beam_pipeline.transforms.outputs import FAILED, FILTERED, INVALID, MAPPED, VALID, MapResult, ParseResult
from beam_pipeline.us_core import (
    Error,
    Filtered,
    Ok,
    Parsed,
    TransformConfig,
    conformance,
    map_parsed,
    mapping_set,
    parse_and_validate,
)
from beam_pipeline.us_core import terminology as t
from beam_pipeline.us_core.rules import check_resource
from beam_pipeline.us_core.stages import declared_profiles

log = logging.getLogger(__name__)
# The mapping step's counters: mapped.<type>, failed.<code>, profile_violation.<profile>.<rule>.
MAP_COUNTERS = "map_to_fhir"


def warm_up(config: TransformConfig) -> None:
    """Compile the job's mapping set, load what the US Core rule check reads and compile the validator of
    every profile the mappings declare, before any message, so a worker's first messages cost what the
    others do. A failure is left to the messages, which turn it into their error records."""
    try:
        mapping_set(config)
        check_resource({"resourceType": "Patient"}, ())
        check_resource({"resourceType": "Observation", "meta": {"profile": [t.US_CORE_VITAL_SIGNS]}}, ())
        if config.profile_validation != PROFILE_VALIDATION_OFF:
            conformance.warm(declared_profiles(config))
    except Exception:  # noqa: BLE001  (warming up must never stop a worker)
        log.debug("warming up the mapping set failed; the first message will say why")


def _error_record(message: RawMessage, error: Error, job_name: str) -> ErrorRecord:
    # Parse, validation and mapping errors are properties of the message: replaying it cannot help.
    return failed_message.error_record(
        message, stage=error.stage, code=error.code, retryable=False, detail=error.detail, job_name=job_name
    )


def _internal_error(stage: str, step: str, exc: Exception) -> Error:
    # The exception's type only: its message could quote the record.
    return Error(stage, INTERNAL_ERROR, f"{type(exc).__name__} in {step}")


class _ParseFn(beam.DoFn):
    def __init__(self, config: TransformConfig, job_name: str) -> None:
        self._config = config
        self._job_name = job_name

    def setup(self) -> None:
        # The mapping set is compiled once per worker, here rather than on the first message.
        warm_up(self._config)

    def process(self, message: RawMessage) -> Iterable[Any]:
        # Whatever one message does, it ends as one output here: an exception would fail the runner's
        # bundle, which Dataflow retries for ever while the stream stalls behind it.
        try:
            result = parse_and_validate(message.value, message.source_topic, self._config)
        except Exception as exc:  # noqa: BLE001
            result = _internal_error(PARSE, "ParseAndValidate", exc)
        if isinstance(result, Parsed):
            beam.metrics.Metrics.counter("parse_and_validate", "valid").inc()
            yield ParsedMessage(message, result)
        elif isinstance(result, Filtered):
            beam.metrics.Metrics.counter("parse_and_validate", "filtered").inc()
            yield pvalue.TaggedOutput(FILTERED, message)
        else:
            beam.metrics.Metrics.counter("parse_and_validate", f"invalid.{result.code}").inc()
            yield pvalue.TaggedOutput(INVALID, _error_record(message, result, self._job_name))


class ParseAndValidate(beam.PTransform):
    """RawMessage -> ParseResult: `valid` ParsedMessage, `filtered` RawMessage, `invalid` ErrorRecord."""

    def __init__(self, config: TransformConfig, job_name: str) -> None:
        super().__init__()
        self._config = config
        self._job_name = job_name

    def expand(self, messages: beam.PCollection[RawMessage]) -> ParseResult:
        parse = beam.ParDo(_ParseFn(self._config, self._job_name)).with_output_types(
            ParsedMessage, **{FILTERED: RawMessage, INVALID: ErrorRecord}
        )
        outputs = messages | "Parse" >> parse.with_outputs(FILTERED, INVALID, main=VALID)
        return ParseResult(valid=outputs[VALID], filtered=outputs[FILTERED], invalid=outputs[INVALID])


class _MapFn(beam.DoFn):
    def __init__(self, config: TransformConfig, job_name: str) -> None:
        self._config = config
        self._job_name = job_name

    def setup(self) -> None:
        warm_up(self._config)

    def process(self, item: ParsedMessage) -> Iterable[Any]:
        try:
            result = map_parsed(item.parsed, self._config)
            if isinstance(result, Ok):
                mapped = MappedMessage(item.message, result.resources)
        except Exception as exc:  # noqa: BLE001  (see _ParseFn.process)
            result = _internal_error(MAP, "MapToFhir", exc)
        if isinstance(result, Ok):
            beam.metrics.Metrics.counter(MAP_COUNTERS, f"mapped.{item.parsed.message_type}").inc()
            # Written with a profile's errors (--profile_validation=warn): counted per profile and rule.
            for name in conformance.counter_names(result.issues):
                beam.metrics.Metrics.counter(MAP_COUNTERS, name).inc()
            yield mapped
        else:
            beam.metrics.Metrics.counter(MAP_COUNTERS, f"failed.{result.code}").inc()
            yield pvalue.TaggedOutput(FAILED, _error_record(item.message, result, self._job_name))


class MapToFhir(beam.PTransform):
    """ParsedMessage -> MapResult: `mapped` MappedMessage (resources + business identifiers), `failed`
    ErrorRecord."""

    def __init__(self, config: TransformConfig, job_name: str) -> None:
        super().__init__()
        self._config = config
        self._job_name = job_name

    def expand(self, parsed: beam.PCollection[ParsedMessage]) -> MapResult:
        map_fn = beam.ParDo(_MapFn(self._config, self._job_name)).with_output_types(
            MappedMessage, **{FAILED: ErrorRecord}
        )
        outputs = parsed | "Map" >> map_fn.with_outputs(FAILED, main=MAPPED)
        return MapResult(mapped=outputs[MAPPED], failed=outputs[FAILED])
