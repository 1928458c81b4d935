"""The one date/time parser: FHIR's own grammar in, FHIR-valid text out, every part real, any text safe."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from beam_pipeline.mapping.fhir_datetime import FHIR_DATE, FHIR_DATE_TIME, FHIR_INSTANT, Moment, _parse, parse_moment

DIGITS = "0123456789"
zones = st.one_of(
    st.just("Z"),
    st.just("+14:00"),
    st.just("-14:00"),
    st.builds("{}{:02d}:{:02d}".format, st.sampled_from("+-"), st.integers(0, 13), st.integers(0, 59)),
)
fractions = st.text(DIGITS, min_size=1, max_size=9).map(".{}".format)


@st.composite
def fhir_date_times(draw: st.DrawFn, seconds: bool = True) -> tuple[str, str | None]:
    """A valid FHIR dateTime at any precision (year to fraction of a second, leap second included) and its
    zone; with seconds=False, an ISO "hh:mm" time with a zone, which FHIR lacks and feeds send."""
    day = draw(st.dates(min_value=date(1, 1, 1)))
    text = f"{day.year:04d}-{day.month:02d}-{day.day:02d}"
    if seconds:
        precision = draw(st.sampled_from(["year", "month", "day", "time"]))
        if precision != "time":
            return text[: {"year": 4, "month": 7, "day": 10}[precision]], None
    zone = draw(zones)
    clock = f"{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}"
    if seconds:
        clock += f":{draw(st.integers(0, 60)):02d}{draw(st.none() | fractions) or ''}"
    return f"{text}T{clock}{zone}", zone


def _check_fhir(value: str, zone: str | None) -> Moment:
    moment = parse_moment(value, partial=True)
    assert moment is not None
    assert FHIR_DATE_TIME.fullmatch(moment.fhir)
    if zone is None:
        assert moment.instant is None and moment.to_instant() is None
    else:
        assert FHIR_INSTANT.fullmatch(moment.to_instant())
        assert moment.instant.tzinfo is not None and moment.fhir.endswith(zone)
    again = parse_moment(moment.fhir, partial=True)
    assert again is not None and again.fhir == moment.fhir
    return moment


@given(fhir_date_times())
@example(("2016-12-31T23:59:60.999999999+14:00", "+14:00"))
@example(("0001-01-01T00:00:00-14:00", "-14:00"))
def test_a_fhir_date_time_comes_out_as_it_went_in(case):
    value, zone = case
    assert _check_fhir(value, zone).fhir == value


@given(fhir_date_times(seconds=False))
def test_a_time_without_seconds_gets_them(case):
    value, zone = case
    assert _check_fhir(value, zone).fhir == f"{value[:16]}:00{zone}"


@given(st.from_regex(FHIR_DATE_TIME, fullmatch=True))
def test_what_the_fhir_grammar_allows_is_taken_unless_the_calendar_or_precision_says_no(value):
    # The grammar checks shape only: 2019-02-29 matches it, and FHIR forbids it; more than nine fraction
    # digits match it too, and this parser refuses them.
    real = True
    if len(value) >= 10:
        try:
            date.fromisoformat(value[:10])
        except ValueError:
            real = False
    fraction = value.partition(".")[2].rstrip("Z").split("+")[0].split("-")[0]
    moment = parse_moment(value, partial=True)
    if real and len(fraction) <= 9:
        assert moment is not None and moment.fhir == value
    else:
        assert moment is None


@given(st.text(), st.booleans())
@example("٢٠٢٠-٠١-٠١", False)  # Arabic-Indic digits: \d and int() take them, FHIR does not
@example("2020-01-01\n", False)
@example("2020-01-01T10:00:00Z\n", False)
@example("\ud800020-01-01", False)
def test_any_text_gives_a_fhir_date_time_or_none_and_never_raises(value, partial):
    moment = parse_moment(value, partial=partial)
    assert moment is None or FHIR_DATE_TIME.fullmatch(moment.fhir)


near_dates = st.text("0123456789-T:Z+.", min_size=4, max_size=30)


@given(near_dates, st.booleans())
def test_text_near_a_date_gives_a_fhir_date_time_or_none(value, partial):
    moment = parse_moment(value, partial=partial)
    assert moment is None or FHIR_DATE_TIME.fullmatch(moment.fhir)


@given(st.text("0123456789-", min_size=10, max_size=10) | st.dates().map(str))
def test_the_fast_path_for_plain_dates_agrees_with_the_grammar_and_the_calendar(value):
    try:
        real = FHIR_DATE.fullmatch(value) is not None and date.fromisoformat(value) is not None
    except ValueError:
        real = False
    moment = parse_moment(value)
    assert (moment is not None) == real
    if moment is not None:
        assert moment == Moment(value, value, None)


@given(fhir_date_times() | fhir_date_times(seconds=False), fhir_date_times() | fhir_date_times(seconds=False))
def test_before_is_a_strict_order_on_instants_and_never_both_ways(a, b):
    first, second = parse_moment(a[0], partial=True), parse_moment(b[0], partial=True)
    assert not (first.before(second) and second.before(first))
    assert not first.before(first)
    if first.instant is not None and second.instant is not None:
        assert first.before(second) == (first.instant < second.instant)


# -- examples ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fhir"),
    [
        ("2020-01-01T08:51Z", "2020-01-01T08:51:00Z"),  # the clinical parser passed this through
        ("2020-01-01T08:51+05:30", "2020-01-01T08:51:00+05:30"),
        ("2020-01-01T08:51:37Z", "2020-01-01T08:51:37Z"),
        ("2020-01-01T08:51:37-00:00", "2020-01-01T08:51:37-00:00"),
        ("2020-01-01T08:51:37.123456789+14:00", "2020-01-01T08:51:37.123456789+14:00"),
        ("2020-01-01T08:51:37.1-14:00", "2020-01-01T08:51:37.1-14:00"),
        ("2020-01-01T08:51:37+13:59", "2020-01-01T08:51:37+13:59"),
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:60Z"),
        ("2020-02-29", "2020-02-29"),
        ("0001-01-01", "0001-01-01"),
        ("9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59-14:00"),
        # A time without a zone: only the date is certain.
        ("2020-01-01T10:00:00", "2020-01-01"),
        ("2020-01-01T10:00", "2020-01-01"),
        ("2020-01-01T10:00:00.5", "2020-01-01"),
    ],
)
def test_valid_values_and_their_fhir_form(value, fhir):
    moment = parse_moment(value)
    assert moment is not None
    assert (moment.fhir, moment.date) == (fhir, value[:10])


@pytest.mark.parametrize(
    "value",
    [
        "2020-02-30", "2019-02-29", "2020-04-31", "2020-13-01", "2020-00-10", "2020-01-00", "2020-01-32",
        "0000-01-01", "0000-01-01T00:00Z",
        "2020-02-30T10:00Z", "2020-02-30T10:00",  # a bad date stays bad with a time, zone or not
        "2020-01-01T24:00Z", "2020-01-01T23:60Z", "2020-01-01T10:00:61Z", "2020-01-01T24:00",
        "2020-01-01T23:60", "2020-01-01T10:00:61",  # a bad time is bad without a zone too
        "2020-01-01T10:00+14:01", "2020-01-01T10:00-14:30", "2020-01-01T10:00+15:00", "2020-01-01T10:00+05:60",
        "2020-01-01T10:00:00.1234567890Z", "2020-01-01T10:00:00.Z", "2020-01-01T10Z", "2020-01-01T10:00:0Z",
        "2020-01-01Z", "2020-01-01+01:00", "2020-01Z", "2020-01-01T", "2020-01-01T10:00+0100", "2020-01-01T10:00+01",
        "2020-01-01 10:00:00Z", "2020-01-01t10:00:00z", "2020-01-01T10:00:00z", "20200101", "2020-1-1",
        "2020-W01-1", "+2020-01-01", "02020-01-01", " 2020-01-01", "2020-01-01 ", "2020-01-01\n", "",
        "٢٠٢٠-٠١-٠١", "٢٠٢٠-01-01T10:00Z", "2020-01-01T1٠:00", "2020-01-01T10:00:00+05:30\n",
    ],
)  # fmt: skip
def test_invalid_values_give_none(value):
    assert parse_moment(value) is None
    assert parse_moment(value, partial=True) is None


@pytest.mark.parametrize("value", ["2020", "2020-01", "2020-12", "0001", "9999-12"])
def test_a_year_or_month_only_when_partial(value):
    assert parse_moment(value) is None
    assert parse_moment(value, partial=True) == Moment(value, value, None)


@pytest.mark.parametrize("value", ["0000", "0000-01", "2020-13", "2020-00", "2020-1", "202", "20201"])
def test_a_bad_year_or_month_is_none_even_when_partial(value):
    assert parse_moment(value, partial=True) is None


def test_the_instant_is_aware_and_only_there_when_a_zone_is_given():
    assert parse_moment("2020-01-01T08:51Z").instant == datetime(2020, 1, 1, 8, 51, tzinfo=UTC)
    east = parse_moment("2020-01-01T08:51:37.123456789+05:30")
    assert east.instant == datetime(2020, 1, 1, 8, 51, 37, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert east.to_instant() == "2020-01-01T08:51:37.123456789+05:30"
    for value in ("2020-01-01", "2020-01-01T08:51:37"):
        assert parse_moment(value).instant is None and parse_moment(value).to_instant() is None


def test_a_leap_second_keeps_its_text_and_sorts_between_second_59_and_the_next_minute():
    leap = parse_moment("2016-12-31T23:59:60Z")
    assert leap.fhir == "2016-12-31T23:59:60Z"
    assert leap.instant == datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert parse_moment("2016-12-31T23:59:59Z").before(leap)
    assert leap.before(parse_moment("2017-01-01T00:00:00Z"))


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ("2020-01-01T08:00Z", "2020-01-01T08:00:01Z"),
        ("2020-01-01T08:00:00.1Z", "2020-01-01T08:00:00.2Z"),
        ("2020-01-01T09:00+02:00", "2020-01-01T08:00Z"),  # 07:00 UTC, though its text reads later
        ("2019-12-31", "2020-01-01T00:00Z"),
        ("2019-12-31T23:00-05:00", "2020-01-01"),  # no instant on one side: the dates as written decide
        ("2020-01-01", "2020-01-02"),
        ("2019", "2020-01-01"),
        ("2020-01", "2020-02-01T00:00Z"),
    ],
)
def test_before(earlier, later):
    a, b = parse_moment(earlier, partial=True), parse_moment(later, partial=True)
    assert a.before(b)
    assert not b.before(a)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("2020-05-01", "2020-05-01T10:00Z"),  # a bare date covers its whole day
        ("2020-05-01", "2020-05-01T00:00:00+14:00"),
        ("2020-05-01T10:00:00", "2020-05-01T09:00Z"),  # no zone: only the date counts
        ("2020", "2020-03-01"),
        ("2020-03", "2020-03-31T23:59:59Z"),
        ("2020-01-01T10:00+02:00", "2020-01-01T08:00Z"),  # the same instant in two zones
        ("2020-01-01T08:00:00Z", "2020-01-01T08:00:00.000-00:00"),
        ("2020-01-01T10:00:00.1234567Z", "2020-01-01T10:00:00.1234568Z"),  # beyond microseconds: equal
    ],
)
def test_neither_is_before_the_other(one, other):
    a, b = parse_moment(one, partial=True), parse_moment(other, partial=True)
    assert not a.before(b)
    assert not b.before(a)


# Date-times of the fast path's length and layout, the ranges just inside and outside each part's bounds.
_TWO = st.sampled_from(["00", "01", "09", "12", "13", "14", "19", "23", "24", "29", "30", "31", "32", "59", "60", "61"])
near_date_times = st.builds(
    lambda y, mo, d, h, mi, s, zone: f"{y}-{mo}-{d}T{h}:{mi}:{s}{zone}",
    st.sampled_from(["0000", "0001", "1987", "2000", "2023", "2024", "9999", "1٩87"]),
    _TWO,
    _TWO,
    _TWO,
    _TWO,
    _TWO,
    st.sampled_from(["Z", "z", "+00:00", "-05:00", "+14:00", "+14:01", "-13:59", "+15:00", "+05:60", "-0500", " 0500"]),
)


@given(near_date_times)
@example("2024-02-29T23:59:59Z")
@example("2023-02-29T23:59:59Z")
@example("2024-06-30T23:59:60+14:00")
def test_the_fast_path_for_full_date_times_answers_as_the_general_parse(value):
    assert parse_moment(value) == _parse(value, partial=False)
    assert parse_moment(value, partial=True) == _parse(value, partial=True)
