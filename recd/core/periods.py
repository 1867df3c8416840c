"""Retention periods: syntax and calendar-correct deadline arithmetic (SPEC section 3).

A period is a number of calendar months followed by a number of fixed seconds, or ``never``.
Invariants: every value ``parse_period`` returns has ``0 <= months <= MAX_MONTHS`` and
``0 <= seconds <= MAX_SECONDS``; every error is an ``InvalidValue`` with one line that names the
text and says what to write instead. ``add_period`` adds months first, clamping the day to the
length of the month it lands in (Nov 30 + 3 months = Feb 28, or 29 in a leap year), then the
seconds, so a deadline is never earlier than a person reading "3 months" would expect. Pure: no
clock, no environment; times are timezone-aware and results are UTC.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from recd.errors import InvalidValue

#: A longer period is refused as a typo: 1000 years outlives any recording and any datetime.
MAX_YEARS = 1000
MAX_MONTHS = 12 * MAX_YEARS
MAX_SECONDS = MAX_YEARS * 366 * 86400

_PERIOD_HINT = "use s, m, h, d, w, mo, y, ISO 8601 such as P30D, or never"
_DURATION_HINT = "use s, m, h, d, w, or ISO 8601 such as PT12H"
_FIXED_EXAMPLES = "this setting takes a fixed length such as 30s, 2m, 6h or 7d"

# Unit -> (months, seconds) per unit. Matched case-insensitively, except that a bare "M" is
# refused below: "3M" reads as minutes to some people and as months to others.
_UNITS: dict[str, tuple[int, int]] = {
    "s": (0, 1),
    "sec": (0, 1),
    "second": (0, 1),
    "seconds": (0, 1),
    "m": (0, 60),
    "min": (0, 60),
    "minute": (0, 60),
    "minutes": (0, 60),
    "h": (0, 3600),
    "hour": (0, 3600),
    "hours": (0, 3600),
    "d": (0, 86400),
    "day": (0, 86400),
    "days": (0, 86400),
    "w": (0, 7 * 86400),
    "week": (0, 7 * 86400),
    "weeks": (0, 7 * 86400),
    "mo": (1, 0),
    "month": (1, 0),
    "months": (1, 0),
    "y": (12, 0),
    "year": (12, 0),
    "years": (12, 0),
}

_SHORT = re.compile(
    r"(?P<minus>-?)(?P<number>[0-9]+(?P<fraction>[.,][0-9]*)?)\s*(?P<unit>[A-Za-z]*)"
)
_ISO = re.compile(
    r"P(?:(?P<Y>[0-9]+)Y)?(?:(?P<M>[0-9]+)M)?(?:(?P<W>[0-9]+)W)?(?:(?P<D>[0-9]+)D)?"
    r"(?:T(?=[0-9])(?:(?P<h>[0-9]+)H)?(?:(?P<m>[0-9]+)M)?(?:(?P<s>[0-9]+)S)?)?"
)
# ISO designator -> (months, seconds) per unit.
_ISO_UNITS: dict[str, tuple[int, int]] = {
    "Y": (12, 0),
    "M": (1, 0),
    "W": (0, 7 * 86400),
    "D": (0, 86400),
    "h": (0, 3600),
    "m": (0, 60),
    "s": (0, 1),
}
# More digits than this cannot be within MAX_SECONDS; checked before int() so that a
# pathological input never reaches Python's int-from-string length limit.
_MAX_DIGITS = 12


@dataclass(frozen=True, slots=True)
class Period:
    """A retention period: calendar ``months`` then fixed ``seconds``, or ``never``.

    ``text`` is what the operator wrote, kept for messages and `recctl policy`. It takes no part
    in equality: ``P1Y``, ``1y``, ``12mo`` and ``12 months`` are the same period.
    """

    months: int = 0
    seconds: int = 0
    never: bool = False
    text: str = field(default="", compare=False)


def parse_period(text: str) -> Period:
    """Parse a retention period such as ``30d``, ``3mo``, ``3 months``, ``P1Y`` or ``never``.

    Raises InvalidValue with a one-line message naming ``text``.
    """
    return _parse(text, _PERIOD_HINT)


def parse_duration(text: str) -> timedelta:
    """Parse a fixed length such as ``30s``, ``2m``, ``6h``, ``7d`` or ``PT12H``.

    Calendar units (months, years) and ``never`` are refused: settle times, rescan intervals and
    grace periods must not depend on which month it is. Raises InvalidValue.
    """
    period = _parse(text, _DURATION_HINT)
    if period.never:
        raise InvalidValue(f'"{period.text}" is not a fixed length; {_FIXED_EXAMPLES}')
    if period.months:
        raise InvalidValue(f'"{period.text}" is a calendar period; {_FIXED_EXAMPLES}')
    return timedelta(seconds=period.seconds)


def add_period(start: datetime, period: Period) -> datetime | None:
    """``start`` + ``period`` in UTC: months first (day clamped to the month's end), then seconds.

    Returns None for ``never``, and for a deadline after the year 9999, which is as good as
    never and safer than any representable date. ``start`` must be timezone-aware.
    """
    if period.never:
        return None
    if start.utcoffset() is None:
        raise ValueError(f"add_period needs a timezone-aware start, got {start.isoformat()}")
    try:
        shifted = _add_months(start.astimezone(UTC), period.months)
        return shifted + timedelta(seconds=period.seconds)
    except OverflowError:
        return None


def _add_months(start: datetime, months: int) -> datetime:
    index = start.year * 12 + (start.month - 1) + months
    year, month0 = divmod(index, 12)
    if year > datetime.max.year:
        raise OverflowError(year)
    day = min(start.day, calendar.monthrange(year, month0 + 1)[1])
    return start.replace(year=year, month=month0 + 1, day=day)


def _parse(text: str, hint: str) -> Period:
    stripped = text.strip()
    if not stripped:
        raise InvalidValue(f"no period given ({hint})")
    if stripped.lower() == "never":
        return Period(never=True, text=stripped)
    short = _SHORT.fullmatch(stripped)
    if short is not None:
        months, seconds = _short(short, stripped, hint)
    elif stripped[:1] in ("P", "p") and stripped[1:2] in ("", "T", "t", *"0123456789"):
        months, seconds = _iso(stripped)
    else:
        raise InvalidValue(f'not a period: "{stripped}" ({hint})')
    if months > MAX_MONTHS or seconds > MAX_SECONDS:
        raise InvalidValue(f'period too long: "{stripped}" (at most {MAX_YEARS} years)')
    return Period(months=months, seconds=seconds, text=stripped)


def _short(match: re.Match[str], text: str, hint: str) -> tuple[int, int]:
    unit = match["unit"]
    if match["minus"]:
        raise InvalidValue(f'negative period: "{text}" (a period counts forward from the call)')
    if match["fraction"] is not None:
        raise InvalidValue(f'whole numbers only: "{text}" (use a smaller unit, e.g. 36h for 1.5d)')
    if not unit:
        raise InvalidValue(f'missing unit in "{text}" ({hint})')
    if unit == "M":
        raise InvalidValue(f'ambiguous unit "M" in "{text}" (use m for minutes or mo for months)')
    per_unit = _UNITS.get(unit.lower())
    if per_unit is None:
        raise InvalidValue(f'unknown unit "{unit}" in "{text}" ({hint})')
    number = _number(match["number"], text)
    return number * per_unit[0], number * per_unit[1]


def _iso(text: str) -> tuple[int, int]:
    match = _ISO.fullmatch(text.upper())
    found = {} if match is None else {k: v for k, v in match.groupdict().items() if v is not None}
    if not found:
        raise InvalidValue(
            f'not an ISO 8601 duration: "{text}" (such as P30D, P3M, P1Y or PT12H; '
            "whole numbers only)"
        )
    months = seconds = 0
    for designator, digits in found.items():
        number = _number(digits, text)
        months += number * _ISO_UNITS[designator][0]
        seconds += number * _ISO_UNITS[designator][1]
    return months, seconds


def _number(digits: str, text: str) -> int:
    if len(digits.lstrip("0")) > _MAX_DIGITS:
        raise InvalidValue(f'period too long: "{text}" (at most {MAX_YEARS} years)')
    return int(digits)
