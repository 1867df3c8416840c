"""A first index's classification in integer microseconds: no datetime, no dict per file.

``PathClassifier.classify`` gives what ``classify.classify`` (without tags or metadata) and
``periods.add_period`` give for one file, as plain values: start time and deadline as integer
microseconds since the Unix epoch, the text fields, and the provenance as a tuple. Per-date
work is cached: a date's epoch day and, in the rule's time zone, its UTC offset when that date
has no offset change (checked every quarter hour at both folds); a month shift per UTC day.
Anything else (a transition day, a start time the fixed-width format does not take, an mtime
or date near the ends of ``datetime``'s range) gives None: the caller takes the general path.
Tests compare both paths over random names, formats and zones. Pure: no I/O, no clock.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from recd.core import classify
from recd.core.classify import ClassifyRule
from recd.core.model import Classification, FileFacts, Provenance, Recording, State
from recd.core.periods import Period

DAY_US = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_ONE_US = timedelta(microseconds=1)
#: The instants a UTC ``datetime`` can hold, less a day each side (offsets stay in range).
_MIN_US = (date(1, 1, 2).toordinal() - _EPOCH_ORDINAL) * DAY_US
_MAX_US = (date(9999, 12, 30).toordinal() - _EPOCH_ORDINAL) * DAY_US
#: The last instant a deadline may be (``add_period`` gives None past it).
_LAST_US = (date(9999, 12, 31).toordinal() - _EPOCH_ORDINAL + 1) * DAY_US - 1
_CACHE = 4096  # dates remembered per classifier (a cache, not a limit)


class Classified(NamedTuple):
    """One file's classified values, as ``Classification`` holds them (duration None)."""

    licence: str | None
    started_us: int
    deadline_us: int | None
    call_id: str | None
    extension: str | None
    caller: str | None
    callee: str | None
    format: str | None
    provenance: tuple[tuple[str, Provenance], ...]


class Found(NamedTuple):
    """A file a first index classified by ``PathClassifier``: its catalogue id, its facts and
    what it was classified as (``IndexingCatalogue.insert_new``)."""

    id: str
    facts: FileFacts
    classified: Classified

    @property
    def source(self) -> str:
        return self.facts.source

    @property
    def relpath(self) -> str:
        return self.facts.relpath

    def recording(self, now: datetime) -> Recording:
        """The same row as a ``Recording`` first seen at ``now`` (present, not held)."""
        f, c = self.facts, self.classified
        return Recording(
            id=self.id,
            source=f.source,
            relpath=f.relpath,
            dev=f.dev,
            ino=f.ino,
            size=f.size,
            mtime_ns=f.mtime_ns,
            classification=Classification(
                licence=c.licence,
                started=instant(c.started_us),
                call_id=c.call_id,
                extension=c.extension,
                caller=c.caller,
                callee=c.callee,
                duration=None,
                format=c.format,
                provenance=dict(c.provenance),
            ),
            deadline=None if c.deadline_us is None else instant(c.deadline_us),
            state=State.PRESENT,
            first_seen=now,
            ctime_ns=f.ctime_ns,
            btime_ns=f.btime_ns,
        )


def instant(us: int) -> datetime:
    """Microseconds since the epoch as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=us)


_NO_FIELDS: dict[str, str | None] = {}
_LICENCE_SOURCE, _LICENCE_PATTERN, _STARTED_MTIME, _FORMAT = 1, 2, 4, 8
#: The text fields beside the licence, in ``_from_path``'s order: name, index, mask bit.
_TEXT = (("call_id", 0, 16), ("extension", 1, 32), ("caller", 2, 64), ("callee", 3, 128))


def _provenance(mask: int) -> tuple[tuple[str, Provenance], ...]:
    """The provenance ``_from_path`` records for the fields ``mask`` says are set, in its
    order: licence, the text fields, started, format."""
    found: list[tuple[str, Provenance]] = []
    if mask & _LICENCE_SOURCE:
        found.append(("licence", Provenance.SOURCE))
    elif mask & _LICENCE_PATTERN:
        found.append(("licence", Provenance.PATTERN))
    found += [(name, Provenance.PATTERN) for name, _, bit in _TEXT if mask & bit]
    found.append(("started", Provenance.MTIME if mask & _STARTED_MTIME else Provenance.PATTERN))
    if mask & _FORMAT:
        found.append(("format", Provenance.PATTERN))
    return tuple(found)


class PathClassifier:
    """``classify`` from the path alone plus the deadline, for one source's rule."""

    def __init__(self, rule: ClassifyRule, period_for: Callable[[str | None], Period | None]):
        self.rule = rule
        self._period_for = period_for
        fixed = rule.licence.strip() if rule.licence is not None else ""
        self._fixed = fixed or None
        self._pattern = rule.pattern
        fmt = rule.started_format
        fast = None if fmt is None else classify._fast_format(fmt)
        self._regex = None if fast is None else fast[0]
        self._where = (0, 0, 0, 0, 0, 0) if fast is None else fast[1]
        self._days: dict[tuple[int, int, int], tuple[int, int] | None] = {}
        self._shifts: dict[tuple[int, int], int | None] = {}
        self._periods: dict[str | None, Period | None] = {}
        self._provenance: dict[int, tuple[tuple[str, Provenance], ...]] = {}

    @staticmethod
    def for_rule(
        rule: ClassifyRule, period_for: Callable[[str | None], Period | None]
    ) -> PathClassifier | None:
        """A classifier when the rule classifies from the path alone (no tags or metadata
        are ever read) with a fixed-width ``started_format``; None otherwise."""
        if rule.tags or rule.metadata or rule.pattern is None or rule.started_format is None:
            return None
        if classify._fast_format(rule.started_format) is None:
            return None
        return PathClassifier(rule, period_for)

    def classify(self, relpath: str, mtime_ns: int) -> Classified | None:
        """What the general path gives ``relpath`` with this mtime (or S3 birth time), or None
        when only the general path can tell."""
        mtime_us = mtime_ns // 1000
        if not _MIN_US <= mtime_us <= _MAX_US:
            return None
        assert self._pattern is not None
        match = self._pattern.search(classify.matchable(relpath))
        # ``path_fields`` without its copy: an empty or unmatched group counts as absent.
        get = (_NO_FIELDS if match is None else match.groupdict()).get
        mask = 0  # which fields are set, and from where: the provenance, cached per mask
        licence = self._fixed
        if licence is not None:
            mask = _LICENCE_SOURCE
        elif (
            (lic := get("licence")) is not None
            and (lic := lic.strip())
            and classify.REPLACEMENT not in lic
        ):
            licence, mask = lic, _LICENCE_PATTERN
        values: list[str | None] = [None, None, None, None]
        for name, i, bit in _TEXT:
            if (value := get(name)) is not None and (value := value.strip()):
                values[i] = value
                mask |= bit
        text = get("started")
        if not text:
            started_us = mtime_us
            mask |= _STARTED_MTIME
        else:
            found = self._started(text)
            if found is None:
                return None
            started_us = found
        fmt = classify.format_from_name(relpath)
        if fmt is not None:
            mask |= _FORMAT
        provenance = self._provenance.get(mask)
        if provenance is None:
            provenance = self._provenance[mask] = _provenance(mask)
        return Classified(
            licence,
            started_us,
            self._deadline(licence, started_us),
            values[0],
            values[1],
            values[2],
            values[3],
            fmt,
            provenance,
        )

    def _started(self, text: str) -> int | None:
        """A path's start time by the fixed-width format, or None (the general path decides:
        strptime, an error falling through to the mtime, a DST change that day)."""
        assert self._regex is not None
        match = self._regex.fullmatch(text.strip())
        if match is None:
            return None
        v = [*map(int, match.groups()), 0]
        y, mo, d, h, mi, s = self._where
        hour, minute, second = v[h], v[mi], v[s]
        if hour > 23 or minute > 59 or second > 59:
            return None
        key = (v[y], v[mo], v[d])
        if key in self._days:
            day = self._days[key]
        else:
            day = self._day(*key)
            if len(self._days) >= _CACHE:
                self._days.clear()
            self._days[key] = day
        if day is None:
            return None
        return day[0] + (hour * 3600 + minute * 60 + second) * 1_000_000 - day[1]

    def _day(self, year: int, month: int, day: int) -> tuple[int, int] | None:
        """(local midnight as epoch µs, the day's UTC offset in µs), or None when the date is
        invalid, at the ends of the range, or its offset is not the same all day."""
        if not 2 <= year <= 9998:
            return None
        try:
            midnight = (date(year, month, day).toordinal() - _EPOCH_ORDINAL) * DAY_US
        except ValueError:
            return None
        tz = self.rule.timezone
        if tz is UTC:
            return midnight, 0
        offsets = set()
        start = datetime(year, month, day)
        for quarter in range(24 * 4 + 1):
            local = (
                start + timedelta(minutes=15 * quarter)
                if quarter < 96
                else start.replace(hour=23, minute=59, second=59, microsecond=999999)
            )
            for fold in (0, 1):
                offsets.add(local.replace(tzinfo=tz, fold=fold).utcoffset())
        if len(offsets) != 1:
            return None
        offset = offsets.pop()
        if offset is None:
            return None
        return midnight, offset // _ONE_US

    def _deadline(self, licence: str | None, started_us: int) -> int | None:
        """``add_period`` of the licence's period, in microseconds (None: none, or past 9999)."""
        if licence in self._periods:
            period = self._periods[licence]
        else:
            period = self._periods[licence] = self._period_for(licence)
        if period is None or period.never:
            return None
        us = started_us
        if period.months:
            days, time_of_day = divmod(us, DAY_US)
            key = (days, period.months)
            if key in self._shifts:
                shifted = self._shifts[key]
            else:
                shifted = _shift(days, period.months)
                if len(self._shifts) >= _CACHE:
                    self._shifts.clear()
                self._shifts[key] = shifted
            if shifted is None:
                return None
            us = shifted * DAY_US + time_of_day
        us += period.seconds * 1_000_000
        return None if us > _LAST_US else us


def _shift(days: int, months: int) -> int | None:
    """The epoch day ``months`` calendar months after epoch day ``days``, the day clamped to
    the month's length (``periods._add_months``); None past the year 9999."""
    start = date.fromordinal(days + _EPOCH_ORDINAL)
    index = start.year * 12 + (start.month - 1) + months
    year, month0 = divmod(index, 12)
    if year > 9999:
        return None
    day = min(start.day, calendar.monthrange(year, month0 + 1)[1])
    return date(year, month0 + 1, day).toordinal() - _EPOCH_ORDINAL
