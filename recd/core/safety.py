"""Mass-deletion breaker and clock-guard decisions from counts and clock readings (SPEC 7)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


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
