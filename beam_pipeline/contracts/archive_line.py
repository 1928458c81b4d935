"""The archive line: one consumed message, exactly as consumed, in the archive bucket (one NDJSON line).

Its Kafka coordinates identify it for good (`topic`/`partition`/`offset`, docs/contracts.md), then its
timestamp and key, then the payload: `payload` when it is UTF-8 text, `payload_base64` otherwise. The
object it goes in is named by bucket_layout.archive_partition, from the topic and the message's UTC day.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

from beam_pipeline.contracts.bucket_layout import UNKNOWN, archive_partition
from beam_pipeline.contracts.error_record import (
    KAFKA_TOPIC,
    MAX_OFFSET,
    MAX_PARTITION,
    json_line,
    key_fields,
    payload_fields,
    utc_date,
)

if TYPE_CHECKING:
    from beam_pipeline.raw_message import RawMessage


def message_partition(message: RawMessage) -> str:
    """topic=T/date=D of the message's object: its UTC day, or UNKNOWN when its timestamp names none."""
    return archive_partition(message.topic, utc_date(message.timestamp_ms) or UNKNOWN)


def archive_line(message: RawMessage) -> str:
    """The archive's NDJSON line: coordinates plus the exact payload (base64 when not UTF-8)."""
    data = {
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "timestamp_ms": message.timestamp_ms,
        **key_fields(message.key),
        **payload_fields(message.value),
    }
    return json_line(data)


def archive_entry(message: RawMessage) -> tuple[str, str]:
    """(partition path, line) of a well-formed message; raises on a field of the wrong type."""
    return message_partition(message), archive_line(message)


def fallback_archive_entry(message: RawMessage) -> tuple[str, str]:
    """(partition path, line) of a message whose own line cannot be built: under the UNKNOWN day, the
    coordinates that identify it and its bytes in base64."""
    data = {
        "topic": str(message.topic),
        "partition": message.partition,
        "offset": message.offset,
        "payload_base64": base64.b64encode(bytes(message.value)).decode("ascii"),
    }
    return archive_partition(str(message.topic), UNKNOWN), json_line(data)


class CorruptArchiveLine(ValueError):
    """A line that is not an archive line. Its message names the field and the rule, never a value."""


def read_archive_line(line: str | bytes) -> dict[str, Any]:
    """The fields of the RawMessage archive_line wrote (topic, partition, offset, timestamp_ms, key, value;
    the archive keeps no headers). Raises CorruptArchiveLine for anything else, including a fallback line
    (it has no timestamp, so no range can select it)."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            raise CorruptArchiveLine("the line is not UTF-8") from None
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        raise CorruptArchiveLine("the line is not JSON") from None
    if not isinstance(data, dict):
        raise CorruptArchiveLine("the line is not a JSON object")
    topic = data.get("topic")
    if not isinstance(topic, str) or not KAFKA_TOPIC.match(topic):
        raise CorruptArchiveLine("field topic is missing or not a Kafka topic name")
    return {
        "topic": topic,
        "partition": _integer(data, "partition", 0, MAX_PARTITION),
        "offset": _integer(data, "offset", 0, MAX_OFFSET),
        "timestamp_ms": _integer(data, "timestamp_ms", -MAX_OFFSET - 1, MAX_OFFSET),
        "key": _bytes(data, "key", "key_base64", required=False),
        "value": _bytes(data, "payload", "payload_base64", required=True),
    }


def _integer(data: dict[str, Any], name: str, low: int, high: int) -> int:
    value = data.get(name)
    # bool is an int to Python, not to the archive.
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise CorruptArchiveLine(f"field {name} is missing or not an integer from {low} to {high}")
    return value


def _bytes(data: dict[str, Any], text_name: str, base64_name: str, *, required: bool) -> bytes | None:
    """The exact bytes of the key or payload: the base64 field when present (the bytes were not UTF-8)."""
    if base64_name in data:
        encoded = data[base64_name]
        if not isinstance(encoded, str):
            raise CorruptArchiveLine(f"field {base64_name} is not a string")
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise CorruptArchiveLine(f"field {base64_name} is not base64") from None
    if text_name not in data:
        if required:
            raise CorruptArchiveLine(f"fields {text_name} and {base64_name} are both missing")
        return None
    text = data[text_name]
    if not isinstance(text, str):
        raise CorruptArchiveLine(f"field {text_name} is not a string")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise CorruptArchiveLine(f"field {text_name} holds a lone surrogate") from None
