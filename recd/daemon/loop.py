"""The long-running daemon's lifecycle: start, loop, stop (SPEC sections 3, 7 and 9).

One thread owns all state and is the only writer. Signal handlers, the inotify watchers and
the admin socket's connection threads only put items on one ``SimpleQueue``; the loop blocks in
``get(timeout=...)`` until the earliest of: an item, the next deadline, the next full rescan or
the next watchdog ping. No polling interval: a recording is erased when its deadline comes.

- start: open the state, finish interrupted erasures, apply retention changes, serve the admin
  socket and metrics, ``READY=1``, start watching, then reconcile every source fully (progress
  in ``STATUS=``) and sweep.
- loop: each wake-up is one ``step(item)``, which tests drive directly with a fake clock.
  File events are taken in batches; a watcher overflow or a new directory triggers a
  reconciliation of the source or subtree, since watchdog's events alone cannot be trusted.
- SIGHUP: ``RELOADING=1``, load the configuration again; a bad one is refused with every
  problem logged and the old one kept; ``READY=1`` either way.
- clock guard: before each sweep the wall clock is checked against the monotonic clock and the
  newest audit entry; while it cannot be trusted erasing pauses, with a log line, a metric and
  ``STATUS=erasing paused: ...``, until it is consistent again or recd is restarted.
- audit outage: an append to the audit log that fails (EIO, ENOSPC, EROFS, EDQUOT) pauses
  every erase (none starts without its intent entry, none is reported done without its entry):
  one error line, ``STATUS=erasing paused: ...``, ``recctl status`` and a metric, while recd keeps
  serving and indexing. It retries with capped exponential backoff; the first entry written
  (``audit.resumed``) ends the pause, and interrupted erases are settled as after a crash.
- SIGTERM/SIGINT: ``STOPPING=1``; a sweep in progress finishes the batch in flight (whose
  intents are already durable) and stops; then the state is closed and recd exits 0.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import random
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from prometheus_client import ProcessCollector

from recd import __version__
from recd.config.load import Config, load
from recd.core.audit import AuditDraft
from recd.core.backoff import full_jitter
from recd.core.holds import next_expiry
from recd.core.logcheck import Finding
from recd.core.safety import ClockReading, clock_problem, start_gap_problem, trusted_time
from recd.core.times import format_human_time, format_time, parse_time
from recd.daemon.admin.backup import Backups
from recd.daemon.admin.dispatch import Admin, DaemonState, SourceStatus, metrics_snapshot
from recd.daemon.admin.legal import Legal, Run
from recd.daemon.build import open_reader, root_pins
from recd.daemon.control import ControlServer
from recd.daemon.evidence import UNCONFIRMED, start_evidence
from recd.daemon.inbox import Command, Inbox
from recd.daemon.metrics import Metrics, S3Totals, Snapshot
from recd.daemon.runtime import (
    ACKNOWLEDGE_HINT,
    CONFIRM_HINT,
    Runtime,
    open_runtime,
    rebuilder,
    report_buckets,
)
from recd.daemon.serving import raise_fd_limit
from recd.daemon.watching import WatchBatch, Watching
from recd.errors import (
    CatalogueCorrupt,
    ConfigInvalid,
    DaemonUnavailable,
    ExitCode,
    NotAllowedInState,
    RecdError,
    StateError,
    os_reason,
)
from recd.ports.audit import AuditLog
from recd.ports.clock import NO_TELEMETRY, Clock, Telemetry
from recd.ports.notifier import Notifier
from recd.ports.reader import CatalogueReader
from recd.ports.records import RECD as RECD_ACTOR
from recd.ports.records import Actor, RequestState
from recd.service import breakers
from recd.service.holds import Holds
from recd.service.indexing import Indexer, IndexErrors, IndexStats
from recd.service.mirror import HoldMirror
from recd.service.policies import apply_policies
from recd.service.rebuild import (
    Rebuild,
    acknowledge,
    mark_at_end,
    problem_draft,
    report_problem,
)
from recd.service.recovery import Recovery
from recd.service.requests import Requests
from recd.service.sweep import Sweeper, SweepReport

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: How soon to look again at recordings that are due but were kept back (still settling, open
#: for writing, a failed erase): they keep no future deadline to wake the loop.
RETRY = timedelta(seconds=30)
MAX_SLEEP = 3600.0  # wake at least hourly, so a stepped wall clock is noticed
#: Retries of an audit log that cannot be written: the first after up to 1 s, then twice as
#: long each time (full jitter, recd.core.backoff), never more than 5 minutes apart.
AUDIT_RETRY_BASE = 1.0
AUDIT_RETRY_CAP = 300.0
#: How much longer systemd should wait for the start when a catalogue is rebuilt (10 min).
REBUILD_EXTEND_USEC = 600_000_000


class Event(enum.Enum):
    RELOAD = "reload"
    STOP = "stop"


SIGNALS = {signal.SIGHUP: Event.RELOAD, signal.SIGTERM: Event.STOP, signal.SIGINT: Event.STOP}


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
        self.inbox = Inbox()
        self.events = self.inbox.queue  # where watchers, signals and admin threads put items
        self.stopping = False
        self._runtime: Runtime | None = None
        self._next_scan = 0.0  # monotonic time of the next full rescan
        self._retry_at: datetime | None = None
        self._swept_until: datetime | None = None  # ``now`` of the last sweep
        self._sweep_needed = True
        self._clock_ref = ClockReading(clock.now(), clock.monotonic())
        self.clock_problem: str | None = None  # why erasing is paused, if it is
        self._audit_floor: datetime | None = None  # newest audit time found at start
        self._start_gap: str | None = None  # the clock at start was far ahead: until confirmed
        self._trusted: datetime | None = None  # the newest time recd trusted at start
        self._last_ping = clock.monotonic()
        self._control: ControlServer | None = None
        self.metrics: Metrics | None = None
        self._index_errors = IndexErrors()  # files that failed to index, logged once each
        # The source roots as resolved and pinned at start: kept across reloads (safefs.Root).
        self._roots = root_pins()
        self.watching = Watching(self.events.put, self._count_overflow)
        self._state = DaemonState(clock.now(), os.getpid(), None, ())
        self._scans: dict[str, tuple[datetime, float]] = {}  # source -> last full scan, seconds
        self._scanning: str | None = None
        self._runs: dict[str, list[Future[Run]]] = {}  # request runs admins wait for
        self._resume_needed = False  # request runs an urgent item interrupted
        self.audit_problem: str | None = None  # why the audit log cannot be written, if so
        self._audit_since: datetime | None = None
        self._audit_failures = 0  # failed appends in this outage
        self._audit_retry_at = 0.0  # monotonic time of the next try
        self._audit_pending: list[AuditDraft] = []  # config.loaded of a start during an outage
        self._rebuild: Rebuild | None = None  # holds rebuilt from the log, not yet audited
        # The audit log does not verify or does not hold the catalogue's mark: erase nothing
        # until an administrator acknowledges it (``recctl audit acknowledge``).
        self.log_problem: str | None = None
        self._log_finding: Finding | None = None
        self._marked: int | None = None  # the seq the catalogue was last marked at
        self._mark_frozen = False  # a command failed half-way: leave the rest to the replay
        self._rebuilt: list[str] = []  # why the catalogue was rebuilt, not yet counted

    @property
    def runtime(self) -> Runtime:
        assert self._runtime is not None, "start() first"
        return self._runtime

    # -- signals ------------------------------------------------------------------------------

    def handle_signal(self, signum: int, frame: FrameType | None) -> None:
        """Only enqueue: no logging, no locks, no I/O in a signal handler."""
        self.inbox.signal(SIGNALS[signal.Signals(signum)])

    def install_signals(self) -> None:
        for signum in SIGNALS:
            signal.signal(signum, self.handle_signal)

    # -- lifecycle ----------------------------------------------------------------------------

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
            self._open(self.config)
        except CatalogueCorrupt as exc:  # a row met at start, after the open's own checks
            self._open(self.config, corrupt=exc)
        self._serve(self.config)
        self._count_rebuilds()
        self._publish()  # before READY: a status asked at once shows the first scan pending
        self.notifier.notify(ready="1", status="scanning sources")
        self._watch()
        self._publish()
        try:
            self._scan()
            with self._audit_guard():
                if self.audit_problem is None and self.log_problem is None:
                    self._resume_runs()  # a run a crash or a stop cut short finishes first
                    self._sweep()
        except CatalogueCorrupt as exc:
            self._catalogue_corrupt(exc)
        if self.log_problem is not None:
            self.notifier.notify(status=self.status())
        self._mark_catalogue()

    def stop(self) -> None:
        self.notifier.notify(stopping="1", status="stopping")
        self.inbox.close()
        for futures in self._runs.values():
            for future in futures:
                future.set_exception(
                    DaemonUnavailable("recd stopped during the run; it resumes when recd starts")
                )
        self._runs.clear()
        self.watching.stop()
        if self._control is not None:
            self._control.stop()
            self._control = None
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
        self._mark_catalogue()
        self._close_runtime()
        logger.info("stopped")

    def _close_runtime(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None

    def _catalogue_corrupt(self, exc: CatalogueCorrupt) -> None:
        """A corrupt page or row met while running: the catalogue is moved aside and a new
        one opened and rebuilt (holds from the log first; then a full scan and a sweep),
        in this process: the admin socket and the metrics stay up. A new catalogue found
        corrupt at once (a failing disk) stops recd."""
        self.watching.stop()
        self._close_runtime()
        self._open(self.config, corrupt=exc)
        self._count_rebuilds()
        self._watch()
        self._next_scan = 0.0
        self._sweep_needed = True
        self._publish()
        self.notifier.notify(status="catalogue rebuilt; scanning sources")

    def _open(
        self, config: Config, corrupt: CatalogueCorrupt | None = None, *, reload: bool = False
    ) -> None:
        """Open the runtime for ``config``; at a ``reload`` without SQLite's quick_check."""
        runtime = open_runtime(config, self.clock, self._roots, corrupt, quick_check=not reload)
        try:
            # The log's chain checked, and a catalogue that lacks some of it (lost, behind)
            # given back what the log holds, before anything; a problem stops erasing.
            rebuilding = rebuilder(runtime, self._rebuild_progress)
            rebuilt = rebuilding.restore()
            if rebuilt is not None:
                self._rebuilt.append(rebuilt.why)
            # The clock guard compares with the newest entry before recd's own: config.loaded
            # below is stamped with a clock that may have been set back while recd was down.
            last = runtime.audit.last()
            if last is not None:
                self._audit_floor = max(
                    self._audit_floor or parse_time(last.time), parse_time(last.time)
                )
            details: dict[str, Any] = {
                "config": str(config.path),
                "version": __version__,
                "daemon": True,
            }
            if self._start_gap is None and self.clock_problem is None:
                self._check_start_gap(runtime)
            if self._start_gap is not None and self._trusted is not None:
                details[UNCONFIRMED] = {"trusted": format_time(self._trusted)}
            loaded = AuditDraft("config.loaded", str(config.path), details)
            try:
                runtime.audit.append([loaded], self.clock.now())
                unconfirmed = {UNCONFIRMED: details[UNCONFIRMED]} if UNCONFIRMED in details else {}
                rebuilding.record(unconfirmed)
                self._found(runtime, rebuilding.problem)
                self._mark_frozen = False  # the start replayed what was after the mark
                Recovery(
                    config, runtime.catalogue, runtime.audit, self.clock, runtime.erasers
                ).run()
            except (OSError, StateError) as exc:
                if runtime.audit.failure is None:
                    raise
                # Start (or reload) anyway, erasing paused: recovery runs once the log can be
                # written, and config.loaded is written then.
                self._audit_pending = [loaded]
                self._rebuild = rebuilding if rebuilding.pending else None
                self._found_in_outage(runtime, rebuilding.problem)
                self._audit_failed(runtime.audit, exc)
            apply_policies(config, runtime.catalogue)
            report_buckets(runtime)
        except BaseException:
            runtime.close()
            raise
        self.config, self._runtime = config, runtime

    def _rebuild_progress(self, status: str) -> None:
        """A rebuild or replay begins (before READY): say so, and give systemd's start
        timeout room for it (a log of years may hold thousands of holds)."""
        logger.info("%s", status)
        self.notifier.notify(status=status, extend_timeout_usec=str(REBUILD_EXTEND_USEC))

    def _found(self, runtime: Runtime, finding: Finding | None) -> None:
        """After the start's checks: audit and log a new problem once (not again on reload)."""
        if finding is not None and finding != self._log_finding:
            path = str(runtime.config.daemon.state_dir / "audit.log")
            report_problem(runtime.audit, path, finding, self.clock.now())
        self._set_log_problem(finding)

    def _found_in_outage(self, runtime: Runtime, finding: Finding | None) -> None:
        """As ``_found`` while the audit log cannot be written: the entry is written with
        config.loaded when it can be."""
        if finding is not None and finding != self._log_finding:
            path = str(runtime.config.daemon.state_dir / "audit.log")
            report_problem(None, path, finding, self.clock.now())
            self._audit_pending.append(problem_draft(path, finding))
        self._set_log_problem(finding)

    def _set_log_problem(self, finding: Finding | None) -> None:
        self._log_finding = finding
        self.log_problem = None if finding is None else f"{finding.text}; {ACKNOWLEDGE_HINT}"

    def acknowledge_log(self, actor: str, reason: str) -> tuple[int, str | None]:
        """`recctl audit acknowledge`: take the audit log as it is; erasing resumes. Returns
        the seq of the ``audit.acknowledged`` entry and the problem it ended."""
        finding = self._log_finding
        if finding is None:
            raise NotAllowedInState(
                "the audit log verified and matches the catalogue: nothing to acknowledge"
            )
        rt = self.runtime
        path = str(self.config.daemon.state_dir / "audit.log")
        now = self.clock.now()
        entry = acknowledge(rt.catalogue, rt.audit, path, finding, actor, reason, now)
        self._set_log_problem(None)
        self._marked = entry.seq
        self._sweep_needed = self._resume_needed = True
        self._publish()
        self.notifier.notify(status=self.status())
        return entry.seq, finding.text

    def _mark_catalogue(self) -> None:
        """Between steps: every decision made so far is in both the catalogue and the log, so
        the catalogue is marked at the log's last entry (one small write when it moved). Not
        while the log has a problem (the mark is what the next start compares) or a rebuild
        waits to be audited."""
        rt = self._runtime
        if rt is None or self._log_finding is not None or self._rebuild is not None:
            return
        if self._mark_frozen:
            return
        last = rt.audit.last()
        if last is not None and last.seq != self._marked:
            mark_at_end(rt.catalogue, rt.audit)
            self._marked = last.seq

    def _check_command(self, command: Command[object]) -> None:
        """An admin command that failed unexpectedly (not a refusal, which changes nothing)
        may have written its audit entry but not its catalogue change: the mark stays where
        it is until recd restarts, so that start replays the entries after it."""
        future = command.future
        failure = None if not future.done() or future.cancelled() else future.exception()
        if failure is not None and not isinstance(failure, RecdError) and not self._mark_frozen:
            self._mark_frozen = True
            logger.warning(
                "the catalogue's audit mark stays at entry %s until recd restarts (an admin "
                "command failed: %s); the start then replays the entries after it",
                self._marked, failure,
            )  # fmt: skip

    def _count_rebuilds(self) -> None:
        if self.metrics is not None:
            for why in self._rebuilt:
                self.metrics.catalogue_rebuilt(why)
            self._rebuilt.clear()

    def _watch(self) -> None:
        with signals_blocked():
            self.watching.start(self.runtime)

    def _serve(self, config: Config, old: Config | None = None) -> None:
        """Serve the admin socket and metrics (again, if their settings changed on reload)."""
        with signals_blocked():
            self._serve_now(config, old)

    def _serve_now(self, config: Config, old: Config | None) -> None:
        d, m = config.daemon, config.metrics
        if old is None or (d.socket, d.admin_group) != (old.daemon.socket, old.daemon.admin_group):
            if self._control is not None:
                self._control.stop()
            admin = Admin(self)
            admin.commands |= Legal(self).commands
            admin.commands |= Backups(self).commands
            self._control = ControlServer(
                d.socket, d.admin_group, admin.handle, count=self._count_admin_refusal
            )
            self._control.start()
        if self.metrics is None:
            self.metrics = Metrics(self.snapshot, per_licence=m.per_licence)
            ProcessCollector(registry=self.metrics.registry)  # process_resident_memory_bytes...
        # One Metrics for the daemon's life: a reload keeps every counter and histogram.
        self.metrics.per_licence = m.per_licence
        if old is None or (m.host, m.port) != (old.metrics.host, old.metrics.port):
            self.metrics.close()
            self.metrics.serve(_host_port(m.host, m.port))
            if (address := self.metrics.address) is not None:
                logger.info("metrics served at http://%s/metrics", _host_port(*address))

    # -- the loop -----------------------------------------------------------------------------

    def next_event(self) -> Any:
        """The next item, or None when it is time to look at deadlines and rescans."""
        return self.inbox.get(0.0 if self.inbox.held else self.timeout())

    def timeout(self) -> float:
        """Seconds until the earliest thing the loop must do without being woken."""
        now = self.clock.now()
        waits = [MAX_SLEEP, self._next_scan - self.clock.monotonic()]
        if self.watching.next_poll is not None:
            waits.append(self.watching.next_poll - self.clock.monotonic())
        if self.watchdog is not None:
            waits.append(self.watchdog - (self.clock.monotonic() - self._last_ping))
        if self.audit_problem is not None:  # nothing is erased before the next try
            waits.append(self._audit_retry_at - self.clock.monotonic())
            return max(0.0, min(waits))
        expiry = next_expiry(self.runtime.catalogue.holds())
        if expiry is not None:  # holds expire even while erasing is paused
            waits.append((expiry - now).total_seconds())
        if self.clock_problem is not None:  # the wall clock is not to be trusted for waits
            waits.append(RETRY.total_seconds())
        if self.log_problem is not None or self.clock_problem is not None:
            # Nothing is erased until the log is acknowledged or the clock is confirmed (a
            # command, which wakes the loop) or trusted again (looked at every RETRY): a sweep
            # still wanted or a deadline passed must not make the loop spin.
            return max(0.0, min(waits))
        if self._sweep_needed or self._resume_needed:
            return 0.0
        deadline = self.runtime.catalogue.next_deadline(after=self._swept_until or now)
        if deadline is not None:
            waits.append((deadline - now).total_seconds())
        if self._retry_at is not None:
            waits.append((self._retry_at - now).total_seconds())
        return max(0.0, min(waits))

    def step(self, item: Any) -> None:
        """One wake-up: act on the item, then on whatever is due."""
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
                self._check_command(item)
                _raise_corrupt(item)  # told to the admin; the loop moves the catalogue aside
            elif item is not None and self.watching.accepts(item):
                self._on_file_events(self._batch(item))
        self._notice_audit()  # an admin command's append may have failed (or succeeded)
        if not self._urgent():  # a signal or command waiting behind file events goes first
            with self._audit_guard():
                self._due_work()
        self._mark_catalogue()
        self._heartbeat()

    def _due_work(self) -> None:
        """Rescans, reconciliations, hold expiries, interrupted request runs, the sweep."""
        if self.clock.monotonic() >= self._next_scan:
            self._scan()
        for name, under in self.watching.take_reconciles(self.clock.monotonic()):
            self._reconcile(name, under)
        if self.audit_problem is not None and not self._audit_resume():
            return  # nothing that writes the audit log until it can be written again
        self._expire_holds()
        if self.log_problem is not None:
            return  # nothing is erased until the audit log is acknowledged
        if self._resume_needed and not self._resume_runs():
            return
        # The clock guard looks at every wake-up: a wall clock stepped back shows no deadline.
        if self._clock_ok() and self._sweep_due():
            self._sweep(checked=True)

    def _batch(self, first: Any) -> WatchBatch:
        """The file event ``first`` and every file event queued behind it."""
        batch = WatchBatch()
        for item in [first, *self.inbox.more(self.watching.accepts, limit=9_999)]:
            batch.add(item)
        return batch

    def _on_file_events(self, batch: WatchBatch) -> None:
        rt = self.runtime
        now = self.clock.now()
        for name, events in self.watching.split(batch, rt.sources).items():
            indexer = self._indexer(name)
            if indexer is None:
                continue
            rows = indexer.index_files(events.files, events.gone, now)
            wall = self.clock.now().timestamp()  # committed: what the lag is measured to
            for row in rows:
                if self.metrics is not None:
                    lag = wall - events.received.get(row.relpath, wall)
                    self.metrics.indexed(max(0.0, lag))
                if row.deadline is not None and row.deadline <= now:
                    self._sweep_needed = True

    def _sweep_due(self) -> bool:
        if self._sweep_needed:
            return True
        now = self.clock.now()
        if self._retry_at is not None and self._retry_at <= now:
            return True
        deadline = self.runtime.catalogue.next_deadline(after=self._swept_until or now)
        return deadline is not None and deadline <= now

    def _heartbeat(self) -> None:
        """``WATCHDOG=1`` from the loop when one is due (``watchdog`` is already half of
        systemd's timeout); long scans and sweeps call this as they progress."""
        if self.watchdog is None:
            return
        mono = self.clock.monotonic()
        if mono - self._last_ping >= self.watchdog:
            self.notifier.notify(watchdog="1")
            self._last_ping = mono

    def reload(self) -> None:
        self.notifier.notify(reloading="1", status="reloading configuration")
        try:
            config = self.loader(self.config.path)
        except ConfigInvalid as exc:
            for problem in exc.problems:
                logger.error("reload refused: %s", problem)
            logger.error("keeping the configuration loaded before")
        else:
            old, reloaded = self.config, True
            self.watching.stop()
            self._close_runtime()
            try:
                self._open(config, reload=True)
                self._serve(config, old)
                self._count_rebuilds()
            except RecdError as exc:  # e.g. a new state_dir or socket that cannot be used
                logger.error("reload failed: %s; going back to the configuration before", exc)
                self._close_runtime()
                self._open(old, reload=True)
                self._serve(old, config)
                config, reloaded = old, False
            self._watch()
            self._next_scan = 0.0  # sources or patterns may have changed
            self._sweep_needed = True
            if reloaded:
                logger.info("configuration reloaded from %s", config.path)
            else:
                logger.warning("still running with the configuration loaded before")
        self.notifier.notify(ready="1", status=self.status())

    # -- the audit log cannot be written -------------------------------------------------------

    @contextlib.contextmanager
    def _audit_guard(self) -> Iterator[None]:
        """Turn an append that failed into an audit outage; anything else goes on up."""
        try:
            yield
        except CatalogueCorrupt:
            raise  # not the audit log's: the run loop moves the catalogue aside
        except (OSError, StateError) as exc:
            audit = None if self._runtime is None else self._runtime.audit
            if audit is None or audit.failure is None:
                raise
            self._audit_failed(audit, exc)

    def _notice_audit(self) -> None:
        """Follow what an append made on the loop's behalf (an admin command's) showed."""
        if self._runtime is None:
            return
        failure = self._runtime.audit.failure
        if failure is not None and self.audit_problem is None:
            self._audit_failed(self._runtime.audit, failure)
        elif failure is None and self.audit_problem is not None:
            self._audit_retry_at = self.clock.monotonic()  # writable again: resume at once

    def _audit_failed(self, audit: AuditLog, exc: BaseException) -> None:
        """Pause erasing: log the outage's start once, count each failure, retry later."""
        failure = audit.failure or exc
        path = self.config.daemon.state_dir / "audit.log"
        problem = f"the audit log {path} cannot be written: {os_reason(failure)}"
        self._audit_failures += 1
        if self.metrics is not None:
            self.metrics.audit_write_failed()
        if self.audit_problem is None:
            self._audit_since = self.clock.now()
            logger.error(
                "erasing paused: %s; nothing is erased until an audit entry can be written "
                "(retrying with backoff)",
                problem,
            )
        self.audit_problem = problem
        attempt = min(self._audit_failures, 64)
        delay = full_jitter(attempt, AUDIT_RETRY_BASE, AUDIT_RETRY_CAP, random.random())  # noqa: S311 (spreads retries; not a secret)
        self._audit_retry_at = self.clock.monotonic() + delay
        self._publish()
        self.notifier.notify(status=self.status())

    def _audit_resume(self) -> bool:
        """At the retry time, try to write ``audit.resumed``; True once the log is writable
        again (interrupted erases are then settled, as at start). A failure raises."""
        if self.clock.monotonic() < self._audit_retry_at:
            return False
        rt = self.runtime
        since = self._audit_since or self.clock.now()
        details = {
            "error": self.audit_problem,
            "since": format_time(since),
            "failed_appends": self._audit_failures,
        }
        drafts = [
            *self._audit_pending,
            AuditDraft("audit.resumed", str(self.config.daemon.state_dir / "audit.log"), details),
        ]
        rt.audit.append(drafts, self.clock.now())
        self._audit_pending = []
        if self._rebuild is not None:  # the holds were restored at start: audit that now
            self._rebuild.record()
            self._rebuild = None
        logger.warning(
            "audit log writable again after %d failed appends since %s: erasing resumes",
            self._audit_failures, format_human_time(since),
        )  # fmt: skip
        self.audit_problem, self._audit_since, self._audit_failures = None, None, 0
        # Erases whose intent or outcome could not be written are settled as after a crash.
        Recovery(self.config, rt.catalogue, rt.audit, self.clock, rt.erasers).run()
        self._sweep_needed = self._resume_needed = True
        self._publish()
        self.notifier.notify(status=self.status())
        return True

    # -- scanning -----------------------------------------------------------------------------

    def _indexer(self, name: str) -> Indexer | None:
        rt = self.runtime
        source = rt.sources.get(name)
        configs = {s.name: s for s in self.config.sources}
        if source is None or name not in configs:
            return None

        def progress(files: int) -> None:
            self.notifier.notify(status=f"scanning {name}: {files} files so far")
            self._heartbeat()

        self._index_errors.telemetry = self._telemetry()
        return Indexer(
            self.config, configs[name], source, rt.catalogue, rt.tag_reader, progress,
            self._index_errors,
        )  # fmt: skip

    def _reindex(self, source: str, relpath: str) -> None:
        """Index one file again (a sweep or request run found it changed since indexed)."""
        indexer = self._indexer(source)
        if indexer is not None:
            indexer.reindex(relpath, self.clock.now())

    def _scan(self) -> None:
        """Reconcile every source fully (at start, every ``daemon.rescan``, after reload)."""
        for name in list(self.runtime.sources):
            with contextlib.suppress(OSError):  # logged; tried again at the next rescan
                self._scan_source(name)
        self._next_scan = self.clock.monotonic() + self.config.daemon.rescan.total_seconds()

    def scan_sources(self, names: list[str]) -> list[IndexStats]:
        """`recctl scan`: scan ``names`` fully; an error names every source that failed."""
        results, problems = [], []
        for name in names:
            try:
                stats = self._scan_source(name)
            except OSError as exc:
                problems.append(f"source {name}: cannot scan {exc.filename}: {os_reason(exc)}")
                continue
            if stats is not None:
                results.append(stats)
        if problems:
            raise RecdError("; ".join(problems))
        return results

    def _reconcile(self, name: str, under: str) -> None:
        """A reconciliation the watchers asked for; a failure is logged and retried later."""
        with contextlib.suppress(OSError):
            self._scan_source(name, under)

    def _scan_source(self, name: str, under: str = "") -> IndexStats | None:
        """Scan one source (or its subtree ``under``); an OSError is logged and re-raised."""
        indexer = self._indexer(name)
        if indexer is None:
            return None
        self._scanning = name
        self._publish()
        if not under:
            self.notifier.notify(status=f"scanning {name}")
        started = self.clock.monotonic()
        try:
            stats = indexer.run(self.clock.now(), under)
        except OSError as exc:
            logger.error("source %s: cannot scan %s: %s", name, exc.filename, os_reason(exc))
            raise
        finally:
            self._scanning = None
            self._publish()
        stats.seconds = self.clock.monotonic() - started
        if not under:
            self._scans[name] = (self.clock.now(), stats.seconds)
            self.watching.scanned(name, self.clock.monotonic())
        if name in self.runtime.stores:
            self._mirror_holds()  # recordings the poll found that a hold matches
        self._sweep_needed = True
        self._publish()
        return stats

    # -- sweeping -----------------------------------------------------------------------------

    def _clock_ok(self) -> bool:
        """The clock guard: pause erasing while the wall clock cannot be trusted."""
        now = ClockReading(self.clock.now(), self.clock.monotonic())
        last = self.runtime.audit.last()
        last_time = None if last is None else parse_time(last.time)
        if self._audit_floor is not None and (last_time is None or last_time < self._audit_floor):
            last_time = self._audit_floor
        problem = self._start_gap or clock_problem(
            self._clock_ref, now, last_time, self.config.safety.max_clock_jump
        )
        if problem != self.clock_problem:
            if problem is not None:
                logger.error("erasing paused: %s", problem)
            else:
                logger.warning("wall clock consistent again: erasing resumes")
            self.clock_problem = problem
            self._publish()
        if problem is None:
            self._clock_ref = now
            return True
        self._retry_at = now.wall + RETRY
        self.notifier.notify(status=f"erasing paused: {problem}")
        return False

    def _check_start_gap(self, runtime: Runtime) -> None:
        """At start (and reload), before recd writes anything: is the wall clock far ahead of
        everything recd can trust? Then erasing stays paused until an administrator confirms
        the clock (``recctl clock confirm``); the time still trusted goes in config.loaded."""
        now = self.clock.now()
        evidence = start_evidence(runtime, now)
        problem = start_gap_problem(now, evidence, self.config.safety.max_clock_gap)
        self._start_gap = None if problem is None else f"{problem}; {CONFIRM_HINT}"
        self._trusted = trusted_time(now, evidence)

    def confirm_clock(self, actor: str, reason: str | None) -> tuple[datetime, str | None]:
        """`recctl clock confirm`: take the wall clock as it reads now as the reference, ending
        a pause of either kind (a gap at start, a jump or a step back while running)."""
        reading = ClockReading(self.clock.now(), self.clock.monotonic())
        problem = self.clock_problem or self._start_gap
        details = {"wall": format_time(reading.wall), "problem": problem, "reason": reason}
        self.runtime.audit.append(
            [AuditDraft("clock.confirmed", "clock", details, actor=actor)], reading.wall
        )
        self._start_gap, self._audit_floor, self._clock_ref = None, None, reading
        self.clock_problem = None
        logger.warning(
            "wall clock %s confirmed by %s%s",
            format_human_time(reading.wall), actor, "" if problem is None else ": erasing resumes",
        )  # fmt: skip
        self._sweep_needed = True
        self._publish()
        self.notifier.notify(status=self.status())
        return reading.wall, problem

    def _sweep(self, *, checked: bool = False) -> SweepReport | None:
        if self.log_problem is not None:
            self.notifier.notify(status=self.status())
            return None
        if self.audit_problem is not None or (not checked and not self._clock_ok()):
            return None
        self._sweep_needed = False
        rt = self.runtime

        def should_stop() -> bool:
            # File events (our own erasures make some) wait for the sweep; signals and
            # admin commands do not.
            self._heartbeat()
            return self.inbox.urgent

        sweeper = Sweeper(
            self.config, rt.catalogue, rt.audit, self.clock, rt.erasers,
            telemetry=self._telemetry(), reindex=self._reindex,
        )  # fmt: skip
        sweeper.release_hint = "recctl breaker release --licence {licence}"
        report = sweeper.run(should_stop=should_stop)
        self._swept_until = report.now
        if report.interrupted:
            self._sweep_needed = True  # the rest after the event that interrupted it
        kept = sum(sum(t.kept.values()) for t in report.licences.values())
        self._retry_at = report.now + RETRY if kept or report.failed else None
        if report.erased or report.failed:
            logger.info("sweep: %d erased, %d failed", report.erased, report.failed)
        self.notifier.notify(status=self.status())
        return report

    def _telemetry(self) -> Telemetry:
        return self.metrics if self.metrics is not None else NO_TELEMETRY

    def _count_admin_refusal(self, reason: str) -> None:
        """From the admin socket's thread: one connection refused or dropped."""
        if (metrics := self.metrics) is not None:
            metrics.connection_refused("admin", reason)

    def _count_overflow(self, source: str) -> None:
        if self.metrics is not None:
            self.metrics.watch_overflow(source)

    def status(self) -> str:
        if self.audit_problem is not None:
            return f"erasing paused: {self.audit_problem}"
        if self.log_problem is not None:
            return f"erasing paused: {self.log_problem}"
        if self.clock_problem is not None:
            return f"erasing paused: {self.clock_problem}"
        deadline = self.runtime.catalogue.next_deadline(after=self.clock.now())
        when = "none" if deadline is None else format_human_time(deadline)
        return f"next deadline {when}; mode {self.config.daemon.mode}"

    # -- admin commands (the Loop protocol of recd.daemon.admin.dispatch) --------------------

    def call_soon(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the loop and wait for its result (from an admin connection thread)."""
        return self.inbox.call(fn)

    def release_breaker(self, licence: str, actor: str) -> int:
        rt = self.runtime
        released = breakers.release_breaker(
            rt.catalogue, rt.audit, licence, actor, self.clock.now()
        )
        self._sweep_needed = True
        return released.due

    def holds(self) -> Holds:
        rt = self.runtime
        return Holds(self.config, rt.catalogue, rt.audit, self.clock)

    def requests(self) -> Requests:
        rt = self.runtime
        return Requests(
            self.config, rt.catalogue, rt.audit, self.clock, rt.erasers, self._telemetry(),
            reindex=self._reindex,
        )  # fmt: skip

    def holds_changed(self) -> None:
        self._mirror_holds()
        self._sweep_needed = True

    def _mirror_holds(self) -> None:
        """S3 legal holds follow recd's holds on sources with ``mirror_legal_holds``; before
        any sweep, so a release's erasures do not meet holds recd itself set."""
        if any(s.mirror_legal_holds for s in self.config.sources):
            rt = self.runtime
            mirror = HoldMirror(
                self.config, rt.catalogue, rt.audit, self.clock, rt.stores, self._heartbeat
            )
            mirror.run()

    def _expire_holds(self) -> None:
        expiry = next_expiry(self.runtime.catalogue.holds())
        if expiry is not None and expiry <= self.clock.now() and self.holds().expire():
            self.holds_changed()

    def run_request(self, request_id: str, actor: Actor) -> Future[Run]:
        """Start (or continue) a request's run; the future ends when the run does, which may
        be after other work: an urgent item interrupts it between batches, the loop resumes it."""
        if self.log_problem is not None:
            raise NotAllowedInState(f"erasing paused: {self.log_problem}")
        future: Future[Run] = Future()
        future.set_running_or_notify_cancel()
        self._runs.setdefault(request_id, []).append(future)
        self._settle_run(request_id, self.requests().execute(request_id, actor, self._urgent))
        return future

    def _resume_runs(self) -> bool:
        """Continue every interrupted run (at start, and after what interrupted it); False
        when one was interrupted again."""
        self._resume_needed = False
        requests = self.requests()
        for stored in requests.resumable():
            run = requests.execute(stored.id, RECD_ACTOR, self._urgent)
            self._settle_run(stored.id, run)
            if run[0].state is RequestState.EXECUTING:
                return False
        return True

    def _settle_run(self, request_id: str, run: Run) -> None:
        if run[0].state is RequestState.EXECUTING:
            self._resume_needed = True
            return
        for future in self._runs.pop(request_id, []):
            future.set_result(run)

    def _urgent(self) -> bool:
        self._heartbeat()
        return self.inbox.urgent

    @contextlib.contextmanager
    def reader(self) -> Iterator[CatalogueReader]:
        reader = open_reader(self.config.daemon.state_dir / "catalog.db")
        try:
            yield reader
        finally:
            reader.close()

    def state(self) -> DaemonState:
        return self._state

    def _publish(self) -> None:
        """Replace the state other threads read (one attribute store: atomic)."""
        sources = []
        for s in self.config.sources:
            last = self._scans.get(s.name)
            sources.append(
                SourceStatus(
                    name=s.name,
                    type=str(s.type),
                    watch=self.watching.mode(s.name),
                    # a source not yet scanned since start counts as scanning: it is next
                    scanning=self._scanning == s.name or last is None,
                    last_scan=None if last is None else last[0],
                    scan_seconds=None if last is None else last[1],
                    objects=self._objects(s.name),
                )
            )
        self._state = DaemonState(
            self._state.started, os.getpid(), self.clock_problem, tuple(sources),
            self.audit_problem, self.log_problem,
        )  # fmt: skip

    def _objects(self, name: str) -> S3Totals | None:
        """What the last completed poll of an S3 source listed (None for directories)."""
        source = None if self._runtime is None else self._runtime.sources.get(name)
        totals = None if source is None else source.last_scan
        if totals is None:
            return None
        return S3Totals(totals.objects, totals.versions, totals.delete_markers, totals.bytes)

    def snapshot(self) -> Snapshot:
        """The metrics collector's view, at scrape time (from the metrics server's thread)."""
        with self.reader() as reader:
            snapshot = metrics_snapshot(self._state, reader, self.clock.now(), self.config)
        runtime = self._runtime  # read once: a reload may swap it meanwhile
        if runtime is None:
            return snapshot
        extent = runtime.audit.extent()
        return replace(snapshot, audit_log_bytes=extent.live_bytes, audit_segments=extent.segments)


def _raise_corrupt(command: Command[object]) -> None:
    """Raise the ``CatalogueCorrupt`` an admin command ended with, if it did."""
    failed = None if command.future.cancelled() else command.future.exception(timeout=0)
    if isinstance(failed, CatalogueCorrupt):
        raise failed


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Block recd's signals while threads are started, so that they and every thread they
    start inherit the block and the kernel delivers SIGHUP/SIGTERM/SIGINT to the main thread.

    A signal that lands on another thread only sets CPython's flag: the main thread, asleep in
    the queue's ``get`` until the next deadline, would not run the handler until it woke up.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
