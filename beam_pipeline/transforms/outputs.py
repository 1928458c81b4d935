"""The names of the steps' tagged outputs, one definition each: the step that tags an output and the
graph that reads it name it with the same constant. And what each step returns: one result type per step,
its fields named as its outputs (like Beam's WriteResult), so a caller reads `result.failed` whatever the
step. A NamedTuple is what Beam accepts as a composite's output and labels by field name."""

from __future__ import annotations

from typing import Any, NamedTuple

import apache_beam as beam

# ParseAndValidate
VALID = "valid"
FILTERED = "filtered"
INVALID = "invalid"
# MapToFhir
MAPPED = "mapped"
# WriteToFhirStore
WRITTEN = "written"
# MapToFhir and WriteToFhirStore: their error records, which DeadLetter writes.
FAILED = "failed"
# WriteToFhirStore and a reprocess's reads: ("namespace/name", n) pairs, what their counters counted, as data
# (transforms/tally.py).
TALLY = "tally"


def _output(result: tuple[Any, ...], key: int | slice | str) -> Any:  # noqa: ANN401  (a PCollection or a slice)
    # By tag as well as by position: callers that indexed the dict or DoOutputsTuple a step returned before
    # (`written[FAILED]`) keep working.
    return getattr(result, key) if isinstance(key, str) else tuple.__getitem__(result, key)


class ParseResult(NamedTuple):
    """ParseAndValidate's outputs: ParsedMessage, RawMessage filtered out, ErrorRecord."""

    valid: beam.PCollection
    filtered: beam.PCollection
    invalid: beam.PCollection

    __getitem__ = _output


class MapResult(NamedTuple):
    """MapToFhir's outputs: MappedMessage, ErrorRecord."""

    mapped: beam.PCollection
    failed: beam.PCollection

    __getitem__ = _output


class WriteResult(NamedTuple):
    """WriteToFhirStore's outputs: the RawMessage of each message written, ErrorRecord, and the tally of
    what it did ("namespace/name", n), which a reprocess's summary adds up (the streaming job reads none)."""

    written: beam.PCollection
    failed: beam.PCollection
    tally: beam.PCollection

    __getitem__ = _output
