"""The first index's fast paths give exactly what the general code gives: ``classify`` without
tags or metadata (``_from_path``) against the general precedence walk, the fixed-width
``started_format`` parser against ``datetime.strptime``, over random names, zones and formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings
from hypothesis import strategies as st

from recd.core import classify as classify_module
from recd.core.classify import ClassifyRule, classify

ZONES = [
    UTC,
    ZoneInfo("Europe/London"),
    ZoneInfo("America/New_York"),
    ZoneInfo("Australia/Lord_Howe"),  # a 30-minute DST shift
    timezone(timedelta(hours=5, minutes=45)),
]
FORMATS = [
    None,
    "%Y%m%d%H%M%S",
    "%Y-%m-%d %H:%M:%S",
    "%d.%m.%Y_%H%M",
    "%Y%m%d",
    "%H%M%S-%Y%m%d",
    "%Y%%%m%d",
    "%b %d %Y %H:%M",  # not fixed-width: strptime
]
MIN, MAX = datetime(1, 1, 2), datetime(9999, 12, 30)  # a day's margin: an offset stays in range
NAMES = ("licence", "call_id", "extension", "caller", "callee", "started", "duration", "x")
PIECES = st.sampled_from(["", " ", "L1", " L2 ", "\ufffd", "L\ufffd", "a\udcff", "0770090001"])
STARTED = st.one_of(
    st.from_regex(r"\A[0-9]{14}\Z"),
    st.from_regex(r"\A[0-9]{8}-[0-9]{6}\Z"),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)).map(
        lambda d: d.strftime("%Y-%m-%d %H:%M:%S")
    ),
    st.builds(
        lambda d, f: d.strftime(f),
        st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 1, 1)),
        st.sampled_from([f for f in FORMATS if f is not None]),
    ),
    st.text(max_size=16),
)


@st.composite
def fields(draw: st.DrawFn) -> dict[str, str]:
    found = draw(st.dictionaries(st.sampled_from(NAMES), st.one_of(PIECES, st.text(max_size=8))))
    if draw(st.booleans()):
        found["started"] = draw(STARTED)
    return {k: v for k, v in found.items() if v}  # path_fields leaves out empty groups


@settings(max_examples=400, deadline=None)
@given(
    licence=st.sampled_from([None, "", " ", "L1", " L2 "]),  # config refuses U+FFFD in an id
    fmt=st.sampled_from(FORMATS),
    zone=st.sampled_from(ZONES),
    found=fields(),
    relpath=st.one_of(
        st.sampled_from(["a/b.WAV", "x.tar.gz", ".wav", "a.", "a/b", "d/e.mp3"]), st.text()
    ),
    mtime=st.one_of(
        st.datetimes(MIN, MAX, timezones=st.sampled_from([UTC, *ZONES[1:]])),
        st.datetimes(MIN, MAX),  # naive: taken as UTC
    ),
)
@example(
    licence=" ",
    fmt="%Y%m%d%H%M%S",
    zone=ZoneInfo("Europe/London"),
    found={"licence": "L1", "started": "20261025013000"},  # in the fall-back hour
    relpath="L1/a.wav",
    mtime=datetime(2026, 1, 1, tzinfo=UTC),
)
def test_classify_from_the_path_alone_is_the_general_walk(
    licence: str | None,
    fmt: str | None,
    zone: timezone,
    found: dict[str, str],
    relpath: str,
    mtime: datetime,
) -> None:
    rule = ClassifyRule(timezone=zone, licence=licence, started_format=fmt)
    fast = classify(rule, relpath, fields=found, tags=None, metadata=None, mtime=mtime)
    # Empty tags and metadata take the general walk over every level and find nothing there.
    general = classify(rule, relpath, fields=found, tags={}, metadata={}, mtime=mtime)
    assert fast == general


@settings(max_examples=500, deadline=None)
@given(
    fmt=st.sampled_from([f for f in FORMATS if f is not None]),
    text=st.one_of(
        st.from_regex(r"\A[0-9:. %_-]{6,20}\Z"),
        st.builds(
            lambda d, f: d.strftime(f),
            st.datetimes(min_value=datetime(1000, 1, 1)),
            st.sampled_from([f for f in FORMATS if f is not None]),
        ),
    ),
)
def test_the_fixed_width_parser_is_strptime(fmt: str, text: str) -> None:
    try:
        want: datetime | str = datetime.strptime(text, fmt)
    except ValueError:
        want = "ValueError"
    try:
        got: datetime | str = classify_module._strptime(text, fmt)
    except ValueError:
        got = "ValueError"
    assert got == want
