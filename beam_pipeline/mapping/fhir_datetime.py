"""One date/time parser for every mapping: source text -> a FHIR R4 dateTime, its instant, and an order.

Feeds send dates and ISO date-times in many shapes (no seconds, no zone, nine fraction digits); FHIR takes
fewer, and a value the store rejects loses the whole message. So every part is checked (a real calendar day,
hours to 23, seconds to 60, offsets within +-14:00), and what FHIR cannot say is dropped rather than guessed:
a time without a zone keeps only its date. Pure: no clock, no I/O, no exceptions for any text.

Speed on this machine: "YYYY-MM-DD" about 0.45 µs a call; a full date-time with "Z" or an offset about 1.0;
one the general parse takes (no seconds, a fraction, a leap second) about 1.5.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import NamedTuple

# The FHIR R4 (4.0.1) regular expressions for date, dateTime and instant, as the datatypes page gives them;
# match them with fullmatch. R5 bounds the fraction to 1-9 digits and loosens the dateTime zone; R4 is what
# the store speaks. They check shape, not the calendar: 2020-02-30 matches, and FHIR still forbids it.
FHIR_DATE = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?"
)
FHIR_DATE_TIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?"
)
FHIR_INSTANT = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
)

# Everything the input may be, every range checked here but the length of a month: [0-9] and not \d, which
# would let other scripts' digits through to the FHIR store. Group 1 is the seconds (with any fraction),
# group 2 the zone. Seconds are optional and fractions capped at nine digits, unlike FHIR R4: feeds send
# "hh:mm", and more digits than nanoseconds would be precision nobody measured.
_match_moment = re.compile(
    r"(?!0000)[0-9]{4}(?:-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[12][0-9]|3[01])"
    r"(?:T(?:[01][0-9]|2[0-3]):[0-5][0-9](:(?:[0-5][0-9]|60)(?:\.[0-9]{1,9})?)?"
    r"(Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))?)?)?)?"
).fullmatch


# The usual date-time in full, "YYYY-MM-DDThh:mm:ss" and a zone: _match_moment's ranges without its optional
# parts (a leap second, :60, takes the general path, which moves it to an instant Python can hold).
_seconds_and_zone = re.compile(
    r"(?!0000)[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(?:Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
).fullmatch


class Moment(NamedTuple):
    """A parsed date or date-time: the text FHIR takes, the date as the source gave it, and, only when the
    source pinned a time to a zone, the instant it names. Compare with before(), never with the strings.
    A named tuple: immutable like a frozen dataclass, made in half the time (every date of every message)."""

    fhir: str
    date: str
    instant: datetime | None

    def before(self, other: Moment) -> bool:
        """Whether self is strictly earlier: by instant when both have one, else by date at the coarser of
        the two precisions, since a bare date (or month, or year) covers every moment in it."""
        if self.instant is not None and other.instant is not None:
            return self.instant < other.instant
        n = min(len(self.date), len(other.date))
        return self.date[:n] < other.date[:n]

    def to_instant(self) -> str | None:
        """The FHIR instant, or None: an instant needs a time and a zone, and only those Moments have one."""
        return self.fhir if self.instant is not None else None


def parse_moment(value: str, *, partial: bool = False) -> Moment | None:
    """A Moment, or None unless the text is a real date or date-time; partial admits "YYYY" and "YYYY-MM",
    which a birth date may be but an encounter's start may not.

    Python's datetime has no second 60, so a leap second's instant is hh:mm:59.999999: after every instant
    of second 59 but its last microsecond, and before the next minute. Fractions past six digits are cut,
    not rounded, so an instant never moves into the next second.
    """
    # Fast path, most values: the positions of the dashes leave date.fromisoformat only YYYY-MM-DD to
    # accept, and it takes ASCII digits alone and checks the calendar (year 0000 included).
    if len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            date.fromisoformat(value)
        except ValueError:
            return None
        return Moment(value, value, None)
    if len(value) in (20, 25) and _seconds_and_zone(value) is not None:
        # The usual date-time, to the second with its zone: nothing to add or drop, only the calendar to check.
        try:
            return Moment(value, value[:10], datetime.fromisoformat(value))
        except ValueError:
            return None
    return _parse(value, partial=partial)


def _parse(value: str, *, partial: bool) -> Moment | None:
    """parse_moment for any text (its fast paths answer as this does: the unit tests hold them to it)."""
    match = _match_moment(value)
    if match is None:
        return None
    if len(value) < 10:  # YYYY or YYYY-MM; the pattern has checked the year and the month
        return Moment(value, value, None) if partial else None
    seconds, zone = match.groups()
    day = value[:10]
    if zone is None:
        # FHIR wants a zone once there is a time, and without one only the date is certain.
        try:
            date.fromisoformat(day)
        except ValueError:
            return None
        return Moment(day, day, None)
    fhir = value if seconds else f"{value[:16]}:00{zone}"
    clock = f"{value[:17]}59.999999{zone}" if seconds and seconds[1:3] == "60" else fhir
    try:
        instant = datetime.fromisoformat(clock)  # the pattern has checked all but the length of the month
    except ValueError:
        return None
    return Moment(fhir, day, instant)
