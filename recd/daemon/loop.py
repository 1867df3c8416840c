"""The long-running daemon's lifecycle: start, loop, reload, stop (SPEC sections 3, 7 and 9).

One thread owns all state and is the only writer. Signal handlers, the inotify watchers and
the admin socket's connection threads only put items on one ``SimpleQueue``; the loop blocks in
``get(timeout=...)`` until the earliest of: an item, the next deadline, the next full rescan or
the next watchdog ping. No polling interval: a recording is erased when its deadline comes.

- start: open the state (``recd.daemon.opening``), serve the admin socket and metrics
  (``endpoints``), ``READY=1``, start watching, then reconcile every source fully (progress in
  ``STATUS=``, ``scans``), finish interrupted request runs (``runs``) and sweep (``sweeps``).
- loop: each wake-up is one ``step(item)``, which tests drive directly with a fake clock.
  File events are taken in batches; a watcher overflow or a new directory triggers a
  reconciliation of the source or subtree, since watchdog's events alone cannot be trusted.
- SIGHUP: ``RELOADING=1``, load the configuration again; a bad one is refused with every
  problem logged and the old one kept; ``READY=1`` either way.
- a catalogue database (PostgreSQL) that cannot be reached, at start or later: no runtime,
  nothing scanned or erased, admin commands answered with why, opened again with backoff
  (``dbwait``); a SIGHUP reloads in ``reloading``.
- pauses: while the wall clock cannot be trusted (``clockguard``), the audit log cannot be
  written (``outage``) or does not verify (``logcheck``), nothing is erased: one log line,
  ``STATUS=erasing paused: ...``, ``recctl status`` and a metric, while recd keeps serving
  and indexing; what other threads read is published (``publish``) as it changes.
- SIGTERM/SIGINT: ``STOPPING=1``; a sweep in progress finishes the batch in flight (whose
  intents are already durable) and stops; then the state is closed and recd exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TypeVar

from recd.config.load import Config, load
from recd.core.times import format_human_time
from recd.daemon import reloading, waits
from recd.daemon.admin.backup import Backups
from recd.daemon.admin.dispatch import Admin
from recd.daemon.admin.legal import Legal, Run
from recd.daemon.admin.records import DaemonState
from recd.daemon.build import root_pins
from recd.daemon.clockguard import ClockGuard
from recd.daemon.collector import Snapshot
from recd.daemon.control import Handler
from recd.daemon.dbwait import CatalogueWait
from recd.daemon.endpoints import Endpoints
from recd.daemon.inbox import Command, Inbox
from recd.daemon.logcheck import LogCheck
from recd.daemon.metrics import Metrics
from recd.daemon.opening import Opening
from recd.daemon.outage import AuditOutage
from recd.daemon.publish import catalogue_reader, daemon_state, scrape_snapshot
from recd.daemon.runs import RequestRuns
from recd.daemon.runtime import Runtime
from recd.daemon.scans import Scans
from recd.daemon.serving import raise_fd_limit
from recd.daemon.signals import SIGNALS, Event, signals_blocked
from recd.daemon.sweeps import Sweeps, expiry_due, mirror_holds
from recd.daemon.watching import WatchBatch, Watching
from recd.errors import CatalogueCorrupt, CatalogueUnreachable, ExitCode, NotAllowedInState
from recd.ports.audit import AuditLog
from recd.ports.clock import Clock
from recd.ports.notifier import Notifier
from recd.ports.reader import CatalogueReader
from recd.ports.records import Actor
from recd.ports.source import WatchEvent
from recd.service import breakers
from recd.service.holds import Holds
from recd.service.indexing import IndexStats
from recd.service.rebuild import catch_up
from recd.service.requests import Requests
from recd.service.sweep import SweepReport

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Daemon:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        notifier: Notifier,
        *,
        watchdog: float | None = None,
        loader: Callable[[Path], Config] = load,
    ) -> None:
        self.config = config
        self.clock = clock
        self.notifier = notifier
        self.watchdog = watchdog
        self.loader = loader
        self.inbox = Inbox()  # where watchers, signals and admin threads put items
        self.stopping = False
        self._runtime: Runtime | None = None
        self.last_ping = clock.monotonic()
        self.endpoints = Endpoints(self.snapshot, self._admin)
        # The source roots as resolved and pinned at start: kept across reloads (safefs.Root).
        roots = root_pins()
        self.watching = Watching(self.inbox.queue.put, self.endpoints.count_overflow)
        self._state = DaemonState(clock.now(), os.getpid(), None, ())
        self.guard = ClockGuard(clock)
        self.sweeps = Sweeps(clock, notifier, self.guard, self._urgent, self._publish)
        self.outage = AuditOutage(clock, self.endpoints.count_audit_failure, self._changed)
        self.logcheck = LogCheck(clock)
        self.dbwait = CatalogueWait(clock)  # the catalogue's database cannot be reached
        self.runs = RequestRuns(self.requests, self._urgent)
        self.scans = Scans(
            lambda: self.runtime,
            clock,
            notifier,
            heartbeat=self._heartbeat,
            telemetry=self.endpoints.telemetry,
            changed=self._publish,
            scanned=self._scanned,
        )
        parts = (self.guard, self.logcheck, self.outage)  # what opening the state sets
        self.opening = Opening(clock, notifier, roots, parts, self._audit_failed)

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None and self.dbwait.problem is not None:
            raise self.dbwait.unreachable()  # an admin command while the database is away
        assert self._runtime is not None, "start() first"
        return self._runtime

    @property
    def metrics(self) -> Metrics | None:  # once served
        return self.endpoints.metrics

    @property
    def clock_problem(self) -> str | None:
        """Why the clock guard pauses erasing, if it does."""
        return None if self.guard.problem is None else self.guard.problem.text

    @property
    def audit_problem(self) -> str | None:  # why the audit log cannot be written, if so
        return self.outage.problem

    @property
    def log_problem(self) -> str | None:
        """The audit log does not verify or does not hold the catalogue's mark: erase
        nothing until an administrator acknowledges it (``recctl audit acknowledge``)."""
        return self.logcheck.problem

    def handle_signal(self, signum: int, frame: FrameType | None) -> None:
        """Only enqueue: no logging, no locks, no I/O in a signal handler."""
        self.inbox.signal(SIGNALS[signal.Signals(signum)])

    def install_signals(self) -> None:
        for signum in SIGNALS:  # handle_signal only enqueues
            signal.signal(signum, self.handle_signal)

    def run(self) -> ExitCode:
        try:
            self.start()
            while not self.stopping:
                try:
                    self.step(self.next_event())
                except CatalogueCorrupt as exc:
                    self._catalogue_corrupt(exc)
        finally:
            self.stop()
        return ExitCode.OK

    def start(self) -> None:
        before, after = raise_fd_limit()  # connections are bounded; erasing must never want
        if after != before:
            logger.info("open file limit raised from %d to %d", before, after)
        try:
            self.open_state(self.config)
        except CatalogueCorrupt as exc:  # a row met at start, after the open's own checks
            self.open_state(self.config, corrupt=exc)
        except CatalogueUnreachable as exc:  # served, READY, and opened again with backoff
            self.dbwait.failed(exc)
        self.serve(self.config)
        self.endpoints.count_rebuilds(self.opening.rebuilt)
        self._publish()  # before READY: a status asked at once shows the first scan pending
        if self._runtime is None:
            self.notifier.notify(ready="1", status=self.status())
            return
        self.notifier.notify(ready="1", status="scanning sources")
        self.watch()
        self._publish()
        try:
            self._first_work()
        except CatalogueCorrupt as exc:
            self._catalogue_corrupt(exc)
        except CatalogueUnreachable as exc:
            self.catalogue_lost(exc)
        if self.log_problem is not None:
            self.notifier.notify(status=self.status())
        self._mark_catalogue()

    def _first_work(self) -> None:
        """After a start (or the database's return): scan fully, finish interrupted runs, sweep."""
        self.scans.scan_all()
        with self._audit_guard():
            if self.audit_problem is None and self.log_problem is None:
                self.runs.resume()  # a run a crash or a stop cut short finishes first
                self._sweep()

    def catalogue_lost(self, exc: CatalogueUnreachable) -> None:
        """The catalogue's database went away (or did not come back): close the runtime and
        open it again with backoff (``dbwait``); admin commands are answered with why."""
        self.watching.stop()
        self.close_runtime()
        self.dbwait.failed(exc)
        self._changed()

    def _catalogue_back(self) -> None:
        """A try at the retry time: the state opened again, or the wait goes on."""
        try:
            self.open_state(self.config)
        except CatalogueUnreachable as exc:
            self.dbwait.failed(exc)
            return
        self.dbwait.ended()
        self.endpoints.count_rebuilds(self.opening.rebuilt)
        self.watch()
        self._changed()
        self._first_work()

    def stop(self) -> None:
        self.notifier.notify(stopping="1", status="stopping")
        self.inbox.close()
        self.runs.abandon()
        self.watching.stop()
        self.endpoints.stop()
        self._mark_catalogue()
        self.close_runtime()
        logger.info("stopped")

    def close_runtime(self) -> None:
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.close()

    def _catalogue_corrupt(self, exc: CatalogueCorrupt) -> None:
        """A corrupt page or row met while running: the catalogue is moved aside and a new
        one opened and rebuilt (holds from the log first; then a full scan and a sweep),
        in this process: the admin socket and the metrics stay up. A new catalogue found
        corrupt at once (a failing disk) stops recd."""
        self.watching.stop()
        self.close_runtime()
        self.open_state(self.config, corrupt=exc)
        self.endpoints.count_rebuilds(self.opening.rebuilt)
        self.watch()
        self.scans.next_scan = 0.0
        self.sweeps.needed = True
        self._publish()
        self.notifier.notify(status="catalogue rebuilt; scanning sources")

    def open_state(
        self, config: Config, corrupt: CatalogueCorrupt | None = None, *, reload: bool = False
    ) -> None:
        max_gap = self.config.safety.max_clock_gap
        self._runtime = self.opening.open(config, max_gap, corrupt, reload=reload)
        self.config = config

    def acknowledge_log(self, actor: str, reason: str) -> tuple[int, str | None]:
        """`recctl audit acknowledge`: take the audit log as it is; erasing resumes. Returns
        the seq of the ``audit.acknowledged`` entry and the problem it ended."""
        seq, problem = self.logcheck.acknowledge(self.runtime, actor, reason)
        self.sweeps.needed = self.runs.resume_needed = True
        self._changed()
        return seq, problem

    def _mark_catalogue(self) -> None:
        """Between steps: the catalogue marked at the audit log's last entry (``logcheck``)."""
        self.logcheck.mark(self._runtime, waiting=self.outage.rebuild is not None)

    def watch(self) -> None:
        with signals_blocked():
            self.watching.start(self.runtime)

    def serve(self, config: Config, old: Config | None = None) -> None:
        """Serve the admin socket and metrics (again, if their settings changed on reload)."""
        with signals_blocked():
            self.endpoints.serve(config, old)

    def _admin(self) -> Handler:
        admin = Admin(self)
        admin.commands |= Legal(self).commands
        admin.commands |= Backups(self).commands
        return admin.handle

    def next_event(self) -> object:
        """The next item, or None when it is time to look at deadlines and rescans."""
        return self.inbox.get(0.0 if self.inbox.held else self.timeout())

    def timeout(self) -> float:
        """Seconds until the earliest thing the loop must do without being woken."""
        return waits.timeout(self)

    def step(self, item: object) -> None:
        """One wake-up: act on the item, then on whatever is due; a catalogue database lost
        meanwhile is waited for (``catalogue_lost``)."""
        try:
            self._step(item)
        except CatalogueUnreachable as exc:
            self.catalogue_lost(exc)

    def _step(self, item: object) -> None:
        self.inbox.took(item, self.watching.accepts(item))
        if item is Event.STOP:
            self.stopping = True
            logger.info("stopping on signal")
            return
        with self._audit_guard():
            if item is Event.RELOAD:
                self.reload()
            elif isinstance(item, Command):
                item.run()
                self.logcheck.check_command(item)
                item.raise_corrupt()  # told to the admin; the loop moves the catalogue aside
            elif item is not None and self.watching.accepts(item):
                more = self.inbox.more(self.watching.accepts, limit=9_999)
                self._on_file_events(
                    WatchBatch.of(e for e in (item, *more) if isinstance(e, WatchEvent))
                )
        if self._runtime is None:
            if self.dbwait.problem is not None and self.dbwait.due():
                self._catalogue_back()
            self._heartbeat()
            return
        self._notice_audit()  # an admin command's append may have failed (or succeeded)
        if not self._urgent():  # a signal or command waiting behind file events goes first
            with self._audit_guard():
                self._due_work()
        self._mark_catalogue()
        self._heartbeat()

    def _due_work(self) -> None:
        """Rescans, reconciliations, hold expiries, interrupted request runs, the sweep."""
        if self.clock.monotonic() >= self.scans.next_scan:
            self.scans.scan_all()
        for name, under in self.watching.take_reconciles(self.clock.monotonic()):
            self.scans.reconcile(name, under)
        if self.audit_problem is not None and not self._audit_resume():
            return  # nothing that writes the audit log until it can be written again
        if expiry_due(self.runtime, self.clock.now()) and self.holds().expire():
            self.holds_changed()
        if self.log_problem is not None:
            return  # nothing is erased until the audit log is acknowledged
        if self.runs.resume_needed and not self.runs.resume():
            return
        # The clock guard looks at every wake-up: a wall clock stepped back shows no deadline.
        if self.sweeps.clock_ok(self.runtime) and self.sweeps.due(self.runtime):
            self._sweep(checked=True)

    def _on_file_events(self, batch: WatchBatch) -> None:
        due = self.scans.index_events(self.watching.split(batch, self.runtime.sources))
        self.sweeps.indexed_due(due)

    def _scanned(self, name: str, full: bool) -> None:
        """After a scan of source ``name`` (``full``: of all of it, not a subtree)."""
        if full:
            self.watching.scanned(name, self.clock.monotonic())
        if name in self.runtime.stores:
            mirror_holds(self.runtime, self.clock, self._heartbeat)  # what the poll found
        self.sweeps.needed = True
        self._publish()

    def _heartbeat(self) -> None:
        """``WATCHDOG=1`` from the loop when one is due (``watchdog`` is already half of
        systemd's timeout); long scans and sweeps call this as they progress."""
        mono = self.clock.monotonic()
        if self.watchdog is not None and mono - self.last_ping >= self.watchdog:
            self.notifier.notify(watchdog="1")
            self.last_ping = mono

    def reload(self) -> None:  # SIGHUP
        reloading.reload(self)

    def _audit_guard(self) -> contextlib.AbstractContextManager[None]:
        """Turn an append that failed into an audit outage; anything else goes on up."""
        return self.outage.guard(
            lambda: None if self._runtime is None else self._runtime.audit, self._audit_where
        )

    def _notice_audit(self) -> None:
        if self._runtime is not None:
            self.outage.notice(self._runtime.audit, self._audit_where())

    def _audit_failed(self, audit: AuditLog, exc: BaseException) -> None:
        self.outage.failed(audit, exc, self._audit_where())

    def _audit_where(self) -> str:
        return self.config.audit_named

    def _audit_resume(self) -> bool:
        """At the retry time, try to write ``audit.resumed``; True once the log is writable
        again (interrupted erases are then settled, as at start). A failure raises."""
        if not self.outage.due():
            return False
        self.outage.resume(self.runtime, self.config.audit_place)
        self.sweeps.needed = self.runs.resume_needed = True
        self._changed()
        return True

    def confirm_clock(self, actor: str, reason: str | None) -> tuple[datetime, str | None]:
        """`recctl clock confirm`: take the wall clock as it reads now as the reference, ending
        a pause of either kind (a gap at start, a jump or a step back while running)."""
        wall, problem = self.guard.confirm(self.runtime.audit, actor, reason)
        self.sweeps.needed = True
        self._changed()
        return wall, problem

    def _sweep(self, *, checked: bool = False) -> SweepReport | None:
        if self.log_problem is not None:
            self.notifier.notify(status=self.status())
            return None
        if self.audit_problem is not None or (
            not checked and not self.sweeps.clock_ok(self.runtime)
        ):
            return None
        rt, telemetry = self.runtime, self.endpoints.telemetry()
        if rt.config.catalogue.shared:  # what other hosts logged, first
            catch_up(rt.config, rt.catalogue, rt.audit, self.clock)
        report = self.sweeps.run(rt, telemetry, self.scans.reindex)
        self.notifier.notify(status=self.status())
        return report

    def status(self) -> str:
        if self.dbwait.problem is not None:
            return f"erasing paused: {self.dbwait.problem}; retrying"
        for problem in (self.audit_problem, self.log_problem, self.clock_problem):
            if problem is not None:
                return f"erasing paused: {problem}"
        deadline = self.runtime.catalogue.next_deadline(after=self.clock.now())
        when = "none" if deadline is None else format_human_time(deadline)
        return f"next deadline {when}; mode {self.config.daemon.mode}"

    def call_soon(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the loop and wait for its result (from an admin connection thread)."""
        return self.inbox.call(fn)

    def scan_sources(self, names: list[str] | None) -> list[IndexStats]:
        """`recctl scan`: scan ``names`` (None: all served) fully; see ``Scans.scan_sources``."""
        return self.scans.scan_sources(names)

    def release_breaker(self, licence: str, actor: str) -> int:
        rt, now = self.runtime, self.clock.now()
        released = breakers.release_breaker(rt.catalogue, rt.audit, licence, actor, now)
        self.sweeps.needed = True
        return released.due

    def holds(self) -> Holds:
        return Holds(self.config, self.runtime.catalogue, self.runtime.audit, self.clock)

    def requests(self) -> Requests:
        rt = self.runtime
        ports = (rt.catalogue, rt.audit, self.clock, rt.erasers, self.endpoints.telemetry())
        return Requests(self.config, *ports, reindex=self.scans.reindex)

    def holds_changed(self) -> None:
        mirror_holds(self.runtime, self.clock, self._heartbeat)
        self.sweeps.needed = True

    def run_request(self, request_id: str, actor: Actor) -> Future[Run]:
        """Start (or continue) a request's run; the future ends when the run does, which may
        be after other work: an urgent item interrupts it between batches, the loop resumes it."""
        if self.log_problem is not None:
            raise NotAllowedInState(f"erasing paused: {self.log_problem}")
        return self.runs.start(request_id, actor)

    def _urgent(self) -> bool:
        self._heartbeat()
        return self.inbox.urgent

    def reader(self) -> contextlib.AbstractContextManager[CatalogueReader]:
        return catalogue_reader(self.config)

    def state(self) -> DaemonState:
        return self._state

    def _changed(self) -> None:
        """A pause began or ended: publish it and say so in ``STATUS=``."""
        self._publish()
        self.notifier.notify(status=self.status())

    def _publish(self) -> None:
        """Replace the state other threads read (one attribute store: atomic)."""
        problems = (self.guard.problem, self.audit_problem, self.log_problem, self.dbwait.problem)
        self._state = daemon_state(
            self._state, self.config, self._runtime, self.scans, self.watching, problems
        )

    def snapshot(self) -> Snapshot:
        """The metrics collector's view, at scrape time (from the metrics server's thread)."""
        runtime = self._runtime  # read once: a reload may swap it meanwhile
        with self.reader() as reader:
            return scrape_snapshot(self._state, reader, self.clock.now(), self.config, runtime)
