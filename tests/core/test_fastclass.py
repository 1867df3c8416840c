"""A first index's integer-microsecond classification (``recd.core.fastclass``) gives exactly
what ``classify`` from the path and ``add_period`` give, whenever it answers: over random
names, fixed-width formats, zones (DST gaps and overlaps, Lord Howe's 30 minutes), leap days,
month ends and periods up to the end of the calendar."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from recd.core.classify import ClassifyRule, classify, path_fields
from recd.core.fastclass import Found, PathClassifier, instant
from recd.core.model import FileFacts
from recd.core.periods import Period, add_period, parse_period

ZONES = [
    UTC,
    ZoneInfo("Europe/London"),
    ZoneInfo("America/New_York"),
    ZoneInfo("Australia/Lord_Howe"),  # a 30-minute DST shift
    timezone(timedelta(hours=5, minutes=45)),
]
FORMATS = ["%Y%m%d%H%M%S", "%Y-%m-%d %H:%M:%S", "%d.%m.%Y_%H%M", "%Y%m%d", "%H%M%S-%Y%m%d"]
PERIODS = [None, *map(parse_period, ["never", "0s", "30d", "1mo", "3mo", "1y", "13mo", "1000y"])]
PATTERN = re.compile(
    r"^(?:(?P<licence>[^/]*)/)?(?P<caller>[^_/]*)_(?P<callee>[^_/]*)_(?P<started>[^_/.]*)"
    r"(?:_(?P<call_id>[^_/.]*))?(?:\.[^/]*)?$"
)
# Near DST changes, leap days and month ends, in every zone above.
INSTANTS = st.one_of(
    st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)),
    st.sampled_from(
        [
            datetime(2026, 3, 29, 1, 30),  # London gap
            datetime(2026, 10, 25, 1, 30),  # London overlap
            datetime(2026, 3, 8, 2, 30),  # New York gap
            datetime(2026, 11, 1, 1, 30),  # New York overlap
            datetime(2026, 10, 4, 2, 15),  # Lord Howe gap (30 min)
            datetime(2026, 4, 5, 1, 45),  # Lord Howe overlap
            datetime(2024, 2, 29, 12, 0),
            datetime(2025, 1, 31, 23, 59, 59),
            datetime(2025, 8, 31, 0, 0),
            datetime(9999, 12, 31, 21, 0),
            datetime(1, 1, 1, 2, 30),
        ]
    ).flatmap(
        lambda d: st.just(d) | st.builds(lambda m: d + timedelta(minutes=m), st.integers(-90, 90))
    ),
)
PIECE = st.sampled_from(["", " ", "L1", " L2 ", "\ufffd", "L\ufffd", "0770090001", "1000"])


def lookup(table: dict[str | None, Period | None]) -> Callable[[str | None], Period | None]:
    def period_for(licence: str | None) -> Period | None:
        return table.get(licence)

    return period_for


def period_table(periods: list[Period | None]) -> dict[str | None, Period | None]:
    return dict(zip([None, "L1", "L2", "x"], periods, strict=False))


@settings(max_examples=600, deadline=None)
@given(
    licence=st.sampled_from([None, "", " ", "L1", " L2 "]),
    fmt=st.sampled_from(FORMATS),
    zone=st.sampled_from(ZONES),
    lic=PIECE | st.text(max_size=4),
    caller=PIECE,
    started=st.one_of(
        st.builds(lambda d, f: d.strftime(f), INSTANTS, st.sampled_from(FORMATS)),
        st.from_regex(r"\A[0-9]{14}\Z"),
        st.text(max_size=14),
    ),
    pad=st.sampled_from(["", " "]),
    when=st.none() | INSTANTS,
    call_id=st.none() | PIECE,
    ext=st.sampled_from(["", ".wav", ".WAV", ".tar.gz", "."]),
    mtime_ns=st.one_of(
        st.integers(-(2**63), 2**63 - 1),
        INSTANTS.map(
            lambda d: (d.replace(tzinfo=UTC) - instant(0)) // timedelta(microseconds=1) * 1000 + 999
        ),
    ),
    periods=st.lists(st.sampled_from(PERIODS), min_size=4, max_size=4),
)
@example(
    licence="L1", fmt="%Y%m%d%H%M%S", zone=ZoneInfo("Europe/London"), lic="", caller="a",
    started="20261025013000", pad="", when=None, call_id=None, ext=".wav", mtime_ns=0,
    periods=[None, parse_period("1mo"), None, None],
)  # fmt: skip
@example(
    licence=None, fmt="%Y%m%d%H%M%S", zone=ZoneInfo("Australia/Lord_Howe"), lic="L2",
    started="20241130120000", caller="a", pad=" ", when=None, call_id="7", ext=".WAV", mtime_ns=0,
    periods=[None, None, parse_period("3mo"), None],
)  # fmt: skip
def test_fast_classification_is_the_general_one(  # noqa: PLR0917 (hypothesis)
    licence: str | None,
    fmt: str,
    zone: timezone,
    lic: str,
    caller: str,
    started: str,
    pad: str,
    when: datetime | None,
    call_id: str | None,
    ext: str,
    mtime_ns: int,
    periods: list[Period | None],
) -> None:
    rule = ClassifyRule(timezone=zone, licence=licence, pattern=PATTERN, started_format=fmt)
    if when is not None:  # in the rule's own format
        started = when.strftime(fmt)
    table = period_table(periods)
    relpath = f"{lic}/{caller}_x_{pad}{started}{pad}" + ("" if call_id is None else f"_{call_id}")
    relpath += ext
    got = PathClassifier(rule, lookup(table)).classify(relpath, mtime_ns)
    event("fast path" if got is not None else "general path")
    if got is None:
        return  # the general path decides
    c = classify(
        rule,
        relpath,
        fields=path_fields(rule, relpath),
        tags=None,
        metadata=None,
        mtime=instant(mtime_ns // 1000),
    )
    period = table.get(c.licence)
    want = None if period is None else add_period(c.started, period)
    facts = FileFacts("s", relpath, 1, 2, 3, mtime_ns)
    rec = Found("id", facts, got).recording(instant(0))
    assert rec.classification == c
    assert rec.deadline == want
    assert list(rec.classification.provenance) == list(c.provenance)  # the JSON's order


@settings(max_examples=200, deadline=None)
@given(zone=st.sampled_from(ZONES), when=INSTANTS.filter(lambda d: 1900 < d.year < 2100))
def test_most_start_times_take_the_fast_path(zone: timezone, when: datetime) -> None:
    """Not vacuous: only a day with an offset change (or the calendar's ends) falls back."""
    rule = ClassifyRule(timezone=zone, licence="L", pattern=PATTERN, started_format=FORMATS[0])
    relpath = f"a_b_{when:%Y%m%d%H%M%S}.wav"
    got = PathClassifier(rule, lookup({"L": parse_period("1mo")})).classify(relpath, 0)
    day = datetime(when.year, when.month, when.day)
    offsets = {
        (day + timedelta(minutes=m)).replace(tzinfo=zone, fold=f).utcoffset()
        for m in range(0, 24 * 60, 15)
        for f in (0, 1)
    }
    if len(offsets) == 1:
        assert got is not None


def test_not_for_rules_that_read_tags_or_parse_by_strptime() -> None:
    base = ClassifyRule(timezone=UTC, licence="L", pattern=PATTERN, started_format=FORMATS[0])
    assert PathClassifier.for_rule(base, lookup({})) is not None
    for rule in (
        ClassifyRule(timezone=UTC, pattern=PATTERN, started_format=FORMATS[0], tags=True),
        ClassifyRule(timezone=UTC, pattern=PATTERN, started_format=FORMATS[0], metadata=True),
        ClassifyRule(timezone=UTC, pattern=PATTERN, started_format="%b %d %Y"),
        ClassifyRule(timezone=UTC, pattern=PATTERN),
        ClassifyRule(timezone=UTC, started_format=FORMATS[0]),
    ):
        assert PathClassifier.for_rule(rule, lookup({})) is None
