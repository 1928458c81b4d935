"""Raw bytes -> a JSON object, or an Error saying why not (never an exception)."""

from __future__ import annotations

import json
from typing import Any

from beam_pipeline.us_core import outcome as o


def parse_json_object(raw: bytes, max_bytes: int) -> dict[str, Any] | o.Error:
    if len(raw) > max_bytes:
        return o.Error(o.PARSE, o.TOO_LARGE, f"message is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return o.Error(o.PARSE, o.INVALID_UTF8, f"not valid UTF-8 at byte {exc.start}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # Position only: the message text itself may be patient data.
        return o.Error(o.PARSE, o.INVALID_JSON, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except RecursionError:
        return o.Error(o.PARSE, o.INVALID_JSON, "not JSON: nested too deeply")
    if not isinstance(data, dict):
        return o.Error(o.PARSE, o.NOT_AN_OBJECT, f"a JSON {type(data).__name__} is not an object")
    return data


def text(record: dict[str, Any], name: str) -> str | None:
    """A field as stripped text; empty strings, nulls and absent fields are all None."""
    value = record.get(name)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def wrong_type(record: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    """Fields that are present but neither text, a number nor null (objects, lists, booleans)."""
    bad = []
    for name in names:
        value = record.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int | float)):
            bad.append(name)
    return bad
