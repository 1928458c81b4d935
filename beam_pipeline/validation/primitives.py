"""FHIR R4 primitive types as one check each: the JSON kind and, for text, the datatype's regular expression
(https://hl7.org/fhir/R4/datatypes.html). Dates are also checked against the calendar, as the reference
validator does: 2020-02-30 matches the R4 pattern and is still refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from beam_pipeline.mapping.fhir_datetime import FHIR_DATE, FHIR_DATE_TIME, FHIR_INSTANT

_INT32 = 2**31


# Texts a pattern check remembers as passed: codes, systems and URLs recur on every resource of a feed, and a
# set lookup costs a fifth of the regular expression. Full, it stops remembering (a day's values still pass).
# Only short texts: an attachment's base64 data or a long URL is checked each time, never kept in memory.
_REMEMBERED = 4096
_REMEMBERED_LENGTH = 128


def _text(pattern: str | None = None) -> Callable[[object], bool]:
    if not pattern:

        def check(value: object) -> bool:
            # R4's string is "[ \r\n\t\S]+": never empty, and ele-1 forbids "" for every primitive anyway.
            return type(value) is str and value != ""

        return check
    match = re.compile(pattern).fullmatch
    passed: set[str] = set()

    def check_pattern(value: object) -> bool:
        if type(value) is not str:
            return False
        if value in passed:
            return True
        if value == "" or match(value) is None:
            return False
        if len(passed) < _REMEMBERED and len(value) <= _REMEMBERED_LENGTH:
            passed.add(value)
        return True

    check_pattern.passed = passed  # type: ignore[attr-defined]  (for the tests)
    return check_pattern


def _calendar(pattern: re.Pattern[str]) -> Callable[[object], bool]:
    match = pattern.fullmatch

    def check(value: object) -> bool:
        if type(value) is not str or match(value) is None:
            return False
        if len(value) < 10:
            return True
        try:
            date.fromisoformat(value[:10])
        except ValueError:
            return False
        return True

    return check


def _integer(low: int) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        return type(value) is int and low <= value < _INT32

    return check


def _decimal(value: object) -> bool:
    return (
        (type(value) is int or type(value) is float) and value == value and value not in (float("inf"), -float("inf"))
    )


def _boolean(value: object) -> bool:
    return type(value) is bool


CHECKS: dict[str, Callable[[object], bool]] = {
    "boolean": _boolean,
    "integer": _integer(-_INT32),
    "positiveInt": _integer(1),
    "unsignedInt": _integer(0),
    "decimal": _decimal,
    "string": _text(),
    "markdown": _text(),
    "xhtml": _text(),
    "code": _text(r"[^\s]+( [^\s]+)*"),
    "id": _text(r"[A-Za-z0-9\-\.]{1,64}"),
    "uri": _text(r"\S*"),
    "url": _text(r"\S*"),
    "canonical": _text(r"\S*"),
    "oid": _text(r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+"),
    "uuid": _text(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    "base64Binary": _text(r"(\s*([0-9a-zA-Z\+/=]){4}\s*)+"),
    "time": _text(r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"),
    "date": _calendar(FHIR_DATE),
    "dateTime": _calendar(FHIR_DATE_TIME),
    "instant": _calendar(FHIR_INSTANT),
    # The type of Element.id and Extension.url in R4's snapshots.
    "http://hl7.org/fhirpath/System.String": _text(),
}


def is_primitive(type_code: str) -> bool:
    return type_code in CHECKS
