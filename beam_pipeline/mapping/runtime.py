"""What compiled FHIRPath calls at run time: collections in, collections out, never an exception about data.

Record values are read the way a data engineer expects of a raw record: text is stripped and an empty
string is absent (only empty means absent: "Null" or "N/A" are values), numbers read as their text (a ZIP
or code sent as a number is still that ZIP or code), null is absent, a list is its items.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from beam_pipeline.fhir_store.bundles import encoded_token
from beam_pipeline.mapping.fhir_datetime import Moment, parse_moment

Collection = list[Any]
_NUMBERS = (int, float)
# Characters a conditional reference keeps as they are; everything else in the token is percent-encoded.
_REFERENCE_SAFE = ":/|\\"


_OBJECTS = frozenset({dict})
_TEXT = frozenset({str})


def scalar(value: Any) -> Collection:  # noqa: ANN401  (any JSON value)
    """A record value as a collection (runtime's reading rules: see the module's docstring)."""
    kind = type(value)
    if kind is str:
        value = value.strip()
        return [value] if value else []
    if value is None:
        return []
    if kind is bool or kind is dict:
        return [value]
    if kind is int or kind is float:
        return [str(value)]
    if kind is list:
        kinds = set(map(type, value))
        # The usual lists, at C speed: of objects (a nested message's repeated parts), or of text.
        if kinds <= _OBJECTS:
            return value.copy()
        if kinds <= _TEXT:
            return [text for item in value if (text := item.strip())]
        out: Collection = []
        for item in value:
            out.extend(scalar(item))
        return out
    if isinstance(value, str):  # a str subclass
        return scalar(str(value))
    return [value]


# scalar(v) as generated code writes it for a value `v` just read: the usual kinds (text, absent, one object,
# a list of objects) without a call, anything else through scalar(). Needs the names `OBJECTS` and `scalar`.
READ_V = (
    "(([v] if (v := v.strip()) else []) if (k := type(v)) is str else [] if v is None else [v] if k is dict"
    " else v.copy() if k is list and OBJECTS.issuperset(map(type, v)) else scalar(v))"
)


def get(item: Any, name: str) -> Collection:  # noqa: ANN401
    """`name` of one focus item: a record field, or an element of a value the mapping made."""
    if type(item) is dict:
        value = item.get(name)
        # Text first: nearly every field of nearly every message is text.
        if type(value) is str:
            value = value.strip()
            return [value] if value else []
        return scalar(value)
    return []


def has(item: Any, name: str) -> bool:  # noqa: ANN401
    """get(item, name) is not empty, without making it: `family.exists()` in a where() or an _if."""
    if type(item) is dict:
        value = item.get(name)
        if type(value) is str:
            return bool(value.strip())
        return value is not None and bool(scalar(value))
    return False


def nav(collection: Collection, name: str) -> Collection:
    if len(collection) == 1:
        item = collection[0]  # get(), inlined: most paths step through one object
        if type(item) is dict:
            value = item.get(name)
            if type(value) is str:
                value = value.strip()
                return [value] if value else []
            return scalar(value)
        return []
    out: Collection = []
    for item in collection:
        out.extend(get(item, name))
    return out


def index(collection: Collection, position: Collection) -> Collection:
    if len(position) != 1 or type(position[0]) is not int:
        return []
    n = position[0]
    return [collection[n]] if 0 <= n < len(collection) else []


def truth(collection: Collection) -> bool:
    """FHIRPath's singleton evaluation as a condition: one true (or one non-boolean item) is true; empty,
    false, or several items are not."""
    if len(collection) != 1:
        return False
    value = collection[0]
    return value is not False


def is_false(collection: Collection) -> bool:
    """The collection is a boolean false as FHIRPath's not() sees it (not() of it is true)."""
    return bool(collection) and not truth(collection)


def _boolean(collection: Collection) -> bool | None:
    if not collection:
        return None
    return truth(collection)


# -- operators ----------------------------------------------------------------------------------------


def _comparable(value: Any) -> Any:  # noqa: ANN401
    return value.fhir if isinstance(value, Moment) else value


def _eq(left: Collection, right: Collection) -> Collection:
    if len(left) == 1 and len(right) == 1:
        a, b = left[0], right[0]
        if type(a) is type(b) and type(a) is not Moment:  # the usual case: text against text
            return [a == b]
        return [_same(a, b)]
    if not left or not right:
        return []
    if len(left) != len(right):
        return [False]
    return [all(_same(a, b) for a, b in zip(left, right, strict=True))]


def _same(a: Any, b: Any) -> bool:  # noqa: ANN401
    a, b = _comparable(a), _comparable(b)
    if type(a) is str and type(b) in _NUMBERS:
        return _decimal(a) == b
    if type(b) is str and type(a) in _NUMBERS:
        return _decimal(b) == a
    return a == b


def _ne(left: Collection, right: Collection) -> Collection:
    result = _eq(left, right)
    return [not result[0]] if result else []


def _equiv(left: Collection, right: Collection) -> Collection:
    if not left and not right:
        return [True]
    norm = lambda c: sorted(str(_comparable(v)).lower().strip() for v in c)  # noqa: E731
    return [norm(left) == norm(right)]


def _nequiv(left: Collection, right: Collection) -> Collection:
    return [not _equiv(left, right)[0]]


def _order(left: Collection, right: Collection) -> tuple[Any, Any] | None:
    if len(left) != 1 or len(right) != 1:
        return None
    a, b = left[0], right[0]
    if isinstance(a, Moment) and isinstance(b, Moment):
        return a, b
    if type(a) in _NUMBERS or type(b) in _NUMBERS:
        a, b = _decimal(a), _decimal(b)
        return (a, b) if a is not None and b is not None else None
    if type(a) is str and type(b) is str:
        return a, b
    return None


def _lt(left: Collection, right: Collection) -> Collection:
    pair = _order(left, right)
    if pair is None:
        return []
    a, b = pair
    return [a.before(b)] if isinstance(a, Moment) else [a < b]


def _gt(left: Collection, right: Collection) -> Collection:
    return _lt(right, left)


def _le(left: Collection, right: Collection) -> Collection:
    result = _lt(right, left)
    return [not result[0]] if result else []


def _ge(left: Collection, right: Collection) -> Collection:
    return _le(right, left)


# Conditions comparing with one literal (fhirpath compiles `x = 'text'`, `x < 90`, `x > -90` to them): the
# usual item answered directly, anything else as the operator and truth() answer it.


def is_text(collection: Collection, text: str) -> bool:
    if len(collection) == 1 and type(collection[0]) is str:
        return collection[0] == text
    return truth(_eq(collection, [text]))


def _finite(value: Any) -> bool:  # noqa: ANN401
    kind = type(value)
    return kind is int or (kind is float and math.isfinite(value))


def below(collection: Collection, number: float) -> bool:
    if len(collection) == 1 and _finite(collection[0]):
        return collection[0] < number
    return truth(_lt(collection, [number]))


def above(collection: Collection, number: float) -> bool:
    if len(collection) == 1 and _finite(collection[0]):
        return collection[0] > number
    return truth(_gt(collection, [number]))


def is_before(left: Collection, right: Collection) -> bool:
    """`left < right` as a condition: two texts (dates as written) compared directly, anything else as the
    operator and truth() answer it."""
    if len(left) == 1 and len(right) == 1 and type(a := left[0]) is str and type(b := right[0]) is str:
        return a < b
    return truth(_lt(left, right))


def _union(left: Collection, right: Collection) -> Collection:
    items = (*left, *right)
    if all(type(v) is str for v in items):  # the usual case: text, deduplicated in order at C speed
        return list(dict.fromkeys(items))
    out: Collection = []
    for value in (*left, *right):
        if not any(_same(value, seen) for seen in out):
            out.append(value)
    return out


def _text(value: Any) -> str:  # noqa: ANN401
    """An item as text. An object or list has none: its repr would carry record content into a resource."""
    if isinstance(value, dict | list):
        return ""
    if isinstance(value, Moment):
        return value.fhir
    if type(value) is bool:
        return "true" if value else "false"
    return str(value)


def _plus(left: Collection, right: Collection) -> Collection:
    if len(left) != 1 or len(right) != 1:
        return []
    a, b = left[0], right[0]
    if type(a) is str and type(b) is str:
        return [a + b]
    if type(a) in _NUMBERS or type(b) in _NUMBERS:
        # A number and numeric text add as numbers (a record's numbers read as text), as '-' does.
        return _arith(left, right, lambda x, y: x + y)
    if isinstance(a, Moment | str) and isinstance(b, Moment | str):
        return [_text(a) + _text(b)]
    return []


def _concat(left: Collection, right: Collection) -> Collection:
    # `&` treats an absent side as '' (FHIRPath's string concatenation); nothing at all stays absent.
    joined = "".join(_text(v) for v in left[:1]) + "".join(_text(v) for v in right[:1])
    return [joined] if joined else []


def _arith(left: Collection, right: Collection, op: Any) -> Collection:  # noqa: ANN401
    if len(left) != 1 or len(right) != 1:
        return []
    a, b = _decimal(left[0]), _decimal(right[0])
    if a is None or b is None:
        return []
    try:
        result = op(a, b)
    except (ZeroDivisionError, OverflowError, ValueError):
        return []
    return [result] if not isinstance(result, float) or math.isfinite(result) else []


def _minus(left: Collection, right: Collection) -> Collection:
    return _arith(left, right, lambda a, b: a - b)


def _times(left: Collection, right: Collection) -> Collection:
    return _arith(left, right, lambda a, b: a * b)


def _divide(left: Collection, right: Collection) -> Collection:
    return _arith(left, right, lambda a, b: a / b)


def _div(left: Collection, right: Collection) -> Collection:
    return _arith(left, right, lambda a, b: int(a // b))


def _mod(left: Collection, right: Collection) -> Collection:
    return _arith(left, right, lambda a, b: a % b)


def _negate(collection: Collection) -> Collection:
    return _arith([0], collection, lambda a, b: a - b)


def _in(left: Collection, right: Collection) -> Collection:
    if len(left) != 1:
        return []
    value = left[0]
    if type(value) is str and value in right:  # the usual case: a code among codes (text equals as _same)
        return [True]
    return [any(_same(value, v) for v in right)]


def _contains_op(left: Collection, right: Collection) -> Collection:
    return _in(right, left)


def _and(left: Collection, right: Collection) -> Collection:
    a, b = _boolean(left), _boolean(right)
    if a is False or b is False:
        return [False]
    return [True] if a and b else []


def _or(left: Collection, right: Collection) -> Collection:
    a, b = _boolean(left), _boolean(right)
    if a or b:
        return [True]
    return [False] if a is False and b is False else []


def _xor(left: Collection, right: Collection) -> Collection:
    a, b = _boolean(left), _boolean(right)
    return [] if a is None or b is None else [a != b]


def _implies(left: Collection, right: Collection) -> Collection:
    a, b = _boolean(left), _boolean(right)
    if a is False or b is True:
        return [True]
    return [False] if a is True and b is False else []


# -- functions ----------------------------------------------------------------------------------------


def f_empty(c: Collection) -> Collection:
    return [not c]


def f_exists(c: Collection, criteria: Any = None) -> Collection:  # noqa: ANN401
    if criteria is None:
        return [bool(c)]
    return [any(truth(criteria(item)) for item in c)]


def f_hasValue(c: Collection) -> Collection:  # noqa: N802  (FHIRPath's name)
    return [len(c) == 1]


def f_not(c: Collection) -> Collection:
    value = _boolean(c)
    return [] if value is None else [not value]


def f_count(c: Collection) -> Collection:
    return [len(c)]


def f_first(c: Collection) -> Collection:
    return c[:1]


def f_last(c: Collection) -> Collection:
    return c[-1:]


def f_tail(c: Collection) -> Collection:
    return c[1:]


def f_single(c: Collection) -> Collection:
    return c if len(c) == 1 else []


def f_distinct(c: Collection) -> Collection:
    return _union(c, [])


def f_where(c: Collection, criteria: Any) -> Collection:  # noqa: ANN401
    return [item for item in c if truth(criteria(item))]


def f_select(c: Collection, projection: Any) -> Collection:  # noqa: ANN401
    out: Collection = []
    for item in c:
        out.extend(projection(item))
    return out


def f_all(c: Collection, criteria: Any) -> Collection:  # noqa: ANN401
    return [all(truth(criteria(item)) for item in c)]


def _strings(c: Collection) -> str | None:
    """The one item as text; None for several, none, or an object (whose text would be its repr: record
    content where no one asked for it)."""
    if len(c) != 1:
        return None
    value = c[0]
    if type(value) is str:
        return value
    return None if isinstance(value, dict | list) else _text(value)


def f_lower(c: Collection) -> Collection:
    if len(c) == 1 and type(c[0]) is str:  # the usual case
        return [c[0].lower()]
    value = _strings(c)
    return [] if value is None else [value.lower()]


def f_upper(c: Collection) -> Collection:
    value = _strings(c)
    return [] if value is None else [value.upper()]


def f_trim(c: Collection) -> Collection:
    value = _strings(c)
    value = value.strip() if value is not None else None
    return [value] if value else []


def f_length(c: Collection) -> Collection:
    value = _strings(c)
    return [] if value is None else [len(value)]


def f_startsWith(c: Collection, prefix: Collection) -> Collection:  # noqa: N802
    value, other = _strings(c), _strings(prefix)
    return [] if value is None or other is None else [value.startswith(other)]


def f_endsWith(c: Collection, suffix: Collection) -> Collection:  # noqa: N802
    value, other = _strings(c), _strings(suffix)
    return [] if value is None or other is None else [value.endswith(other)]


def f_contains(c: Collection, part: Collection) -> Collection:
    value, other = _strings(c), _strings(part)
    return [] if value is None or other is None else [other in value]


def f_indexOf(c: Collection, part: Collection) -> Collection:  # noqa: N802
    value, other = _strings(c), _strings(part)
    return [] if value is None or other is None else [value.find(other)]


def f_replace(c: Collection, old: Collection, new: Collection) -> Collection:
    value, a, b = _strings(c), _strings(old), _strings(new) or ""
    if value is None or a is None:
        return []
    result = value.replace(a, b)
    return [result] if result else []


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except (re.error, OverflowError, RecursionError, ValueError):  # a pattern is data: never raise
        return None


def f_matches(c: Collection, pattern: Collection) -> Collection:
    value, text = _strings(c), _strings(pattern)
    regex = _regex(text) if text is not None else None
    return [] if value is None or regex is None else [regex.search(value) is not None]


def text_contains(c: Collection, part: str) -> bool:
    """`x.contains('part')` as a condition: the one text read directly, anything else as f_contains and
    truth() answer it."""
    if len(c) == 1 and type(value := c[0]) is str:
        return part in value
    return truth(f_contains(c, [part]))


def text_matches(c: Collection, pattern: str, *, negated: bool = False) -> bool:
    """`x.matches('pattern')` as a condition, or with `negated` `x.matches('pattern').not()`: the one text
    searched directly, anything else as f_matches with truth() or is_false() answers it."""
    if len(c) == 1 and type(value := c[0]) is str:
        regex = _regex(pattern)
        return regex is not None and (regex.search(value) is None) is negated
    return is_false(f_matches(c, [pattern])) if negated else truth(f_matches(c, [pattern]))


def f_replaceMatches(c: Collection, pattern: Collection, substitution: Collection) -> Collection:  # noqa: N802
    value, text = _strings(c), _strings(pattern)
    regex = _regex(text) if text is not None else None
    if value is None or regex is None:
        return []
    result = regex.sub((_strings(substitution) or "").replace("\\", "\\\\"), value)
    return [result] if result else []


def f_substring(c: Collection, start: Collection, length: Collection | None = None) -> Collection:
    value = _strings(c)
    if value is None or len(start) != 1 or type(start[0]) is not int or not 0 <= start[0] < len(value):
        return []
    begin = start[0]
    if length is None:
        return [value[begin:]]
    if len(length) != 1 or type(length[0]) is not int:
        return []
    part = value[begin : begin + max(length[0], 0)]
    return [part] if part else []


def f_split(c: Collection, separator: Collection) -> Collection:
    """The pieces between separators; empty pieces are left out (empty means absent)."""
    value, sep = _strings(c), _strings(separator)
    if value is None or not sep:
        return []
    return [piece.strip() for piece in value.split(sep) if piece.strip()]


def f_join(c: Collection, separator: Collection | None = None) -> Collection:
    sep = _strings(separator) if separator else ""
    joined = (sep or "").join(_text(v) for v in c)
    return [joined] if joined else []


def f_toString(c: Collection) -> Collection:  # noqa: N802
    value = _strings(c)
    return [] if value is None else [value]


def _decimal(value: Any) -> int | float | None:  # noqa: ANN401
    """A number, or the number a text spells: int when written as an integer, so "70" stays 70; None
    for anything else (including NaN and infinities, which FHIR decimals cannot carry)."""
    kind = type(value)
    if kind is bool:
        return None
    if kind is int:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is not str:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number


def f_toDecimal(c: Collection) -> Collection:  # noqa: N802
    number = _decimal(c[0]) if len(c) == 1 else None
    return [] if number is None else [number]


def f_convertsToDecimal(c: Collection) -> Collection:  # noqa: N802
    return [len(c) == 1 and _decimal(c[0]) is not None]


def f_toInteger(c: Collection) -> Collection:  # noqa: N802
    number = _decimal(c[0]) if len(c) == 1 else None
    return [number] if type(number) is int else []


def f_convertsToInteger(c: Collection) -> Collection:  # noqa: N802
    return [bool(f_toInteger(c))]


# A message's dates are read several times (checked, compared, written): parsed once, kept by text (Moments
# are immutable). A plain table, emptied when full: a feed's times differ on every message, and an LRU's
# bookkeeping on each of those misses cost more than the rare re-parse after emptying.
_MOMENTS: dict[str, Moment | None] = {}
_MOMENTS_LIMIT = 4096
_UNSEEN = object()


def _moment(value: str) -> Moment | None:
    if len(_MOMENTS) >= _MOMENTS_LIMIT:
        _MOMENTS.clear()
    found = _MOMENTS[value] = parse_moment(value)
    return found


def f_toDateTime(c: Collection) -> Collection:  # noqa: N802
    if len(c) != 1:
        return []
    value = c[0]
    if type(value) is str:
        moment = _MOMENTS.get(value, _UNSEEN)
        if moment is _UNSEEN:
            moment = _moment(value)
    else:
        moment = value if isinstance(value, Moment) else None
    return [] if moment is None else [moment]


def f_convertsToDateTime(c: Collection) -> Collection:  # noqa: N802
    return [bool(f_toDateTime(c))]


def f_toDate(c: Collection) -> Collection:  # noqa: N802
    moment = f_toDateTime(c)
    return [moment[0].date] if moment else []


def f_toInstant(c: Collection) -> Collection:  # noqa: N802
    moment = f_toDateTime(c)
    instant = moment[0].to_instant() if moment else None
    return [] if instant is None else [instant]


def f_hashKey(*parts: Collection) -> Collection:  # noqa: N802
    """A stable identifier value for a row with no identifier of its own: the SHA-256 of the parts (empty
    ones as ''), so a redelivered row lands on the resource it wrote, and no value appears in it."""
    joined = "\x1f".join((p[0] if type(p[0]) is str else _text(p[0])) if p else "" for p in parts)
    return [hashlib.sha256(joined.encode()).hexdigest()[:40]]


# Values a token and a URL carry as they are (ids, UUIDs, most codes): no escaping or quoting needed.
_PLAIN = re.compile(r"[A-Za-z0-9._~:/-]+")


@lru_cache(maxsize=1024)
def _reference_prefix(resource_type: str, system: str) -> str | None:
    """`Type?identifier=system|` for a system written as it is (the usual one), else None."""
    if _PLAIN.fullmatch(system) is None:
        return None
    return f"{resource_type}?identifier=" + encoded_token(system, "", keep=_REFERENCE_SAFE)


def f_reference(resource_type: Collection, system: Collection, value: Collection) -> Collection:
    """A conditional reference by business identifier, `Type?identifier=system|value`: the store resolves
    it when it writes the entry. Empty when the value is."""
    if not (
        len(resource_type) == len(system) == len(value) == 1
        and type(rtype := resource_type[0]) is str
        and type(system_text := system[0]) is str
        and type(value_text := value[0]) is str
    ):  # anything but the usual three texts
        rtype, system_text, value_text = _strings(resource_type), _strings(system), _strings(value)
    if not rtype or not system_text or not value_text:
        return []
    prefix = _reference_prefix(rtype, system_text)  # worked out once per type and system
    if prefix is not None and _PLAIN.fullmatch(value_text):
        return [{"reference": prefix + value_text}]
    return [{"reference": f"{rtype}?identifier={encoded_token(system_text, value_text, keep=_REFERENCE_SAFE)}"}]


def f_padLeft(c: Collection, width: Collection, fill: Collection) -> Collection:  # noqa: N802
    value, pad = _strings(c), _strings(fill)
    if value is None or not pad or len(width) != 1 or type(width[0]) is not int:
        return []
    return [value.rjust(width[0], pad[0])]


# Verhoeff's check digit (dihedral group D5): the multiplication table, and the permutation applied to a
# digit by its position from the right.
_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 0, 6, 7, 8, 9, 5), (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7), (4, 0, 1, 2, 3, 9, 5, 6, 7, 8), (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2), (7, 6, 5, 9, 8, 2, 1, 0, 4, 3), (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)  # fmt: skip
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 5, 7, 6, 2, 8, 3, 0, 9, 4), (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7), (9, 4, 5, 3, 1, 2, 6, 8, 7, 0), (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5), (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)  # fmt: skip


def f_verhoeff(c: Collection) -> Collection:
    """True when the one item is digits whose last is their Verhoeff check digit (SNOMED CT identifiers carry
    one), false for other text; empty for none or several."""
    value = _strings(c)
    if value is None:
        return []
    if not (value.isascii() and value.isdigit()):
        return [False]
    check = 0
    for position, digit in enumerate(reversed(value)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[position % 8][int(digit)]]
    return [check == 0]


# -- what compiled templates call ---------------------------------------------------------------------


class SeveralValues(ValueError):  # noqa: N818  (a data condition, reported as a mapping error)
    """An expression gave several values where the element takes one; `path_id` indexes the template's
    element paths."""

    def __init__(self, path_id: int, count: int) -> None:
        super().__init__(f"{count} values")
        self.path_id = path_id
        self.count = count


class Placeholder(ValueError):  # noqa: N818  (a data condition, reported as a US Core rule)
    """A record value that is a placeholder for missing data ("N/A"), about to be written at `path_id`."""

    def __init__(self, path_id: int) -> None:
        super().__init__("placeholder")
        self.path_id = path_id


# The original sample's filler for missing data. "Na", "Null" and "None" are real names (only empty values
# mean absent), so they are not placeholders.
PLACEHOLDERS = frozenset({"N/A"})


def rt_one(values: Collection, path_id: int) -> Any:  # noqa: ANN401
    """The one value an element takes. Values are never empty here (expressions drop empty text), so the
    only thing US Core's no-empty-values rule can still catch is a placeholder."""
    if len(values) != 1:
        raise SeveralValues(path_id, len(values))
    value = values[0]
    kind = type(value)
    if kind is str:
        if len(value) <= 4 and value.upper() in PLACEHOLDERS:
            raise Placeholder(path_id)
        return value
    if kind is dict or kind is list:
        # A copy: the object may be the record's own, or a terminology file's, and resources are changed later.
        return _copy(value)
    return value.fhir if kind is Moment else value


_FLAT = frozenset({str, int, float, bool, type(None)})


def _copy(value: Any) -> Any:  # noqa: ANN401
    kind = type(value)
    if kind is dict:
        if _FLAT.issuperset(map(type, value.values())):  # a coding: one C-level copy
            return value.copy()
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    return value


def rt_out(values: Collection, path_id: int) -> Collection:
    out: Collection = []
    for value in values:
        if type(value) is str and len(value) > 4:  # the usual item, as rt_one would give it
            out.append(value)
        elif value != "":
            out.append(rt_one([value], path_id))
    return out


# What an expression gives that is no value to write: one empty text.
NO_TEXT = [""]


def rt_interpolate(*parts: Any) -> Collection:  # noqa: ANN401
    """Text with `{{ }}` inside: the parts joined, or nothing when an expression gave nothing."""
    pieces = []
    for part in parts:
        if type(part) is str:
            pieces.append(part)
        elif len(part) == 1:
            pieces.append(_text(part[0]))
        else:
            return []
    return ["".join(pieces)]


# Each table of memo() holds at most this many values; a full one starts again (a day's codes refill it).
MEMO_LIMIT = 4096
_MEMO: dict[tuple[str, Any], Collection] = {}  # for expressions compiled without terminology


def memo(tx: Any, key: str, c: Collection, compute: Callable[[Collection], Collection]) -> Collection:  # noqa: ANN401
    """compute(c), worked out once per text: fhirpath compiles an expression whose only input is one read
    of the record, and which calls terminology or a regex, to this (`key` is its source). Its values are
    shared between messages, which is safe because nothing changes a collection in place (templates copy
    what they write: rt_one). Anything but one text is computed each time."""
    if len(c) == 1 and type(text := c[0]) is str:
        return _memoised(tx, (key, text), compute, c)
    return compute(c)


def _memoised(tx: Any, key: tuple[str, Any], compute: Callable[[Any], Collection], arg: Any) -> Collection:  # noqa: ANN401
    """compute(arg) from the memo table, worked out and kept when it is not there yet."""
    table = tx.memo if tx is not None else _MEMO
    found = table.get(key)
    if found is None:
        if len(table) >= MEMO_LIMIT:
            table.clear()
        found = table[key] = compute(arg)
    return found


_TEXT_OR_NONE = frozenset({str, type(None)})
_TEXT_NONE_OR_LIST = frozenset({str, type(None), list})


def memo_item(tx: Any, key: str, item: Any, names: tuple[str, ...], compute: Callable[[Any], Collection]) -> Collection:  # noqa: ANN401, E501
    """compute(item), worked out once per combination of the item's `names` values (as the record holds
    them) when each is text or absent: fhirpath compiles an expression of many calls over a few fields of
    one item to this. Anything else is computed each time."""
    values = _memo_key(tuple(map(item.get, names))) if type(item) is dict else None
    if values is None:
        return compute(item)
    return _memoised(tx, (key, values), compute, item)


def _memo_key(values: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The values as a key when each is text, absent, or a list of text (given names): else None."""
    kinds = set(map(type, values))
    if kinds <= _TEXT_OR_NONE:
        return values
    if not kinds <= _TEXT_NONE_OR_LIST:
        return None
    key = []
    for value in values:
        if type(value) is list:
            if not _TEXT_OR_NONE.issuperset(map(type, value)):
                return None
            value = tuple(value)
        key.append(value)
    return tuple(key)


def path_order(path: str) -> tuple[int, str]:
    """Paths in an order that reads each one's prefix before it."""
    return path.count("."), path


def read_fields(record: dict[str, Any], names: Iterable[str], paths: Iterable[str] = ()) -> dict[str, Collection]:
    """The record's fields (and paths below them) a mapping reads, each read once per message."""
    fields = {name: get(record, name) for name in names}
    for path in sorted(paths, key=path_order):
        parent, _, name = path.rpartition(".")
        fields[path] = nav(fields[parent], name)
    return fields


# What generated code sees as globals: every function of this module, by name.
NAMESPACE: dict[str, Any] = {}


NAMESPACE.update({name: value for name, value in globals().items() if callable(value) and not isinstance(value, type)})
NAMESPACE["NO_TEXT"] = NO_TEXT
NAMESPACE["OBJECTS"] = _OBJECTS
NAMESPACE["FLAT"] = _FLAT
NAMESPACE["TEXTS"] = _TEXT
NAMESPACE["PLACEHOLDERS"] = PLACEHOLDERS
