"""recd.core.classify: path fields, precedence per field, start-time parsing and DST."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recd.core import classify as classify_module
from recd.core.classify import (
    DEFAULT_TAG_NAMES,
    ClassifyRule,
    classify,
    format_from_name,
    needs_tags,
    parse_started,
    path_fields,
)
from recd.core.model import Classification, Provenance
from recd.errors import ExitCode, InvalidValue

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
MTIME = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
AUTO_HINT = (
    'use ISO 8601, YYYYMMDDhhmmss, YYYYMMDD-hhmmss, "YYYY-MM-DD hh:mm:ss" or 10-digit Unix seconds'
)

SOURCE, PATTERN, TAGS = Provenance.SOURCE, Provenance.PATTERN, Provenance.TAGS
METADATA, MTIME_P = Provenance.METADATA, Provenance.MTIME

PATTERN_3CX = re.compile(
    r"^(?P<extension>\d+)/(?P<caller>[^_]+)_(?P<callee>[^_]+)_(?P<started>\d{14})"
    r"\((?P<call_id>\d+)\)\.wav$"
)
PATTERN_TENANT = re.compile(r"^(?P<licence>[^/]*)/(?:(?P<started>[^/_]+)_)?(?P<call_id>[^/]*)\.")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def rule(**kwargs: object) -> ClassifyRule:
    kwargs.setdefault("timezone", UTC)
    return ClassifyRule(**kwargs)  # type: ignore[arg-type]


def run(
    r: ClassifyRule,
    relpath: str,
    tags: dict[str, str] | None = None,
    metadata: dict[str, str] | None = None,
    mtime: datetime = MTIME,
) -> Classification:
    return classify(
        r, relpath, fields=path_fields(r, relpath), tags=tags, metadata=metadata, mtime=mtime
    )


# --- path_fields ---------------------------------------------------------------------------------


def test_path_fields_gives_named_groups() -> None:
    r = rule(pattern=PATTERN_3CX)
    assert path_fields(r, "1001/1001_07700900123_20261120103000(23).wav") == {
        "extension": "1001",
        "caller": "1001",
        "callee": "07700900123",
        "started": "20261120103000",
        "call_id": "23",
    }


def test_path_fields_leaves_out_empty_and_unmatched_groups() -> None:
    r = rule(pattern=PATTERN_TENANT)
    assert path_fields(r, "ACME/abc.wav") == {"licence": "ACME", "call_id": "abc"}
    assert path_fields(r, "/abc.wav") == {"call_id": "abc"}


def test_path_fields_without_pattern_or_match_is_empty() -> None:
    assert path_fields(rule(), "1001/a.wav") == {}
    assert path_fields(rule(pattern=PATTERN_3CX), "1001/not-a-3cx-name.wav") == {}


def test_path_fields_searches_so_anchors_are_the_operators_choice() -> None:
    unanchored = rule(pattern=re.compile(r"(?P<call_id>\d+)\.wav"))
    assert path_fields(unanchored, "deep/dir/x-42.wav.bak") == {"call_id": "42"}
    anchored = rule(pattern=re.compile(r"^(?P<call_id>\d+)\.wav$"))
    assert path_fields(anchored, "deep/dir/x-42.wav.bak") == {}


# --- needs_tags ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "fields", "expected"),
    [
        ({}, {}, False),  # tags off: never
        ({"tags": True}, {}, True),  # the path gave nothing
        ({"tags": True, "licence": "L"}, {}, True),  # start time unknown
        ({"tags": True, "licence": "L"}, {"started": "20261120103000"}, False),
        ({"tags": True}, {"licence": "L", "started": "20261120103000"}, False),
        ({"tags": True}, {"licence": "L", "started": "yesterday"}, True),  # does not parse
        ({"tags": True}, {"started": "20261120103000"}, True),  # licence unknown
        ({"tags": True, "licence": "  "}, {"started": "20261120103000"}, True),  # blank
        ({"tags": True}, {"licence": " ", "started": "20261120103000"}, True),
        ({"licence": "L"}, {}, False),
        (
            {"tags": True, "licence": "L", "started_format": "%Y%m%d%H%M%S"},
            {"started": "2026-11-20T10:30:00"},  # parses, but not with the operator's format
            True,
        ),
    ],
)
def test_needs_tags(kwargs: dict[str, object], fields: dict[str, str], expected: bool) -> None:
    assert needs_tags(rule(**kwargs), fields) is expected


# --- classify: precedence ------------------------------------------------------------------------


def test_everything_from_the_path_with_a_fixed_licence() -> None:
    r = rule(licence="3CX-1", pattern=PATTERN_3CX, started_format="%Y%m%d%H%M%S", timezone=LONDON)
    c = run(r, "1001/1001_07700900123_20261120103000(23).wav")
    assert c == Classification(
        licence="3CX-1",
        started=utc(2026, 11, 20, 10, 30),
        call_id="23",
        extension="1001",
        caller="1001",
        callee="07700900123",
        duration=None,
        format="wav",
        provenance={
            "licence": SOURCE,
            "call_id": PATTERN,
            "extension": PATTERN,
            "caller": PATTERN,
            "callee": PATTERN,
            "started": PATTERN,
            "format": PATTERN,
        },
    )


ALL_TAGS = {
    "licence": "TAG-L",
    "call_id": "tag-call",
    "extension": "201",
    "caller": "tag-caller",
    "callee": "tag-callee",
    "started": "2026-11-02T08:00:00Z",
}
ALL_META = {
    "licence": "META-L",
    "call_id": "meta-call",
    "extension": "301",
    "caller": "meta-caller",
    "callee": "meta-callee",
    "started": "2026-11-03T08:00:00Z",
}
PATH_NAME = "PATH-L/20261101080000_path-call.wav"


@pytest.mark.parametrize(
    ("licence", "relpath", "tags", "metadata", "expected"),
    [
        # fixed licence > path > tags > metadata > mtime, per field
        ("SRC", PATH_NAME, ALL_TAGS, ALL_META, ("SRC", SOURCE, utc(2026, 11, 1, 8), PATTERN)),
        (None, PATH_NAME, ALL_TAGS, ALL_META, ("PATH-L", PATTERN, utc(2026, 11, 1, 8), PATTERN)),
        (None, "x", ALL_TAGS, ALL_META, ("TAG-L", TAGS, utc(2026, 11, 2, 8), TAGS)),
        (None, "x", None, ALL_META, ("META-L", METADATA, utc(2026, 11, 3, 8), METADATA)),
        (None, "x", {}, {}, (None, None, MTIME, MTIME_P)),
        (None, "x", None, None, (None, None, MTIME, MTIME_P)),
    ],
)
def test_precedence_per_field(
    licence: str | None,
    relpath: str,
    tags: dict[str, str] | None,
    metadata: dict[str, str] | None,
    expected: tuple[str | None, Provenance | None, datetime, Provenance],
) -> None:
    r = rule(licence=licence, pattern=PATTERN_TENANT, started_format="%Y%m%d%H%M%S")
    c = run(r, relpath, tags, metadata)
    assert (c.licence, c.provenance.get("licence"), c.started, c.provenance["started"]) == expected


def test_tags_fill_what_the_path_does_not_give() -> None:
    r = rule(pattern=re.compile(r"^(?P<licence>[^/]+)/"), tags=True)
    tags = {**ALL_TAGS, "licence": "IGNORED"}
    c = run(r, "ACME/rec.wav", tags, ALL_META)
    assert c == Classification(
        licence="ACME",
        started=utc(2026, 11, 2, 8),
        call_id="tag-call",
        extension="201",
        caller="tag-caller",
        callee="tag-callee",
        format="wav",
        provenance={
            "licence": PATTERN,
            "started": TAGS,
            "call_id": TAGS,
            "extension": TAGS,
            "caller": TAGS,
            "callee": TAGS,
            "format": PATTERN,
        },
    )


def test_metadata_fills_what_tags_do_not_give() -> None:
    c = run(rule(), "k", {"caller": "tag-caller"}, ALL_META)
    assert (c.caller, c.callee, c.call_id) == ("tag-caller", "meta-callee", "meta-call")
    assert c.provenance == {
        "licence": METADATA,
        "started": METADATA,
        "call_id": METADATA,
        "extension": METADATA,
        "caller": TAGS,
        "callee": METADATA,
    }


def test_tag_names_choose_and_order_the_names_read() -> None:
    names = MappingProxyType({**DEFAULT_TAG_NAMES, "licence": ("tenant", "LICN"), "caller": ()})
    r = rule(tag_names=names)
    c = run(r, "x", {"licence": "not-read", "licn": "B", "tenant": "A", "caller": "not-read"})
    assert (c.licence, c.caller) == ("A", None)
    c = run(r, "x", {"licence": "not-read", "licn": "B"})
    assert c.licence == "B"
    c = run(r, "x", {"tenant": "  ", "licn": "B"})  # blank value: the next name is tried
    assert c.licence == "B"


def test_a_field_with_no_tag_names_entry_is_not_read_from_tags() -> None:
    r = rule(tag_names={"licence": ("licence",)})
    c = run(r, "x", {"licence": "L", "caller": "C"})
    assert (c.licence, c.caller) == ("L", None)


def test_values_are_stripped_and_blank_means_unknown() -> None:
    c = run(rule(licence="  LIC-1 \n"), "x", {"caller": " 1001 "})
    assert (c.licence, c.caller) == ("LIC-1", "1001")
    c = run(rule(licence="   "), "x", {"licence": "\t", "caller": ""}, {"licence": "META"})
    assert (c.licence, c.caller, c.provenance["licence"]) == ("META", None, METADATA)
    c = run(rule(licence=""), "x")
    assert c.licence is None
    assert "licence" not in c.provenance


# --- classify: started falls through -------------------------------------------------------------


def test_a_path_start_time_that_does_not_parse_falls_through_to_tags() -> None:
    r = rule(pattern=PATTERN_TENANT, started_format="%Y%m%d%H%M%S")
    c = run(r, "L/20261399999999_call.wav", {"started": "2026-11-02T08:00:00Z"})
    assert (c.started, c.provenance["started"]) == (utc(2026, 11, 2, 8), TAGS)


def test_a_bad_tag_start_time_falls_through_to_the_next_name_then_metadata_then_mtime() -> None:
    names = {**DEFAULT_TAG_NAMES, "started": ("started", "date")}
    r = rule(tag_names=names)
    c = run(r, "x", {"started": "soon", "date": "2026-11-04 10:00:00"})
    assert (c.started, c.provenance["started"]) == (utc(2026, 11, 4, 10), TAGS)
    c = run(r, "x", {"started": "soon"}, {"date": "1764064800"})
    assert (c.started, c.provenance["started"]) == (utc(2025, 11, 25, 10), METADATA)
    c = run(r, "x", {"started": "soon"}, {"started": "later"})
    assert (c.started, c.provenance["started"]) == (MTIME, MTIME_P)


def test_tag_start_times_ignore_started_format_and_use_the_source_timezone() -> None:
    r = rule(started_format="%d.%m.%Y", timezone=LONDON)
    c = run(r, "x", {"started": "2026-07-01 12:00:00"})
    assert c.started == utc(2026, 7, 1, 11)  # BST


def test_mtime_is_returned_in_utc_and_a_naive_mtime_is_utc() -> None:
    plus2 = datetime(2026, 12, 1, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    c = run(rule(), "x", mtime=plus2)
    assert c.started == MTIME
    assert c.started.tzinfo is UTC
    c = run(rule(), "x", mtime=datetime(2026, 12, 1, 9, 0))
    assert c.started == MTIME


# --- classify: stream facts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12.5", 12.5), ("0", 0.0), ("7", 7.0), (" 3.25 ", 3.25), ("abc", None), ("", None),
     ("nan", None), ("inf", None), ("-1", None)],
)  # fmt: skip
def test_duration_from_the_tag_reader(text: str, expected: float | None) -> None:
    c = run(rule(), "a", {"duration": text})
    assert c.duration == expected
    assert ("duration" in c.provenance) is (expected is not None)
    if expected is not None:
        assert c.provenance["duration"] is TAGS


def test_format_from_the_tag_reader_beats_the_file_name() -> None:
    c = run(rule(), "a/b.wav", {"format": "mp3"})
    assert (c.format, c.provenance["format"]) == ("mp3", TAGS)
    c = run(rule(), "a/b.wav", {"format": " "})
    assert (c.format, c.provenance["format"]) == ("wav", PATTERN)
    c = run(rule(), "a/b")
    assert c.format is None
    assert c.provenance == {"started": MTIME_P}


# --- format_from_name ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relpath", "expected"),
    [
        ("a.wav", "wav"),
        ("dir/B.WAV", "wav"),
        ("x/y/call.opus", "opus"),
        ("archive.tar.gz", "gz"),
        ("dir.d/noext", None),
        (".wav", None),
        ("dir/.wav", None),
        ("trailing.", None),
        ("weird.wa v", None),
        ("long.abcdefghijk", None),
        ("ten.abcdefghij", "abcdefghij"),
        ("", None),
    ],
)
def test_format_from_name(relpath: str, expected: str | None) -> None:
    assert format_from_name(relpath) == expected


# --- parse_started -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T10:30:00Z", utc(2026, 11, 20, 10, 30)),
        ("2026-11-20T10:30:00+01:00", utc(2026, 11, 20, 9, 30)),
        ("2026-11-20T10:30:00.250-05:00", datetime(2026, 11, 20, 15, 30, 0, 250000, UTC)),
        ("2026-11-20T10:30:00", utc(2026, 11, 20, 10, 30)),
        ("20261120T103000Z", utc(2026, 11, 20, 10, 30)),
        ("2026-11-20 10:30:00", utc(2026, 11, 20, 10, 30)),
        ("2026-11-20", utc(2026, 11, 20)),
        ("20261120103000", utc(2026, 11, 20, 10, 30)),
        ("20261120-103000", utc(2026, 11, 20, 10, 30)),
        ("1763634600", utc(2025, 11, 20, 10, 30)),
        ("1763634600.123", datetime(2025, 11, 20, 10, 30, 0, 123000, UTC)),
        ("1763634600.1234567", datetime(2025, 11, 20, 10, 30, 0, 123456, UTC)),
        ("  20261120103000\n", utc(2026, 11, 20, 10, 30)),
    ],
)
def test_parse_started_accepts(text: str, expected: datetime) -> None:
    result = parse_started(text, None, UTC)
    assert result == expected
    assert result.tzinfo is UTC


def test_naive_times_are_local_times_in_the_zone() -> None:
    assert parse_started("2026-07-01 12:00:00", None, LONDON) == utc(2026, 7, 1, 11)
    assert parse_started("20260101120000", None, LONDON) == utc(2026, 1, 1, 12)
    assert parse_started("20260701-120000", None, NEW_YORK) == utc(2026, 7, 1, 16)
    # Epoch seconds and explicit offsets name an instant; the zone does not shift them.
    assert parse_started("1763634600", None, NEW_YORK) == utc(2025, 11, 20, 10, 30)
    assert parse_started("2026-07-01T12:00:00Z", None, NEW_YORK) == utc(2026, 7, 1, 12)


def test_parse_started_with_a_format() -> None:
    assert parse_started("20.11.2026 10:30", "%d.%m.%Y %H:%M", LONDON) == utc(2026, 11, 20, 10, 30)
    assert parse_started("20261120T103000Z", "%Y%m%dT%H%M%S%z", NEW_YORK) == utc(
        2026, 11, 20, 10, 30
    )
    assert parse_started(" 20261120-103000 ", "%Y%m%d-%H%M%S", UTC) == utc(2026, 11, 20, 10, 30)


@pytest.mark.parametrize(
    ("text", "tz", "expected"),
    [
        # London falls back at 02:00 BST on 25 Oct 2026: 01:30 happens at 00:30Z and 01:30Z.
        ("20261025013000", LONDON, utc(2026, 10, 25, 1, 30)),
        ("20261025005959", LONDON, utc(2026, 10, 24, 23, 59, 59)),  # before: unambiguous BST
        ("20261025020000", LONDON, utc(2026, 10, 25, 2)),  # after: unambiguous GMT
        # London springs forward at 01:00 GMT on 29 Mar 2026: 01:30 never happens.
        ("20260329013000", LONDON, utc(2026, 3, 29, 1, 30)),  # = 02:30 BST, the later reading
        # New York: 01:30 repeats on 1 Nov 2026; 02:30 is skipped on 8 Mar 2026.
        ("20261101013000", NEW_YORK, utc(2026, 11, 1, 6, 30)),  # EST, not 05:30Z (EDT)
        ("20260308023000", NEW_YORK, utc(2026, 3, 8, 7, 30)),  # = 03:30 EDT
    ],
)
def test_dst_ambiguous_and_skipped_times_resolve_to_the_later_instant(
    text: str, tz: ZoneInfo, expected: datetime
) -> None:
    assert parse_started(text, None, tz) == expected
    assert parse_started(text, "%Y%m%d%H%M%S", tz) == expected


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("yesterday", None, f'"yesterday" is not a start time ({AUTO_HINT})'),
        ("", None, f'"" is not a start time ({AUTO_HINT})'),
        ("20261320103000", None, f'"20261320103000" is not a start time ({AUTO_HINT})'),
        ("20261120-253000", None, f'"20261120-253000" is not a start time ({AUTO_HINT})'),
        ("176363460", None, f'"176363460" is not a start time ({AUTO_HINT})'),
        ("2026-11-20T10:30", "%Y%m%d%H%M%S",
         '"2026-11-20T10:30" does not match started_format "%Y%m%d%H%M%S"'),
        ("20261120 ", "%Y%m%d%H%M%S", '"20261120 " does not match started_format "%Y%m%d%H%M%S"'),
        ("0001-01-01T00:00:00+01:00", None,
         '"0001-01-01T00:00:00+01:00" is out of range as a start time'),
        ("9999-12-31T23:59:59-01:00", None,
         '"9999-12-31T23:59:59-01:00" is out of range as a start time'),
    ],
)  # fmt: skip
def test_parse_started_errors(text: str, fmt: str | None, message: str) -> None:
    with pytest.raises(InvalidValue) as info:
        parse_started(text, fmt, UTC)
    assert str(info.value) == message
    assert info.value.exit_code is ExitCode.USAGE


def test_a_naive_time_out_of_range_in_its_zone() -> None:
    with pytest.raises(InvalidValue) as info:
        parse_started("0001-01-01 00:00:00", None, ZoneInfo("Asia/Tokyo"))
    assert str(info.value) == '"0001-01-01 00:00:00" is out of range as a start time'


# --- properties ----------------------------------------------------------------------------------

local_times = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 12, 31))


@given(local=local_times, tz=st.sampled_from([LONDON, NEW_YORK]))
def test_property_never_earlier_than_either_reading_of_a_local_time(
    local: datetime, tz: ZoneInfo
) -> None:
    readings = {local.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1)}
    for text, fmt in (
        (local.isoformat(), None),
        (local.strftime("%Y%m%d%H%M%S"), "%Y%m%d%H%M%S"),
    ):
        result = parse_started(text, fmt, tz)
        truncated = {r.replace(microsecond=0) for r in readings} if fmt else readings
        assert result in truncated
        assert all(result >= r for r in truncated)
        assert result.tzinfo is UTC


@given(
    local=local_times,
    tz=st.sampled_from([LONDON, NEW_YORK]),
)
def test_property_a_real_local_time_reads_back_as_itself(local: datetime, tz: ZoneInfo) -> None:
    local = local.replace(microsecond=0)
    result = parse_started(local.strftime("%Y%m%d-%H%M%S"), None, tz)
    back = result.astimezone(tz).replace(tzinfo=None)
    skipped = local.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) != local
    if not skipped:
        assert back == local
    else:
        assert back > local  # a time in a spring-forward gap moves forward, never back


text_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["2026-11-20T10:30:00Z", "20261120103000", "1763634600", " ", "nan"]),
)
field_maps = st.dictionaries(
    st.sampled_from([*DEFAULT_TAG_NAMES, "license", "duration", "format"]), text_values
)


@given(
    fixed=st.one_of(st.none(), text_values),
    relpath=st.text(max_size=40),
    tags=st.one_of(st.none(), field_maps),
    metadata=st.one_of(st.none(), field_maps),
    tz=st.sampled_from([UTC, LONDON, NEW_YORK]),
)
def test_property_classify_never_raises_and_records_every_field_it_sets(
    fixed: str | None,
    relpath: str,
    tags: dict[str, str] | None,
    metadata: dict[str, str] | None,
    tz: ZoneInfo,
) -> None:
    r = rule(licence=fixed, pattern=PATTERN_TENANT, tags=True, timezone=tz)
    c = run(r, relpath, tags, metadata)
    set_fields = {
        name
        for name in ("licence", "call_id", "extension", "caller", "callee", "duration", "format")
        if getattr(c, name) is not None
    }
    assert set(c.provenance) == set_fields | {"started"}
    assert c.started.tzinfo is UTC
    for name in ("licence", "call_id", "extension", "caller", "callee"):
        value = getattr(c, name)
        assert value is None or (value and value == value.strip())


FAST_FORMATS = ["%Y%m%d%H%M%S", "%Y%m%d-%H%M%S", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d", "%d.%m.%Y %H%%"]


@given(when=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9999, 12, 31)))
@pytest.mark.parametrize("fmt", FAST_FORMATS)
def test_fast_strptime_agrees_with_strptime(fmt: str, when: datetime) -> None:
    text = when.strftime(fmt)
    assert classify_module._strptime(text, fmt) == datetime.strptime(text, fmt)


@pytest.mark.parametrize(
    ("text", "fmt"),
    [("20261301120000", "%Y%m%d%H%M%S"), ("20261130250000", "%Y%m%d%H%M%S"), ("x", "%Y")],
)
def test_fast_strptime_leaves_errors_to_strptime(text: str, fmt: str) -> None:
    with pytest.raises(ValueError) as fast:
        classify_module._strptime(text, fmt)
    with pytest.raises(ValueError) as slow:
        datetime.strptime(text, fmt)
    assert str(fast.value) == str(slow.value)


@pytest.mark.parametrize("fmt", ["%y%m%d", "%Y%m", "%Y%m%d%Y", "%Y%m%d%b", "%Y%m%d%"])
def test_formats_without_a_fast_path(fmt: str) -> None:
    assert classify_module._fast_format(fmt) is None


def test_variable_width_input_falls_back_to_strptime() -> None:
    # strptime reads 13 digits under %Y%m%d%H%M%S (a one-digit second); so must we.
    text, fmt = "2026113012000", "%Y%m%d%H%M%S"
    assert classify_module._strptime(text, fmt) == datetime.strptime(text, fmt)


@given(
    fields=st.dictionaries(
        st.sampled_from(["licence", "call_id", "extension", "caller", "callee"]),
        st.text(alphabet=" \tabc123", max_size=4),
    ),
    fixed=st.one_of(st.none(), st.text(alphabet=" L1", max_size=3)),
)
def test_fast_path_without_tags_agrees_with_the_general_one(
    fields: dict[str, str], fixed: str | None
) -> None:
    rule = ClassifyRule(timezone=UTC, licence=fixed)
    mtime = datetime(2026, 11, 1, tzinfo=UTC)
    fast = classify(rule, "a/b.wav", fields=fields, tags=None, metadata=None, mtime=mtime)
    general = classify(rule, "a/b.wav", fields=fields, tags={}, metadata={}, mtime=mtime)
    assert fast == general
