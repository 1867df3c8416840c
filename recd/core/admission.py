"""Who an endpoint lets in, when it drops a client, and when it says so (issue 13, point 10).

The admin socket and the metrics port serve one request per connection. A client may hold a
connection only while it is useful: it must send its request within ``Limits.request`` seconds
(pausing at most ``Limits.idle`` between bytes) and take the reply within ``Limits.reply``
seconds (same pause). An endpoint holds at most ``Limits.connections`` at once; when it is full,
a newcomer displaces the oldest connection still sending its request (a client that talks sends
its request at once, so the one displaced is the slowest, never a prompt one), and is refused
when no such connection exists. Whatever the counts, the endpoint never takes the last
``Limits.fd_reserve`` file descriptors: erasing, the catalogue and the audit log need them.

Refusals come in bursts (1,100 connections in a second), and a line per refusal would flood the
journal: ``Burst`` decides when to log (the first of a burst, then one summary once it is over).
Pure: every function is given the monotonic ``now``; the sockets are ``recd.daemon.serving``'s.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """What one endpoint allows; seconds are monotonic, sizes bytes."""

    connections: int = 32  # held at once
    idle: float = 5.0  # the longest pause while sending the request or taking the reply
    request: float = 10.0  # from accept to the whole request
    reply: float = 60.0  # from the reply being ready to its last byte taken
    max_request: int = 64 * 1024
    fd_reserve: int = 128  # descriptors never taken for a connection


class Phase(enum.Enum):
    READING = "reading"  # the client is sending its request
    HANDLING = "handling"  # recd is working out the reply: the client waits, no timeout
    WRITING = "writing"  # the client is taking the reply


class Admission(enum.Enum):
    ACCEPT = "accept"
    DISPLACE = "displace"  # accept, closing the oldest connection still reading its request
    LIMIT = "limit"  # refuse: every connection held is past its request
    DESCRIPTORS = "descriptors"  # refuse: too few file descriptors left


def admit(held: int, reading: int, free_fds: int, limits: Limits) -> Admission:
    """What to do with a new connection when ``held`` are open, ``reading`` of them still
    sending their request, and ``free_fds`` descriptors are left below the process' limit."""
    if free_fds <= limits.fd_reserve:
        return Admission.DESCRIPTORS
    if held < limits.connections:
        return Admission.ACCEPT
    if reading > 0:
        return Admission.DISPLACE
    return Admission.LIMIT


@dataclass(frozen=True, slots=True)
class Timing:
    """When a connection entered its phase and last made progress (monotonic seconds)."""

    phase: Phase
    since: float
    active: float

    def expiry(self, limits: Limits) -> float | None:
        """The monotonic time at which the connection is dropped unless it makes progress;
        None while recd is handling its request (the client is not the one holding it up)."""
        if self.phase is Phase.HANDLING:
            return None
        total = limits.request if self.phase is Phase.READING else limits.reply
        return min(self.since + total, self.active + limits.idle)

    def expired(self, now: float, limits: Limits) -> str | None:
        """Why the connection must be dropped at ``now`` (a phrase for the log), or None."""
        expiry = self.expiry(limits)
        if expiry is None or now < expiry:
            return None
        what = "send its request" if self.phase is Phase.READING else "take its reply"
        total = limits.request if self.phase is Phase.READING else limits.reply
        if now >= self.since + total:
            return f"did not {what} within {total:g} s"
        return f"paused {limits.idle:g} s while it should {what}"


@dataclass(slots=True)
class Burst:
    """Occurrences of one thing to report (a refusal, a timeout) grouped into bursts: a burst
    ends after ``quiet`` seconds without one. ``note`` says whether to log (the first of a
    burst); ``ended`` gives the burst's count and length once it is over, for one summary."""

    quiet: float = 10.0
    started: float | None = None
    last: float = 0.0
    count: int = 0

    def note(self, now: float) -> bool:
        """Count one at ``now``; True when it starts a burst (log it)."""
        first = self.started is None
        if first:
            self.started, self.count = now, 0
        self.count += 1
        self.last = now
        return first

    def ended(self, now: float) -> tuple[int, float] | None:
        """(count, seconds from first to last) once the burst is over at ``now``, once."""
        if self.started is None or now < self.last + self.quiet:
            return None
        summary = (self.count, self.last - self.started)
        self.started, self.count = None, 0
        return summary

    def deadline(self) -> float | None:
        """When the current burst ends if nothing more happens; None outside a burst."""
        return None if self.started is None else self.last + self.quiet
