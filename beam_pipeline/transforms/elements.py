"""The elements the steps hand each other after parsing: a message with its parsed record, and a message
with the US Core resources it maps to. Their coders are in transforms/coders.py."""

from __future__ import annotations

from dataclasses import dataclass

from beam_pipeline.contracts.outcome import MappedResource, Parsed
from beam_pipeline.raw_message import RawMessage


@dataclass(frozen=True)
class ParsedMessage:
    message: RawMessage
    parsed: Parsed


@dataclass(frozen=True)
class MappedMessage:
    """A message with the US Core resources it maps to, each with its business identifier."""

    message: RawMessage
    resources: tuple[MappedResource, ...]
