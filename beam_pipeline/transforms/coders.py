"""Deterministic coders for the elements that cross a shuffle, registered with Beam's coder registry.

Without them a RawMessage or MappedMessage is pickled through the write step's Reshuffle (and between
stages Dataflow does not fuse). These encode the fields with Beam's own component coders: the same bytes
for equal values, a fifth to a third fewer bytes through the shuffle, about the CPU pickling costs, and no
class path in the bytes (bench/bench_coders.py). A resource (JSON-shaped dicts and lists) goes through Beam's
deterministic FastPrimitivesCoder, which sorts dict keys: JSON text would be canonical too, but costs three
times as much to write and read (bench/bench_coders.py). A step declares the type of its output
(`with_output_types`) for Beam to pick the coder; importing this module registers them.
"""

from __future__ import annotations

from typing import Any

from apache_beam import coders

from beam_pipeline.contracts.outcome import MappedResource
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms.elements import MappedMessage

_STR = coders.StrUtf8Coder()
_INT = coders.VarIntCoder()
_BYTES = coders.BytesCoder()

# RawMessage's fields, in declaration order.
_RAW_FIELDS = coders.TupleCoder(
    [
        _STR,  # topic
        _INT,  # partition
        _INT,  # offset
        _INT,  # timestamp_ms
        coders.NullableCoder(_BYTES),  # key
        _BYTES,  # value
        coders.IterableCoder(coders.TupleCoder([_STR, _BYTES])),  # headers
    ]
)
# A MappedResource: its resource, and its business identifier (system, value) or None.
_RESOURCE = coders.FastPrimitivesCoder().as_deterministic_coder("MappedResource.resource")
_RESOURCE_FIELDS = coders.TupleCoder([_RESOURCE, coders.NullableCoder(coders.TupleCoder([_STR, _STR]))])
_MAPPED_FIELDS = coders.TupleCoder([_RAW_FIELDS, coders.IterableCoder(_RESOURCE_FIELDS)])


def _raw_fields(message: RawMessage) -> tuple[Any, ...]:
    return (
        message.topic,
        message.partition,
        message.offset,
        message.timestamp_ms,
        message.key,
        message.value,
        message.headers,
    )


def _raw_message(fields: tuple[Any, ...]) -> RawMessage:
    topic, partition, offset, timestamp_ms, key, value, headers = fields
    return RawMessage(topic, partition, offset, timestamp_ms, key, value, tuple(tuple(h) for h in headers))


class RawMessageCoder(coders.Coder):
    """RawMessage <-> its fields with Beam's component coders."""

    def encode(self, value: RawMessage) -> bytes:
        return _RAW_FIELDS.encode(_raw_fields(value))

    def decode(self, encoded: bytes) -> RawMessage:
        return _raw_message(_RAW_FIELDS.decode(encoded))

    def is_deterministic(self) -> bool:
        return True

    def to_type_hint(self) -> type:
        return RawMessage


class MappedMessageCoder(coders.Coder):
    """MappedMessage <-> its message's fields and each resource (keys sorted) with its identifier."""

    def encode(self, value: MappedMessage) -> bytes:
        resources = [(r.resource, r.identifier) for r in value.resources]
        return _MAPPED_FIELDS.encode((_raw_fields(value.message), resources))

    def decode(self, encoded: bytes) -> MappedMessage:
        raw, resources = _MAPPED_FIELDS.decode(encoded)
        return MappedMessage(
            _raw_message(raw),
            tuple(
                MappedResource(resource, tuple(identifier) if identifier is not None else None)
                for resource, identifier in resources
            ),
        )

    def is_deterministic(self) -> bool:
        return True

    def to_type_hint(self) -> type:
        return MappedMessage


coders.registry.register_coder(RawMessage, RawMessageCoder)
coders.registry.register_coder(MappedMessage, MappedMessageCoder)
