"""recd.core.safety: when the mass-deletion breaker trips, when the wall clock is not to be trusted
(a jump, behind the audit log) and when a start after a gap needs a pause."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from recd.core.safety import (
    ClockPause,
    ClockProblem,
    ClockReading,
    SafetySettings,
    breaker_trips,
    clock_problem,
    skew_problem,
    start_gap_problem,
)
from tests.core.helpers import NOW


@pytest.mark.parametrize(
    ("due", "total", "trips"),
    [
        (999, 1000, False),  # below the minimum count, however large a fraction
        (1000, 1000, True),
        (1000, 4000, False),  # exactly a quarter is not more than a quarter
        (1001, 4000, True),
        (2000, 100_000, False),  # ordinary turnover of a large licence
        (0, 0, False),
    ],
)
def test_breaker(due: int, total: int, trips: bool) -> None:
    assert breaker_trips(due, total, SafetySettings()) is trips


def test_breaker_with_zero_minimum_still_needs_one_due() -> None:
    settings = SafetySettings(max_due_fraction=0.25, min_breaker_count=0)
    assert breaker_trips(0, 0, settings) is False
    assert breaker_trips(1, 2, settings) is True


def reading(minutes: float, mono: float) -> ClockReading:
    return ClockReading(NOW + timedelta(minutes=minutes), mono)


@pytest.mark.parametrize(
    ("now", "last_audit", "expected"),
    [
        (reading(10, 600), None, None),  # both clocks moved 10 minutes
        (reading(70, 600), None, None),  # 60m ahead: exactly the limit is allowed
        (reading(71, 600), None,
         ClockProblem(ClockPause.JUMP, "wall clock jumped 61m ahead of the monotonic clock "
                      "(more than safety.max_clock_jump 1h)")),
        (reading(-5, 600), None, None),  # behind the monotonic clock, but not the audit log
        (reading(10, 600), NOW + timedelta(minutes=12),
         ClockProblem(ClockPause.BEHIND_AUDIT, "wall clock is 2m behind the last audit entry")),
        (reading(0, 0.5), NOW + timedelta(seconds=30),
         ClockProblem(ClockPause.BEHIND_AUDIT, "wall clock is 30s behind the last audit entry")),
    ],
)  # fmt: skip
def test_clock_problem(
    now: ClockReading, last_audit: datetime | None, expected: ClockProblem | None
) -> None:
    reference = ClockReading(NOW, 0.0)
    assert clock_problem(reference, now, last_audit, timedelta(hours=1)) == expected


def test_behind_the_audit_log_within_the_slack_is_not_a_problem() -> None:
    """On a shared chain the newest entry may be another host's, stamped by its clock."""
    reference, slack = ClockReading(NOW, 0.0), timedelta(minutes=2)
    now = reading(10, 600)
    jump = timedelta(hours=1)
    assert clock_problem(reference, now, NOW + timedelta(minutes=12), jump, slack) is None
    assert clock_problem(reference, now, NOW + timedelta(minutes=13), jump, slack) == (
        ClockProblem(ClockPause.BEHIND_AUDIT, "wall clock is 3m behind the last audit entry")
    )


SKEW = timedelta(seconds=60)


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (NOW, None),
        (NOW + SKEW, None),  # exactly the limit is allowed, either way
        (NOW - SKEW, None),
        (NOW + timedelta(minutes=5),
         "wall clock differs from the database server's by 300 s "
         "(ahead of it; more than safety.max_clock_skew 1m)"),
        (NOW - timedelta(seconds=61, microseconds=500),
         "wall clock differs from the database server's by 61 s "
         "(behind it; more than safety.max_clock_skew 1m)"),
    ],
)  # fmt: skip
def test_skew_problem(local: datetime, expected: str | None) -> None:
    problem = skew_problem(local, NOW, SKEW)
    if expected is None:
        assert problem is None
    else:
        assert problem == ClockProblem(ClockPause.DATABASE_SKEW, expected)


GAP = timedelta(days=3)
AUDIT = "the last audit entry"
NEWEST = "the newest recording"


@pytest.mark.parametrize(
    ("now", "evidence", "expected"),
    [
        (NOW, {AUDIT: None, NEWEST: None}, None),  # a new installation: nothing to compare
        (NOW, {AUDIT: NOW - GAP, NEWEST: None}, None),  # a quiet weekend is not a problem
        (NOW + timedelta(days=3653), {AUDIT: NOW, NEWEST: NOW - timedelta(hours=1)},
         "wall clock is 10y ahead of the last audit entry and the newest recording "
         "(more than safety.max_clock_gap 3d)"),
        (NOW, {AUDIT: NOW - timedelta(days=4, hours=5), NEWEST: None},
         "wall clock is 4d ahead of the last audit entry (more than safety.max_clock_gap 3d)"),
        # the newest trusted time counts: a recent recording vouches for a quiet audit log
        (NOW, {AUDIT: NOW - timedelta(days=40), NEWEST: NOW - timedelta(days=1)}, None),
        # times after now are ignored (a clock set back is the running guard's business)
        (NOW, {AUDIT: NOW + timedelta(days=1), NEWEST: NOW - timedelta(days=5)},
         "wall clock is 5d ahead of the newest recording (more than safety.max_clock_gap 3d)"),
        (NOW, {AUDIT: NOW + timedelta(days=1), NEWEST: None}, None),
        (NOW, {AUDIT: NOW - GAP - timedelta(seconds=1), NEWEST: None},
         "wall clock is 3d ahead of the last audit entry (more than safety.max_clock_gap 3d)"),
    ],
)  # fmt: skip
def test_start_gap_problem(
    now: datetime, evidence: dict[str, datetime | None], expected: str | None
) -> None:
    assert start_gap_problem(now, evidence, GAP) == expected
