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
