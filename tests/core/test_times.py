"""recd.core.times: the one place a time becomes text and text a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from recd.core.times import format_human_time, format_iso, format_time, parse_iso, parse_time

T0 = datetime(2026, 11, 23, 13, 43, 9, 123456, tzinfo=UTC)
PLUS_ONE = timezone(timedelta(hours=1))


@pytest.mark.parametrize(
    ("dt", "text"),
    [
        (T0, "2026-11-23T13:43:09.123456Z"),
        (datetime(2026, 11, 23, 13, 43, 9, tzinfo=UTC), "2026-11-23T13:43:09.000000Z"),
        (
            datetime(2026, 11, 23, 14, 43, 9, 5, tzinfo=timezone(timedelta(hours=1))),
            "2026-11-23T13:43:09.000005Z",
        ),
        (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), "0999-01-02T03:04:05.000000Z"),
    ],
)
def test_format_time_is_utc_with_microseconds_and_z(dt, text):
    assert format_time(dt) == text
    assert parse_time(text) == dt


def test_format_time_refuses_naive_datetimes():
    with pytest.raises(ValueError) as exc:
        format_time(datetime(2026, 11, 23, 13, 43, 9))
    assert str(exc.value) == ("naive datetime 2026-11-23T13:43:09: an audit time needs a time zone")


@pytest.mark.parametrize(
    ("dt", "text"),
    [
        (T0, "2026-11-23T13:43:09Z"),  # cut to the second, never rounded up
        (datetime(2026, 11, 23, 13, 43, 9, 999999, tzinfo=UTC), "2026-11-23T13:43:09Z"),
        (
            datetime(2026, 11, 23, 14, 43, 9, 5, tzinfo=timezone(timedelta(hours=1))),
            "2026-11-23T13:43:09Z",
        ),
        (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), "0999-01-02T03:04:05Z"),
    ],
)
def test_format_human_time_is_utc_to_the_second(dt, text):
    assert format_human_time(dt) == text


def test_format_human_time_refuses_naive_datetimes():
    with pytest.raises(ValueError) as exc:
        format_human_time(datetime(2026, 11, 23, 13, 43, 9))
    assert str(exc.value) == "naive datetime 2026-11-23T13:43:09: a time shown needs a time zone"


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-23T13:43:09Z",
        "2026-11-23T13:43:09.123456+00:00",
        "2026-11-23 13:43:09.123456Z",
        "2026-11-23T13:43:09.123456Z ",
        "\uff12026-11-23T13:43:09.123456Z",  # FULLWIDTH DIGIT TWO: a digit to \d, not to recd
    ],
)
def test_parse_time_accepts_only_the_written_form(text):
    with pytest.raises(ValueError) as exc:
        parse_time(text)
    assert str(exc.value) == f"not a UTC time like 2026-11-23T13:43:09.123456Z: {text!r}"


def test_parse_time_refuses_impossible_dates():
    with pytest.raises(ValueError, match=r"month must be in 1\.\.12"):
        parse_time("2026-13-23T13:43:09.123456Z")


@pytest.mark.parametrize(
    ("dt", "text"),
    [
        (T0, "2026-11-23T13:43:09.123456Z"),
        (datetime(2026, 11, 23, 14, 43, 9, tzinfo=PLUS_ONE), "2026-11-23T13:43:09Z"),
    ],
)
def test_format_iso_is_utc_with_a_fraction_only_when_there_is_one(dt, text):
    assert format_iso(dt) == text
    assert parse_iso(text) == dt


def test_parse_iso_keeps_the_zone_it_was_given():
    when = parse_iso("2026-11-23T14:43:09+01:00")
    assert (when, when.utcoffset()) == (T0.replace(microsecond=0), timedelta(hours=1))


def test_parse_iso_gives_a_bare_time_the_zone_the_caller_means():
    assert parse_iso("2026-11-23T13:43:09", UTC) == T0.replace(microsecond=0)
    assert parse_iso("2026-11-23", PLUS_ONE) == datetime(2026, 11, 22, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("2026-11-23T13:43:09", "an ISO 8601 time without a zone: '2026-11-23T13:43:09'"),
        ("yesterday", "Invalid isoformat string: 'yesterday'"),
    ],
)
def test_parse_iso_refuses_a_bare_time_unless_told_its_zone(text, error):
    with pytest.raises(ValueError) as exc:
        parse_iso(text)
    assert str(exc.value) == error
