"""When the daemon sweeps, and the sweep itself (the clock guard is asked first).

A sweep is due when something asked for one (``needed``: new recordings past their deadline,
a released breaker, a hold released, a reload), when the earliest deadline after the last sweep
has passed, or when recordings kept back (still settling, open for writing, a failed erase) are
to be looked at again (``RETRY`` later: they keep no future deadline to wake the loop). A failed
erase's own file events (its writes, its close of a writable descriptor, its restored mtime)
re-index the file, due as before: that alone asks for no sweep, or a failing erase would be
tried again at once, over and over, each time logged and audited; it waits for ``RETRY``. A sweep
yields to signals and admin commands between batches (``urgent``) and is then needed again.
Before a sweep the clock guard looks at the wall clock; while it cannot be trusted nothing is
erased and the guard is asked again every ``RETRY``. Also here: holds that expire (which may
make recordings due) and S3 legal holds made to follow recd's before a sweep.

With a catalogue shared by several hosts (``catalogue.shared``) the guard also compares this
host's clock with the database server's, and each sweep begins by settling the interrupted
erases whose claim expired (``Recovery``: a node that died mid-erase), of the sources this
node serves and has an eraser for; the others' are left to their nodes. A shared catalogue is
swept at least every ``TAKEOVER``, so a dead node's erases are settled within about one lease
even when no deadline or event asks for a sweep. A node that erases an S3 source another node
lists also wakes every ``poll`` of that source (``listed_elsewhere``), to learn the deadlines of
keys the lister has just indexed and erase its share at their time. On one host (SQLite)
recovery runs at start only, as nothing else could have left an intent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from recd.core.holds import next_expiry
from recd.core.times import parse_time
from recd.daemon.clockguard import ClockGuard, Shared
from recd.daemon.runtime import Runtime
from recd.ports.clock import Clock, Telemetry
from recd.ports.notifier import Notifier
from recd.service.duty import Serving
from recd.service.mirror import HoldMirror
from recd.service.recovery import Recovery
from recd.service.sweep import Sweeper, SweepReport

logger = logging.getLogger(__name__)

#: How soon to look again at recordings that are due but were kept back (still settling, open
#: for writing, a failed erase): they keep no future deadline to wake the loop.
RETRY = timedelta(seconds=30)
#: How often, at least, a shared catalogue is swept: each sweep takes over the interrupted
#: erases of nodes whose claims expired (a small fraction of the 10-minute lease).
TAKEOVER = timedelta(minutes=1)


class DaemonSweeper(Sweeper):
    """The daemon's sweeps: a tripped breaker's log line names recctl's release command."""

    release_hint = "recctl breaker release --licence {licence}"


class Sweeps:
    """The sweep schedule over the current runtime; ``needed`` may be set by anyone."""

    def __init__(
        self,
        clock: Clock,
        notifier: Notifier,
        guard: ClockGuard,
        urgent: Callable[[], bool],
        changed: Callable[[], None],
    ) -> None:
        self.clock = clock
        self.notifier = notifier
        self.guard = guard
        self._urgent = urgent  # a signal or an admin command waits: stop between batches
        self._changed = changed  # the clock guard's pause began or ended: publish
        self.needed = True
        self.retry_at: datetime | None = None
        self.swept_until: datetime | None = None  # ``now`` of the last sweep
        self.failed: frozenset[str] = frozenset()  # recordings whose erase the last sweep failed

    def indexed_due(self, ids: set[str]) -> None:
        """Recordings indexed from file events are due: sweep, unless each of them is one whose
        erase just failed (those events are the failed erase's own; ``RETRY`` tries it again)."""
        if ids - self.failed:
            self.needed = True

    def clock_ok(self, runtime: Runtime) -> bool:
        """The clock guard: pause erasing while the wall clock cannot be trusted."""
        last = runtime.audit.last()
        before = self.guard.problem
        safety, catalogue = runtime.config.safety, runtime.catalogue
        shared = Shared(catalogue.server_time, safety.max_clock_skew) if catalogue.shared else None
        ok = self.guard.check(
            None if last is None else parse_time(last.time), safety.max_clock_jump, shared
        )
        if self.guard.problem != before:
            self._changed()
        if self.guard.problem is not None:
            self.retry_at = self.guard.reading.wall + RETRY
            self.notifier.notify(status=f"erasing paused: {self.guard.problem.text}")
        return ok

    def due(self, runtime: Runtime) -> bool:
        if self.needed:
            return True
        now = self.clock.now()
        if self.retry_at is not None and self.retry_at <= now:
            return True
        deadline = runtime.catalogue.next_deadline(after=self.swept_until or now)
        return deadline is not None and deadline <= now

    def waits(self, runtime: Runtime, now: datetime) -> list[float]:
        """Seconds until the next deadline and the next look at what was kept back."""
        waits = []
        deadline = runtime.catalogue.next_deadline(after=self.swept_until or now)
        if deadline is not None:
            waits.append((deadline - now).total_seconds())
        if self.retry_at is not None:
            waits.append((self.retry_at - now).total_seconds())
        if runtime.catalogue.shared:
            waits += listed_elsewhere(runtime)
        return waits

    def run(
        self, runtime: Runtime, telemetry: Telemetry, reindex: Callable[[str, str], None]
    ) -> SweepReport:
        """Sweep now (the caller checked that erasing may go on)."""
        self.needed = False
        rt = runtime
        if rt.catalogue.shared:  # a dead node's erases, before its recordings are swept
            ports = (rt.catalogue, rt.audit, self.clock, rt.erasers, telemetry)
            Recovery(rt.config, *ports, serves=rt.duty.erases).run(should_stop=self._urgent)
        sweeper = DaemonSweeper(
            rt.config,
            rt.catalogue,
            rt.audit,
            self.clock,
            rt.erasers,
            telemetry=telemetry,
            reindex=reindex,
            serves=rt.duty.erases,
        )
        # File events (our own erasures make some) wait for the sweep; signals and admin
        # commands do not.
        report = sweeper.run(should_stop=self._urgent)
        self.swept_until = report.now
        self.failed = frozenset(report.failed_ids)
        if report.interrupted:
            self.needed = True  # the rest after the event that interrupted it
        kept = sum(sum(t.kept.values()) for t in report.licences.values())
        self.retry_at = report.now + RETRY if kept or report.failed else None
        if rt.catalogue.shared and self.retry_at is None:
            self.retry_at = report.now + TAKEOVER
        if report.erased or report.failed:
            logger.info("sweep: %d erased, %d failed", report.erased, report.failed)
        return report


def listed_elsewhere(runtime: Runtime) -> list[float]:
    """The poll interval (seconds) of each S3 source this node erases but another node lists:
    waking as often as the lister polls, this node learns the deadlines of newly listed keys
    in time to erase its share of them at their deadline, not at its next takeover look."""
    node = runtime.config.daemon.node
    return [
        source.poll.total_seconds()
        for source in runtime.config.sources
        if source.type == "s3"
        and source.on_node(node)
        and runtime.duty.serving(source.name) is not Serving.SERVED
    ]


def mirror_holds(runtime: Runtime, clock: Clock, heartbeat: Callable[[], None]) -> None:
    """S3 legal holds follow recd's holds on sources with ``mirror_legal_holds``; before any
    sweep, so a release's erasures do not meet holds recd itself set."""
    config = runtime.config
    if any(s.mirror_legal_holds for s in config.sources):
        rt = runtime
        HoldMirror(config, rt.catalogue, rt.audit, clock, rt.stores, heartbeat).run()


def expiry_due(runtime: Runtime, now: datetime) -> bool:
    """Whether a hold's expiry has come (holds expire even while erasing is paused)."""
    expiry = next_expiry(runtime.catalogue.holds())
    return expiry is not None and expiry <= now
