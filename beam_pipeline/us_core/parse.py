"""Raw bytes -> a JSON object, or an Error saying why not (never an exception).

Anything Kafka can deliver comes through here: empty values and tombstones, invalid UTF-8, numbers no
float can hold, NaN, duplicate keys, deep nesting, lone UTF-16 surrogates. Each gets its own code, and no
detail quotes the message (it may be patient data).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import msgspec

from beam_pipeline.contracts import outcome as o

# Patient records are flat; anything deeper is not a record, and deep values are costly to carry between
# pipeline steps (each step's encoder recurses through them).
MAX_DEPTH = 32
# Longer than any identifier or coordinate a record carries; Python's int() refuses 4,300 digits anyway.
MAX_NUMBER_DIGITS = 100
_INT_LIMIT = 10**MAX_NUMBER_DIGITS
_BOM = "\ufeff"
_NUMBERS = (int, float)
# A \uD800-\uDFFF escape: the only way a lone surrogate gets into a str (strict UTF-8 decoding refuses them).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class _Rejected(Exception):
    """Raised inside json.loads hooks to stop parsing with a code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.error = o.Error(o.PARSE, code, detail)


def _parse_constant(name: str) -> float:
    # Python's json accepts NaN and Infinity, which are not JSON and would become the text "nan".
    raise _Rejected(o.INVALID_NUMBER, "NaN and Infinity are not JSON numbers")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        # Which of the two values is meant is anyone's guess; the key itself is not named (it is input).
        raise _Rejected(o.DUPLICATE_KEY, "an object has the same key twice")
    return data


# Built once: json.loads with any hook builds a new decoder per call, which costs more than the parse.
_DECODER = json.JSONDecoder(parse_constant=_parse_constant)
_KEY_COUNTING_DECODER = json.JSONDecoder(parse_constant=_parse_constant, object_pairs_hook=_object)


def _scan(data: dict[str, Any]) -> tuple[o.Error | None, int]:
    """One pass over the values, without recursion: nesting beyond MAX_DEPTH, integers over
    MAX_NUMBER_DIGITS, floats beyond a double (1e400 parses as infinity). Also the number of quotes the
    parsed object accounts for (two per key and per string value, at any depth), for `_keys_may_repeat`."""
    strings = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return o.Error(o.PARSE, o.TOO_DEEP, f"nested deeper than {MAX_DEPTH} levels"), 0
        if type(value) is dict:
            strings += len(value)
            children = value.values()
        else:
            children = value
        for child in children:
            kind = type(child)
            if kind is str:
                strings += 1
            elif kind is float:
                if not math.isfinite(child):
                    return o.Error(o.PARSE, o.INVALID_NUMBER, "a number is outside the range of a double"), 0
            elif kind is int:
                if not -_INT_LIMIT < child < _INT_LIMIT:
                    return o.Error(o.PARSE, o.INVALID_NUMBER, f"a number has more than {MAX_NUMBER_DIGITS} digits"), 0
            elif kind is dict or kind is list:
                stack.append((child, depth + 1))
    return None, 2 * strings


def _keys_may_repeat(text: str, quotes: int) -> bool:
    """False when the text provably names each key once, without a second parse. Every key and every string
    value brings two quotes, and an escaped quote one more; json keeps only a repeated key's last value, so
    a repeat (at any depth) shows as quotes the parsed object does not explain: the repeat's key, and the
    strings of the value it lost. Escapes can only add quotes: at worst they cost the second parse."""
    return text.count('"') != quotes


def _has_lone_surrogate(data: Any) -> bool:  # noqa: ANN401  (any parsed JSON)
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if _LONE_SURROGATE.search(value):
                return True
        elif isinstance(value, dict):
            stack.extend(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _checked_int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_NUMBER_DIGITS:
        raise _Rejected(o.INVALID_NUMBER, "")  # the usual parse decides and says it
    return int(text)


def _checked_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _Rejected(o.INVALID_NUMBER, "")
    return number


# For nested messages: keys counted, numbers checked, as the text is read (see _nested).
_NESTED_DECODER = json.JSONDecoder(
    parse_constant=_parse_constant, object_pairs_hook=_object, parse_int=_checked_int, parse_float=_checked_float
)


def _nested(text: str) -> dict[str, Any] | None:
    """A nested message (an ADT event) with at most MAX_DEPTH brackets (so none nests too deep), parsed with
    its keys counted as it is read, when that answers everything parse_json_object's walk would: no key
    repeats, and no number can be out of range. None when it cannot say (a repeated key, any parse error,
    an out-of-range number): the caller then parses it the usual way, which decides, in its order."""
    try:
        data = _NESTED_DECODER.decode(text)
    except (_Rejected, ValueError, RecursionError):  # JSONDecodeError is a ValueError
        return None
    if type(data) is not dict:
        return None
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(data):
        return None
    return data


# The common message in one C call: a decoder that reads JSON as json does (exact integers of any size,
# errors for NaN, out-of-range floats, invalid UTF-8 and trailing text), and its encoder for the key check.
_FAST_DECODER = msgspec.json.Decoder()
_FAST_ENCODE = msgspec.json.Encoder().encode
# A run of digits this long may be a number over MAX_NUMBER_DIGITS (or just text): the usual parse decides.
# Found as a substring of the text with every digit made "0" and every other byte " ": two C calls, where a
# regular expression walks the text byte by byte (9 us for an ADT event).
_LONG_DIGITS = b"0" * (MAX_NUMBER_DIGITS + 1)
_DIGITS_ONLY = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))


def _fast(raw: bytes) -> dict[str, Any] | None:
    """The message, when it provably passes every check of parse_json_object, else None (the usual parse
    then decides, in its order). It must have no backslash: then every quote in it opens or closes a key or
    a string, no escape can hide a control character or a lone surrogate, and a repeated key (json keeps
    its last value) shows as quotes the decoded object does not give back when encoded again. At most
    MAX_DEPTH brackets: none nests too deep. No MAX_NUMBER_DIGITS + 1 digits in a row: no number too long."""
    if b"\\" in raw or raw.count(b"{") + raw.count(b"[") > MAX_DEPTH or _LONG_DIGITS in raw.translate(_DIGITS_ONLY):
        return None
    try:
        data = _FAST_DECODER.decode(raw)
    except (msgspec.DecodeError, ValueError):  # invalid UTF-8 is a UnicodeDecodeError, a ValueError
        return None
    if type(data) is not dict or _FAST_ENCODE(data).count(b'"') != raw.count(b'"'):
        return None
    return data


def parse_json_object(raw: bytes, max_bytes: int) -> dict[str, Any] | o.Error:
    if len(raw) > max_bytes:
        return o.Error(o.PARSE, o.TOO_LARGE, f"message is {len(raw)} bytes; the limit is {max_bytes}")
    if not raw or raw.isspace():
        return o.Error(o.PARSE, o.EMPTY_MESSAGE, "the message is empty (a tombstone or an empty value)")
    fast = _fast(raw)
    if fast is not None:
        return fast
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return o.Error(o.PARSE, o.INVALID_UTF8, f"not valid UTF-8 at byte {exc.start}")
    # Some producers start UTF-8 with a byte order mark; it says nothing about the record.
    text = text.removeprefix(_BOM)
    brackets = text.count("{") + text.count("[")
    if 1 < brackets <= MAX_DEPTH:  # nested, and too few brackets to nest too deep
        nested = _nested(text)
        if nested is not None:
            return nested
    return _parse_text(text)


def _parse_text(text: str) -> dict[str, Any] | o.Error:
    """The text as a JSON object, or the first error of parse_json_object's checks, in their order."""
    try:
        data = _DECODER.decode(text)
    except _Rejected as exc:
        return exc.error
    except json.JSONDecodeError as exc:
        # Position only: the message text itself may be patient data.
        return o.Error(o.PARSE, o.INVALID_JSON, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except RecursionError:
        return o.Error(o.PARSE, o.TOO_DEEP, f"nested deeper than {MAX_DEPTH} levels")
    except ValueError:
        # Not a JSONDecodeError: Python's int() refusing over 4,300 digits (its message quotes none, but
        # the detail is ours anyway).
        return o.Error(o.PARSE, o.INVALID_NUMBER, f"a number has more than {MAX_NUMBER_DIGITS} digits")
    if not isinstance(data, dict):
        return o.Error(o.PARSE, o.NOT_AN_OBJECT, f"a JSON {type(data).__name__} is not an object")
    problem, quotes = _scan(data)
    if problem is not None:
        return problem
    if _keys_may_repeat(text, quotes):
        try:
            _KEY_COUNTING_DECODER.decode(text)
        except _Rejected as exc:
            return exc.error
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(data):
        # A lone surrogate cannot be encoded as UTF-8, so the FHIR write would fail with the whole bundle.
        return o.Error(o.PARSE, o.LONE_SURROGATE, "a \\u escape is half of a UTF-16 surrogate pair")
    return data


def text(record: dict[str, Any], name: str) -> str | None:
    """A field as stripped text; empty strings, nulls and absent fields are all None."""
    value = record.get(name)
    # Text first: it is nearly every field of nearly every message (this runs ~30 times per message).
    if type(value) is str:
        value = value.strip()
        return value or None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, _NUMBERS):
        return str(value)
    if isinstance(value, str):  # a str subclass
        return value.strip() or None
    return None
