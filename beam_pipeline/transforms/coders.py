"""Coders for the elements that cross a shuffle, registered with Beam's coder registry.

Without them a RawMessage or MappedMessage is pickled through the write step's Reshuffle (and between
stages Dataflow does not fuse). These encode the fields with Beam's own component coders: the same bytes
for equal values, a fifth to a third fewer bytes through the shuffle, about the CPU pickling costs, and no
class path in the bytes (bench/bench_coders.py). A resource (JSON-shaped dicts and lists) goes through Beam's
deterministic FastPrimitivesCoder, which sorts dict keys: JSON text would be canonical too, but costs three
times as much to write and read (bench/bench_coders.py). A step declares the type of its output
(`with_output_types`) for Beam to pick the coder; importing this module registers them.

A coder must never fail on an element: an exception while encoding fails the runner's whole bundle, for ever
on a streaming job. Text that UTF-8 cannot carry (a lone surrogate, which the parse step refuses in a raw
message but a mapping's bug could still write) goes pickled instead, behind a tag byte; that element's bytes
are then not canonical, which a shuffle's value does not need.
"""

from __future__ import annotations

from typing import Any

from apache_beam import coders

from beam_pipeline.contracts.outcome import MappedResource
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms.elements import MappedMessage

_FIELDS_TAG, _PICKLED_TAG = b"\x00", b"\x01"
_PICKLE = coders.PickleCoder()

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
        return _tagged(lambda: _RAW_FIELDS.encode(_raw_fields(value)), value)

    def decode(self, encoded: bytes) -> RawMessage:
        return _untagged(encoded, lambda body: _raw_message(_RAW_FIELDS.decode(body)))

    def is_deterministic(self) -> bool:
        return False  # equal values encode alike but for the pickled fallback; no step keys by these

    def to_type_hint(self) -> type:
        return RawMessage


class MappedMessageCoder(coders.Coder):
    """MappedMessage <-> its message's fields and each resource (keys sorted) with its identifier."""

    def encode(self, value: MappedMessage) -> bytes:
        resources = [(r.resource, r.identifier) for r in value.resources]
        return _tagged(lambda: _MAPPED_FIELDS.encode((_raw_fields(value.message), resources)), value)

    def decode(self, encoded: bytes) -> MappedMessage:
        return _untagged(encoded, _mapped_message)

    def is_deterministic(self) -> bool:
        return False  # equal values encode alike but for the pickled fallback; no step keys by these

    def to_type_hint(self) -> type:
        return MappedMessage


def _mapped_message(body: bytes) -> MappedMessage:
    raw, resources = _MAPPED_FIELDS.decode(body)
    return MappedMessage(
        _raw_message(raw),
        tuple(
            MappedResource(resource, tuple(identifier) if identifier is not None else None)
            for resource, identifier in resources
        ),
    )


def _tagged(encode_fields: Any, value: Any) -> bytes:  # noqa: ANN401
    try:
        return _FIELDS_TAG + encode_fields()
    except UnicodeEncodeError:
        return _PICKLED_TAG + _PICKLE.encode(value)


def _untagged(encoded: bytes, decode_fields: Any) -> Any:  # noqa: ANN401
    body = encoded[1:]
    return _PICKLE.decode(body) if encoded[:1] == _PICKLED_TAG else decode_fields(body)


coders.registry.register_coder(RawMessage, RawMessageCoder)
coders.registry.register_coder(MappedMessage, MappedMessageCoder)
