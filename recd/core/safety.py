"""Mass-deletion breaker and clock-guard decisions from counts and clock readings (SPEC 7)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class SafetySettings:
    """The `[safety]` table."""

    max_due_fraction: float = 0.25
    min_breaker_count: int = 1000
    max_clock_jump: timedelta = timedelta(hours=1)
    #: How far the wall clock at start may be ahead of the newest time recd can trust: a quiet
    #: weekend plus a reboot.
    max_clock_gap: timedelta = timedelta(days=3)
    #: How far a host's clock may differ from a shared catalogue's database server's: well
    #: within the claims' lease (10 minutes), and more than NTP ever leaves between two hosts.
    max_clock_skew: timedelta = timedelta(seconds=60)


def breaker_trips(due: int, total: int, settings: SafetySettings) -> bool:
    """True when erasing ``due`` of a licence's ``total`` recordings at once looks like a mistake.

    The breaker trips when the due count is above ``max_due_fraction`` of the licence's
    recordings and at least ``min_breaker_count`` (SPEC section 7): a licence with a handful of
    recordings never trips it, and neither does a large licence's ordinary daily turnover.
    """
    return due >= max(settings.min_breaker_count, 1) and due > settings.max_due_fraction * total


@dataclass(frozen=True, slots=True)
class ClockReading:
    """The wall clock (aware UTC) and the monotonic clock (seconds), read together."""

    wall: datetime
    mono: float


class ClockPause(StrEnum):
    """Why the clock guard pauses erasing; the value is the metric's ``reason`` label."""

    JUMP = "jump"  # the wall clock ran ahead of the monotonic clock
    BEHIND_AUDIT = "behind-audit"  # it is behind the newest audit entry
    START_GAP = "start-gap"  # at start it was far ahead of everything recd can trust
    DATABASE_SKEW = "database-skew"  # it differs from the shared catalogue's server's clock


@dataclass(frozen=True, slots=True)
class ClockProblem:
    """A clock-guard pause: its reason code and the sentence people read."""

    reason: ClockPause
    text: str


def clock_problem(
    reference: ClockReading,
    now: ClockReading,
    last_audit: datetime | None,
    max_jump: timedelta,
    slack: timedelta = timedelta(0),
) -> ClockProblem | None:
    """Why erasing must pause, or None when the wall clock can be trusted (SPEC section 7).

    ``reference`` is the last reading found consistent. The wall clock may not run ahead of
    where the monotonic clock says it should be by more than ``max_jump`` (a clock stepped
    forward would make recordings due early), nor behind the newest audit entry by more than
    ``slack`` (time moved backwards; ``slack`` is 0 on one host, and on a shared chain, whose
    newest entry may be another host's, the clock difference hosts are allowed). The caller
    keeps its reference while a problem lasts, so a pause ends only when the clock comes back
    into line, or when recd is restarted (an administrator's decision).
    """
    expected = reference.wall + timedelta(seconds=now.mono - reference.mono)
    ahead = now.wall - expected
    if ahead > max_jump:
        return ClockProblem(
            ClockPause.JUMP,
            f"wall clock jumped {_span(ahead)} ahead of the monotonic clock "
            f"(more than safety.max_clock_jump {_span(max_jump)})",
        )
    if last_audit is not None and now.wall < last_audit - slack:
        behind = _span(last_audit - now.wall)
        return ClockProblem(
            ClockPause.BEHIND_AUDIT, f"wall clock is {behind} behind the last audit entry"
        )
    return None


def skew_problem(local: datetime, server: datetime, max_skew: timedelta) -> ClockProblem | None:
    """Why erasing must pause, or None: this host's wall clock (``local``) differs from the
    shared catalogue's database server's (``server``, read at the same moment) by more than
    ``max_skew``. Every node counts deadlines and claims' leases in its own clock, so one
    ahead would erase early and take live claims for expired; one behind would find the
    others' audit entries in its future."""
    skew = local - server
    if abs(skew) <= max_skew:
        return None
    side = "ahead of" if skew > timedelta(0) else "behind"
    return ClockProblem(
        ClockPause.DATABASE_SKEW,
        f"wall clock differs from the database server's by {int(abs(skew).total_seconds())} s "
        f"({side} it; more than safety.max_clock_skew {_span(max_skew)})",
    )


def start_gap_problem(
    now: datetime, evidence: Mapping[str, datetime | None], max_gap: timedelta
) -> str | None:
    """Why erasing must not start, or None: the wall clock at start (``now``) is more than
    ``max_gap`` ahead of the newest time recd can trust (SPEC section 7).

    ``evidence`` names each trusted time: the last audit entry, the newest recording (files'
    change times, which users cannot set back, and S3 LastModified, which the server sets).
    Values after ``now`` are ignored (a clock set back is the running guard's business), and so
    is missing evidence; with none at all (a new installation) there is nothing to compare.
    """
    known = {name: when for name, when in evidence.items() if when is not None and when <= now}
    trusted = trusted_time(now, evidence)
    if trusted is None:
        return None
    gap = now - trusted
    if gap <= max_gap:
        return None
    return (
        f"wall clock is {_rough_span(gap)} ahead of {' and '.join(known)} "
        f"(more than safety.max_clock_gap {_span(max_gap)})"
    )


def trusted_time(now: datetime, evidence: Mapping[str, datetime | None]) -> datetime | None:
    """The newest of the ``evidence`` times that is not after ``now``; None without any."""
    known = [when for when in evidence.values() if when is not None and when <= now]
    return max(known) if known else None


def _rough_span(delta: timedelta) -> str:
    """The largest whole unit: ``10y``, ``4d``, ``5h``, ``12m``, ``30s``."""
    seconds = int(delta.total_seconds())
    for unit, size in (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
