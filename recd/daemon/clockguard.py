"""The daemon's clock guard (SPEC section 7): may the wall clock be trusted to erase by?

It keeps what the decisions in ``recd.core.safety`` need between wake-ups: the last reading
found consistent (the reference), the newest audit time found at start (the floor), and a gap
found at start that only an administrator may end (``recctl clock confirm``). While a problem
lasts the reference stays where it was, so a pause ends only when the wall clock comes back
into line with it, on confirmation, or at a restart. The guard logs a pause's start and end
once each; what else a pause means (status, metrics, retries) is the loop's business. It
reads the clock and nothing else, but for the audit entry of a confirmation and, with a
catalogue shared by several hosts, the database server's clock (``Shared``): erasing also
pauses while this host's clock differs from it by more than ``safety.max_clock_skew``, and the
newest audit entry, which may be another host's, may be ahead of this host's clock by twice
that (each host within it of the server) before the clock counts as set back. A confirmation
does not end a skew: the next look measures it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from recd.core.audit import AuditDraft
from recd.core.safety import (
    ClockPause,
    ClockProblem,
    ClockReading,
    clock_problem,
    skew_problem,
    start_gap_problem,
    trusted_time,
)
from recd.core.times import format_human_time, format_time
from recd.ports.audit import AuditLog
from recd.ports.clock import Clock

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Shared:
    """A catalogue shared by several hosts: its server's clock and the difference allowed."""

    server_time: Callable[[], datetime | None]  # None: no server clock after all
    max_skew: timedelta

    @property
    def slack(self) -> timedelta:
        """How far the newest audit entry (another host's) may be ahead of this host's clock:
        each host may be ``max_skew`` off the server, either way."""
        return 2 * self.max_skew


class ClockGuard:
    """Decides, at each look, whether erasing must pause for the wall clock's sake."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.reading = ClockReading(clock.now(), clock.monotonic())  # the latest look
        self._reference = self.reading  # the last reading found consistent
        self.problem: ClockProblem | None = None  # why erasing is paused, if it is
        self._floor: datetime | None = None  # the newest audit time found at start
        self._start_gap: ClockProblem | None = None  # until an administrator confirms
        self.trusted: datetime | None = None  # the newest time recd trusted at start

    @property
    def unconfirmed(self) -> datetime | None:
        """The time still trusted while a gap found at start awaits confirmation."""
        return None if self._start_gap is None else self.trusted

    @property
    def start_checked(self) -> bool:
        """Whether a pause is already known (a new start check would only repeat it)."""
        return self._start_gap is not None or self.problem is not None

    def note_audit(self, last: datetime) -> None:
        """The newest audit entry found at start: the running guard compares with it, since
        entries recd writes itself may be stamped by a clock set back while it was down."""
        self._floor = last if self._floor is None else max(self._floor, last)

    def check_start(
        self, now: datetime, evidence: Mapping[str, datetime | None], max_gap: timedelta, hint: str
    ) -> None:
        """At start (and reload), before recd writes anything: is the wall clock ``now`` far
        ahead of every trusted time in ``evidence``? Then erasing stays paused until
        confirmed; ``hint`` tells how."""
        problem = start_gap_problem(now, evidence, max_gap)
        self._start_gap = (
            None if problem is None else ClockProblem(ClockPause.START_GAP, f"{problem}; {hint}")
        )
        self.trusted = trusted_time(now, evidence)

    def check(
        self, last_audit: datetime | None, max_jump: timedelta, shared: Shared | None = None
    ) -> bool:
        """Look at the clock (and, with ``shared``, the database server's): True when it can
        be trusted. A pause's start and end are logged once each (and a change of reason);
        ``problem`` says what pauses erasing meanwhile."""
        now = self.reading = ClockReading(self.clock.now(), self.clock.monotonic())
        if self._floor is not None and (last_audit is None or last_audit < self._floor):
            last_audit = self._floor
        slack = timedelta(0) if shared is None else shared.slack
        local = self._start_gap or clock_problem(self._reference, now, last_audit, max_jump, slack)
        problem = local or (None if shared is None else self._skew(shared))
        if _reason(problem) != _reason(self.problem):
            if problem is not None:
                logger.error("erasing paused: %s", problem.text)
            else:
                logger.warning("wall clock consistent again: erasing resumes")
        self.problem = problem  # a skew's text tells the latest difference
        if local is None:  # a skew says nothing of this host's clock against itself
            self._reference = now
        return problem is None

    def _skew(self, shared: Shared) -> ClockProblem | None:
        """The server's clock against this host's read around it (half the round trip)."""
        before = self.clock.now()
        server = shared.server_time()
        if server is None:
            return None
        local = before + (self.clock.now() - before) / 2
        return skew_problem(local, server, shared.max_skew)

    def confirm(
        self, audit: AuditLog, actor: str, reason: str | None
    ) -> tuple[datetime, str | None]:
        """`recctl clock confirm`: the clock as it reads now is the reference from now on,
        ending a pause of either kind; audited (``clock.confirmed``) before it takes effect.
        Returns the time taken and the problem it ended."""
        reading = ClockReading(self.clock.now(), self.clock.monotonic())
        pause = self.problem or self._start_gap
        ended = None if pause is None else pause.text
        details = {"wall": format_time(reading.wall), "problem": ended, "reason": reason}
        audit.append([AuditDraft("clock.confirmed", "clock", details, actor=actor)], reading.wall)
        self._start_gap, self._floor, self._reference = None, None, reading
        self.problem = None
        logger.warning(
            "wall clock %s confirmed by %s%s",
            format_human_time(reading.wall),
            actor,
            "" if ended is None else ": erasing resumes",
        )
        return reading.wall, ended


def _reason(problem: ClockProblem | None) -> ClockPause | None:
    return None if problem is None else problem.reason
