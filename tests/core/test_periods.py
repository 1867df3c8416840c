"""recd.core.periods: period syntax, error messages word for word, calendar arithmetic."""

from __future__ import annotations

import calendar
import contextlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recd.core.periods import (
    MAX_MONTHS,
    MAX_SECONDS,
    Period,
    add_period,
    parse_duration,
    parse_period,
)
from recd.errors import InvalidValue

DAY = 86400
HINT = "use s, m, h, d, w, mo, y, ISO 8601 such as P30D, or never"
DURATION_HINT = "use s, m, h, d, w, or ISO 8601 such as PT12H"
FIXED = "this setting takes a fixed length such as 30s, 2m, 6h or 7d"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "months", "seconds"),
    [
        ("0s", 0, 0),
        ("45s", 0, 45),
        ("2m", 0, 120),
        ("6h", 0, 6 * 3600),
        ("30d", 0, 30 * DAY),
        ("2w", 0, 14 * DAY),
        ("3mo", 3, 0),
        ("1 month", 1, 0),
        ("3 months", 3, 0),
        ("12 Months", 12, 0),
        ("1y", 12, 0),
        ("1 year", 12, 0),
        ("7 years", 84, 0),
        ("30 days", 0, 30 * DAY),
        ("1 day", 0, DAY),
        ("90 min", 0, 90 * 60),
        ("10 sec", 0, 10),
        ("1 week", 0, 7 * DAY),
        ("30D", 0, 30 * DAY),
        ("3MO", 3, 0),
        ("  30d\n", 0, 30 * DAY),
        ("30 d", 0, 30 * DAY),
        ("007d", 0, 7 * DAY),
        ("1000y", 12000, 0),
        ("P30D", 0, 30 * DAY),
        ("P3M", 3, 0),
        ("P1Y", 12, 0),
        ("PT12H", 0, 12 * 3600),
        ("PT5M", 0, 300),
        ("PT0S", 0, 0),
        ("P2W", 0, 14 * DAY),
        ("P1Y2M3DT4H5M6S", 14, 3 * DAY + 4 * 3600 + 5 * 60 + 6),
        ("p30d", 0, 30 * DAY),
        ("P1000Y", 12000, 0),
    ],
)
def test_parse_period(text: str, months: int, seconds: int) -> None:
    period = parse_period(text)
    assert (period.months, period.seconds, period.never) == (months, seconds, False)
    assert period.text == text.strip()


@pytest.mark.parametrize("text", ["never", " never ", "Never", "NEVER"])
def test_parse_never(text: str) -> None:
    period = parse_period(text)
    assert period == Period(never=True)
    assert period.text == text.strip()


def test_text_takes_no_part_in_equality() -> None:
    assert parse_period("P1Y") == parse_period("1y") == parse_period("12mo")
    assert parse_period("12 months") == Period(months=12, text="anything")
    assert parse_period("P1Y").text == "P1Y"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", f"no period given ({HINT})"),
        ("   ", f"no period given ({HINT})"),
        ("abc", f'not a period: "abc" ({HINT})'),
        ("3d4h", f'not a period: "3d4h" ({HINT})'),
        ("forever", f'not a period: "forever" ({HINT})'),
        ("+3d", f'not a period: "+3d" ({HINT})'),
        ("3mon", f'unknown unit "mon" in "3mon" ({HINT})'),
        ("3 fortnights", f'unknown unit "fortnights" in "3 fortnights" ({HINT})'),
        ("30", f'missing unit in "30" ({HINT})'),
        ("3M", 'ambiguous unit "M" in "3M" (use m for minutes or mo for months)'),
        ("-3d", 'negative period: "-3d" (a period counts forward from the call)'),
        ("1.5d", 'whole numbers only: "1.5d" (use a smaller unit, e.g. 36h for 1.5d)'),
        ("1,5d", 'whole numbers only: "1,5d" (use a smaller unit, e.g. 36h for 1.5d)'),
        ("1001y", 'period too long: "1001y" (at most 1000 years)'),
        ("12001mo", 'period too long: "12001mo" (at most 1000 years)'),
        ("400000d", 'period too long: "400000d" (at most 1000 years)'),
        ("1" + "0" * 40 + "s", f'period too long: "1{"0" * 40}s" (at most 1000 years)'),
        ("P1001Y", 'period too long: "P1001Y" (at most 1000 years)'),
        (
            "P99999999999999999999D",
            'period too long: "P99999999999999999999D" (at most 1000 years)',
        ),
        (
            "P",
            'not an ISO 8601 duration: "P" (such as P30D, P3M, P1Y or PT12H; whole numbers only)',
        ),
        (
            "PT",
            'not an ISO 8601 duration: "PT" (such as P30D, P3M, P1Y or PT12H; whole numbers only)',
        ),
        (
            "P3X",
            'not an ISO 8601 duration: "P3X" (such as P30D, P3M, P1Y or PT12H; whole numbers only)',
        ),
        (
            "P1DT",
            'not an ISO 8601 duration: "P1DT" (such as P30D, P3M, P1Y or PT12H; '
            "whole numbers only)",
        ),
        (
            "PT0.5S",
            'not an ISO 8601 duration: "PT0.5S" (such as P30D, P3M, P1Y or PT12H; '
            "whole numbers only)",
        ),
        ("Permanent", f'not a period: "Permanent" ({HINT})'),
    ],
)
def test_parse_period_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_period(text)
    assert str(excinfo.value) == message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0s", timedelta(0)),
        ("30s", timedelta(seconds=30)),
        ("2m", timedelta(minutes=2)),
        ("6h", timedelta(hours=6)),
        ("7d", timedelta(days=7)),
        ("1w", timedelta(weeks=1)),
        ("PT12H", timedelta(hours=12)),
        ("P1DT1S", timedelta(days=1, seconds=1)),
        (" 5 minutes ", timedelta(minutes=5)),
        ("0mo", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3mo", f'"3mo" is a calendar period; {FIXED}'),
        ("1 year", f'"1 year" is a calendar period; {FIXED}'),
        ("P3M", f'"P3M" is a calendar period; {FIXED}'),
        ("P1YT1H", f'"P1YT1H" is a calendar period; {FIXED}'),
        (" never ", f'"never" is not a fixed length; {FIXED}'),
        ("6x", f'unknown unit "x" in "6x" ({DURATION_HINT})'),
        ("soon", f'not a period: "soon" ({DURATION_HINT})'),
        ("", f"no period given ({DURATION_HINT})"),
        ("60", f'missing unit in "60" ({DURATION_HINT})'),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidValue) as excinfo:
        parse_duration(text)
    assert str(excinfo.value) == message


@pytest.mark.parametrize(
    ("start", "text", "deadline"),
    [
        (utc(2023, 11, 30), "3mo", utc(2024, 2, 29)),  # leap year
        (utc(2022, 11, 30), "3mo", utc(2023, 2, 28)),
        (utc(2024, 1, 31), "1mo", utc(2024, 2, 29)),
        (utc(2023, 1, 31), "1mo", utc(2023, 2, 28)),
        (utc(2023, 8, 31), "1mo", utc(2023, 9, 30)),
        (utc(2023, 12, 15, 10, 30), "1mo", utc(2024, 1, 15, 10, 30)),
        (utc(2024, 2, 29), "1y", utc(2025, 2, 28)),
        (utc(2024, 2, 29), "4y", utc(2028, 2, 29)),
        (utc(2023, 1, 31), "P1M1D", utc(2023, 3, 1)),  # months first, then days
        (utc(2023, 3, 1), "30d", utc(2023, 3, 31)),
        (utc(2023, 3, 25, 12), "1d", utc(2023, 3, 26, 12)),  # UTC: no DST day of 23 h
        (utc(2023, 5, 1), "0s", utc(2023, 5, 1)),
        (utc(2023, 5, 1), "PT90S", utc(2023, 5, 1, 0, 1, 30)),
    ],
)
def test_add_period(start: datetime, text: str, deadline: datetime) -> None:
    result = add_period(start, parse_period(text))
    assert result == deadline
    assert result is not None
    assert result.tzinfo is UTC


def test_add_period_never_has_no_deadline() -> None:
    assert add_period(utc(2023, 5, 1), parse_period("never")) is None


def test_add_period_converts_other_zones_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    start = datetime(2023, 1, 31, 1, 0, tzinfo=plus_two)  # 2023-01-30 23:00 UTC
    assert add_period(start, parse_period("1mo")) == utc(2023, 2, 28, 23, 0)


def test_add_period_past_year_9999_is_never() -> None:
    assert add_period(utc(9999, 6, 1), parse_period("1y")) is None
    assert add_period(utc(9999, 12, 31, 23), parse_period("2h")) is None
    assert add_period(utc(9999, 11, 30), parse_period("1mo")) == utc(9999, 12, 30)


def test_add_period_refuses_naive_start() -> None:
    with pytest.raises(ValueError, match=r"^add_period needs a timezone-aware start, got "):
        add_period(datetime(2023, 5, 1), parse_period("1d"))


# --- properties -------------------------------------------------------------------------------

starts = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 12, 31), timezones=st.just(UTC)
)
fixed_units = st.sampled_from([("s", 1), ("m", 60), ("h", 3600), ("d", DAY), ("w", 7 * DAY)])
numbers = st.integers(min_value=0, max_value=5000)
periods = st.one_of(
    st.builds(lambda n, u: f"{n}{u[0]}", numbers, fixed_units),
    st.builds(lambda n: f"{n}mo", numbers),
    st.builds(lambda n: f"{n}y", st.integers(min_value=0, max_value=100)),
    st.builds(
        lambda y, m, d, h: f"P{y}Y{m}M{d}DT{h}H",
        st.integers(0, 50),
        st.integers(0, 50),
        st.integers(0, 500),
        st.integers(0, 500),
    ),
)


@given(starts, periods)
def test_deadline_is_not_before_start(start: datetime, text: str) -> None:
    period = parse_period(text)
    deadline = add_period(start, period)
    assert deadline is not None
    assert deadline >= start
    if period.months or period.seconds:
        assert deadline > start


@given(starts, starts, periods)
def test_deadline_is_monotone_in_start(a: datetime, b: datetime, text: str) -> None:
    early, late = sorted((a, b))
    period = parse_period(text)
    early_deadline, late_deadline = add_period(early, period), add_period(late, period)
    assert early_deadline is not None
    assert late_deadline is not None
    assert early_deadline <= late_deadline


@given(starts, st.integers(min_value=0, max_value=MAX_MONTHS // 10))
def test_months_land_in_the_right_month_on_the_clamped_day(start: datetime, n: int) -> None:
    deadline = add_period(start, parse_period(f"{n}mo"))
    assert deadline is not None
    year, month0 = divmod(start.year * 12 + start.month - 1 + n, 12)
    assert (deadline.year, deadline.month) == (year, month0 + 1)
    assert deadline.day == min(start.day, calendar.monthrange(deadline.year, deadline.month)[1])
    assert deadline.time() == start.time()


@given(st.integers(min_value=0, max_value=1000))
def test_one_year_spellings_agree(n: int) -> None:
    assert (
        parse_period(f"P{n}Y")
        == parse_period(f"{n}y")
        == parse_period(f"{n * 12}mo")
        == parse_period(f"{n * 12} months")
        == parse_period(f"{n} years")
    )


@given(st.integers(min_value=0, max_value=MAX_SECONDS // DAY))
def test_days_are_fixed_lengths(n: int) -> None:
    assert parse_period(f"{n}d") == Period(seconds=n * DAY)
    assert parse_duration(f"{n}d") == timedelta(days=n)


@given(
    st.integers(min_value=0, max_value=1000),
    st.sampled_from(
        [("D", "d"), ("W", "w"), ("M", "mo"), ("Y", "y"), ("TH", "h"), ("TM", "m"), ("TS", "s")]
    ),
)
def test_iso_and_short_forms_agree(n: int, units: tuple[str, str]) -> None:
    iso, short = units
    iso_text = f"PT{n}{iso[1]}" if iso.startswith("T") else f"P{n}{iso}"
    assert parse_period(iso_text) == parse_period(f"{n}{short}")


@given(st.text())
def test_parse_raises_only_invalid_value(text: str) -> None:
    for parse in (parse_period, parse_duration):
        with contextlib.suppress(InvalidValue):
            parse(text)


@given(st.from_regex(r"\A\s*-?[0-9]{1,30}([.,][0-9]*)?\s*[A-Za-z]{0,8}\s*\Z"))
def test_parse_raises_only_invalid_value_on_near_misses(text: str) -> None:
    try:
        period = parse_period(text)
    except InvalidValue:
        return
    assert 0 <= period.months <= MAX_MONTHS
    assert 0 <= period.seconds <= MAX_SECONDS
