"""Mass-deletion breaker and clock-guard decisions from counts and clock readings (SPEC 7)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class SafetySettings:
    """The `[safety]` table."""

    max_due_fraction: float = 0.25
    min_breaker_count: int = 1000
    max_clock_jump: timedelta = timedelta(hours=1)


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


def clock_problem(
    reference: ClockReading,
    now: ClockReading,
    last_audit: datetime | None,
    max_jump: timedelta,
) -> str | None:
    """Why erasing must pause, or None when the wall clock can be trusted (SPEC section 7).

    ``reference`` is the last reading found consistent. The wall clock may not run ahead of
    where the monotonic clock says it should be by more than ``max_jump`` (a clock stepped
    forward would make recordings due early), nor behind the newest audit entry (time moved
    backwards). The caller keeps its reference while a problem lasts, so a pause ends only when
    the clock comes back into line, or when recd is restarted (an administrator's decision).
    """
    expected = reference.wall + timedelta(seconds=now.mono - reference.mono)
    ahead = now.wall - expected
    if ahead > max_jump:
        return (
            f"wall clock jumped {_span(ahead)} ahead of the monotonic clock "
            f"(more than safety.max_clock_jump {_span(max_jump)})"
        )
    if last_audit is not None and now.wall < last_audit:
        return f"wall clock is {_span(last_audit - now.wall)} behind the last audit entry"
    return None


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
