"""The long-running daemon's lifecycle: start, loop, stop (SPEC sections 3, 7 and 9).

One thread owns all state. Signal handlers only put an event on one ``SimpleQueue`` (its
``put`` is safe in a handler); the loop blocks in ``get(timeout=...)`` until the earliest of:
an event, the next deadline, the next full rescan, or the next watchdog ping. No polling
interval: a recording is erased when its deadline comes, not at the next tick.

- start: open the state, finish interrupted erasures, apply retention changes, ``READY=1``,
  then the first full scan (progress in ``STATUS=``) and a sweep.
- loop: each wake-up is one ``step(event)``, which tests drive directly with a fake clock.
- SIGHUP: ``RELOADING=1``, load the configuration again; a bad one is refused with every
  problem logged and the old one kept; ``READY=1`` either way.
- clock guard: before each sweep the wall clock is checked against the monotonic clock and
  the newest audit entry; while it cannot be trusted erasing pauses, with a log line and
  ``STATUS=erasing paused: ...``, until it is consistent again or recd is restarted.
- SIGTERM/SIGINT: ``STOPPING=1``; a sweep in progress finishes the batch in flight (whose
  intents are already durable) and stops; then the state is closed and recd exits 0.
"""

from __future__ import annotations

import enum
import logging
import queue
import signal
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType

from recd import __version__
from recd.adapters.systemd import Notifier
from recd.config import Config, load
from recd.core.audit import AuditDraft, parse_time
from recd.core.safety import ClockReading, clock_problem
from recd.errors import ConfigInvalid, ExitCode
from recd.ports import Clock
from recd.runtime import Runtime, open_runtime, scan_all
from recd.service.policies import apply_policies
from recd.service.recovery import Recovery
from recd.service.sweep import Sweeper, SweepReport

logger = logging.getLogger(__name__)

#: How soon to look again at recordings that are due but were kept back (still settling, open
#: for writing, a failed erase): they keep no future deadline to wake the loop.
RETRY = timedelta(seconds=30)
MAX_SLEEP = 3600.0  # wake at least hourly, so a stepped wall clock is noticed


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
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.stopping = False
        self._runtime: Runtime | None = None
        self._next_scan = 0.0  # monotonic time of the next full rescan
        self._retry_at: datetime | None = None
        self._clock_ref = ClockReading(clock.now(), clock.monotonic())
        self.clock_problem: str | None = None  # why erasing is paused, if it is

    @property
    def runtime(self) -> Runtime:
        assert self._runtime is not None, "start() first"
        return self._runtime

    # -- signals ------------------------------------------------------------------------------

    def handle_signal(self, signum: int, frame: FrameType | None) -> None:
        """Only enqueue: no logging, no locks, no I/O in a signal handler."""
        self.events.put_nowait(SIGNALS[signal.Signals(signum)])

    def install_signals(self) -> None:
        for signum in SIGNALS:
            signal.signal(signum, self.handle_signal)

    # -- lifecycle ----------------------------------------------------------------------------

    def run(self) -> ExitCode:
        self.start()
        try:
            while not self.stopping:
                self.step(self.next_event())
        finally:
            self.stop()
        return ExitCode.OK

    def start(self) -> None:
        self._open(self.config)
        self.notifier.notify(ready="1", status="scanning sources")
        self._scan()
        self._sweep()

    def stop(self) -> None:
        self.notifier.notify(stopping="1", status="stopping")
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None
        logger.info("stopped")

    def _open(self, config: Config) -> None:
        runtime = open_runtime(config, self.clock)
        try:
            details = {"config": str(config.path), "version": __version__, "daemon": True}
            runtime.audit.append(
                [AuditDraft("config.loaded", str(config.path), details)], self.clock.now()
            )
            Recovery(config, runtime.catalogue, runtime.audit, self.clock, runtime.erasers).run()
            apply_policies(config, runtime.catalogue)
        except BaseException:
            runtime.close()
            raise
        self.config, self._runtime = config, runtime

    # -- the loop -----------------------------------------------------------------------------

    def next_event(self) -> Event | None:
        """The next event, or None when it is time to look at deadlines and rescans."""
        try:
            return self.events.get(timeout=self.timeout())
        except queue.Empty:
            return None

    def timeout(self) -> float:
        """Seconds until the earliest thing the loop must do without being woken."""
        now = self.clock.now()
        waits = [MAX_SLEEP, self._next_scan - self.clock.monotonic()]
        deadline = self.runtime.catalogue.next_deadline(after=now)
        if deadline is not None:
            waits.append((deadline - now).total_seconds())
        if self._retry_at is not None:
            waits.append((self._retry_at - now).total_seconds())
        if self.watchdog is not None:
            waits.append(self.watchdog)
        return max(0.0, min(waits))

    def step(self, event: Event | None) -> None:
        """One wake-up: act on the event, then on whatever is due."""
        if event is Event.STOP:
            self.stopping = True
            logger.info("stopping on signal")
            return
        if event is Event.RELOAD:
            self.reload()
        if self.clock.monotonic() >= self._next_scan:
            self._scan()
        self._sweep()
        if self.watchdog is not None:
            self.notifier.notify(watchdog="1")

    def reload(self) -> None:
        self.notifier.notify(reloading="1", status="reloading configuration")
        try:
            config = self.loader(self.config.path)
        except ConfigInvalid as exc:
            for problem in exc.problems:
                logger.error("reload refused: %s", problem)
            logger.error("keeping the configuration loaded before")
        else:
            if self._runtime is not None:
                self._runtime.close()
                self._runtime = None
            self._open(config)
            self._next_scan = 0.0  # sources or patterns may have changed
            logger.info("configuration reloaded from %s", config.path)
        self.notifier.notify(ready="1", status=self.status())

    def _scan(self) -> None:
        self.notifier.notify(status="scanning sources")
        scan_all(self.runtime)
        self._next_scan = self.clock.monotonic() + self.config.daemon.rescan.total_seconds()

    def _clock_ok(self) -> bool:
        """The clock guard: pause erasing while the wall clock cannot be trusted."""
        now = ClockReading(self.clock.now(), self.clock.monotonic())
        last = self.runtime.audit.last()
        last_time = None if last is None else parse_time(last.time)
        problem = clock_problem(self._clock_ref, now, last_time, self.config.safety.max_clock_jump)
        if problem != self.clock_problem:
            if problem is not None:
                logger.error("erasing paused: %s", problem)
            else:
                logger.warning("wall clock consistent again: erasing resumes")
            self.clock_problem = problem
        if problem is None:
            self._clock_ref = now
            return True
        self._retry_at = now.wall + RETRY
        self.notifier.notify(status=f"erasing paused: {problem}")
        return False

    def _sweep(self) -> SweepReport | None:
        if not self._clock_ok():
            return None
        rt = self.runtime
        report = Sweeper(self.config, rt.catalogue, rt.audit, self.clock, rt.erasers).run(
            should_stop=lambda: not self.events.empty()
        )
        kept = sum(sum(t.kept.values()) for t in report.licences.values())
        self._retry_at = report.now + RETRY if kept or report.failed else None
        if report.erased or report.failed:
            logger.info("sweep: %d erased, %d failed", report.erased, report.failed)
        self.notifier.notify(status=self.status())
        return report

    def status(self) -> str:
        if self.clock_problem is not None:
            return f"erasing paused: {self.clock_problem}"
        deadline = self.runtime.catalogue.next_deadline(after=self.clock.now())
        when = "none" if deadline is None else deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"next deadline {when}; mode {self.config.daemon.mode}"
