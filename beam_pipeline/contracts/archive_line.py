"""The archive line: one consumed message, exactly as consumed, in the archive bucket (one NDJSON line).

Its Kafka coordinates identify it for good (`topic`/`partition`/`offset`, docs/contracts.md), then its
timestamp and key, then the payload: `payload` when it is UTF-8 text, `payload_base64` otherwise. The
object it goes in is named by bucket_layout.archive_partition, from the topic and the message's UTC day.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from beam_pipeline.contracts.bucket_layout import UNKNOWN, archive_partition
from beam_pipeline.contracts.error_record import json_line, key_fields, payload_fields, utc_date

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
