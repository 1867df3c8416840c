"""Opening the daemon's state: at start, at each reload, and after a corrupt catalogue.

In this order, before recd erases anything: the runtime is opened; the audit log's chain is
checked and a catalogue that lacks some of it (lost, empty, behind) is given back what the log
holds; the clock guard learns the newest audit time and, the first time, whether the wall clock
is far ahead of everything recd can trust; the start is audited (``config.loaded``, the
rebuild, a log problem) and erasures a crash cut short are settled; retention changes are
applied. When the audit log cannot be written the start goes on with erasing paused, and what
it could not write waits in the ``AuditOutage``. A runtime that fails half-way is closed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from recd import __version__
from recd.config.load import Config
from recd.core.audit import AuditDraft
from recd.core.times import format_time, parse_time
from recd.daemon.clockguard import ClockGuard
from recd.daemon.evidence import UNCONFIRMED, start_evidence
from recd.daemon.logcheck import LogCheck
from recd.daemon.outage import AuditOutage
from recd.daemon.runtime import CONFIRM_HINT, Runtime, open_runtime, rebuilder, report_buckets
from recd.daemon.writable import report_unwritable
from recd.errors import CatalogueCorrupt, StateError
from recd.ports.audit import AuditLog
from recd.ports.clock import Clock
from recd.ports.notifier import Notifier
from recd.service.policies import apply_policies
from recd.service.rebuild import Rebuild
from recd.service.recovery import Recovery

if TYPE_CHECKING:
    from recd.adapters.local.safefs import RootPins

logger = logging.getLogger(__name__)

#: How much longer systemd should wait for the start when a catalogue is rebuilt (10 min).
REBUILD_EXTEND_USEC = 600_000_000


class Opening:
    """Opens runtimes for the daemon; ``rebuilt`` collects why catalogues were rebuilt."""

    def __init__(
        self,
        clock: Clock,
        notifier: Notifier,
        roots: RootPins,
        parts: tuple[ClockGuard, LogCheck, AuditOutage],
        audit_failed: Callable[[AuditLog, BaseException], None],
    ) -> None:
        self.clock = clock
        self.notifier = notifier
        self._roots = roots  # the source roots pinned at start, kept across reloads
        self.guard, self.logcheck, self.outage = parts
        self._audit_failed = audit_failed  # the loop pauses erasing
        self.rebuilt: list[str] = []  # not yet counted
        self.unwritable: dict[str, str] = {}  # source -> why its root cannot be written

    def open(
        self,
        config: Config,
        max_gap: timedelta,
        corrupt: CatalogueCorrupt | None = None,
        *,
        reload: bool = False,
    ) -> Runtime:
        """The runtime for ``config``; at a ``reload`` without SQLite's quick_check."""
        runtime = open_runtime(config, self.clock, self._roots, corrupt, quick_check=not reload)
        try:
            rebuilding = rebuilder(runtime, self._rebuild_progress)
            rebuilt = rebuilding.restore()
            if rebuilt is not None:
                self.rebuilt.append(rebuilt.why)
            # The clock guard compares with the newest entry before recd's own: config.loaded
            # below is stamped with a clock that may have been set back while recd was down.
            last = runtime.audit.last()
            if last is not None:
                self.guard.note_audit(parse_time(last.time))
            if not self.guard.start_checked:
                now = self.clock.now()
                self.guard.check_start(now, start_evidence(runtime, now), max_gap, CONFIRM_HINT)
            self._record_start(config, runtime, rebuilding)
            apply_policies(config, runtime.catalogue)
            report_buckets(runtime)
            self.unwritable = report_unwritable(runtime, self.unwritable)
        except BaseException:
            runtime.close()
            raise
        return runtime

    def _record_start(self, config: Config, runtime: Runtime, rebuilding: Rebuild) -> None:
        """Audit the start and settle erasures a crash cut short; while the audit log cannot
        be written, the entries wait."""
        details: dict[str, Any] = {"config": str(config.path), "version": __version__}
        details["daemon"] = True
        unconfirmed = {}
        if (trusted := self.guard.unconfirmed) is not None:
            unconfirmed = {UNCONFIRMED: {"trusted": format_time(trusted)}}
        loaded = AuditDraft("config.loaded", str(config.path), details | unconfirmed)
        try:
            runtime.audit.append([loaded], self.clock.now())
            rebuilding.record(unconfirmed)
            self.logcheck.found(runtime, rebuilding.problem)
            self.logcheck.frozen = False  # the start replayed what was after the mark
            Recovery(config, runtime.catalogue, runtime.audit, self.clock, runtime.erasers).run()
        except (OSError, StateError) as exc:
            if runtime.audit.failure is None:
                raise
            # Start (or reload) anyway, erasing paused: recovery runs once the log can be
            # written, and config.loaded is written then.
            self.outage.pending = [loaded]
            self.outage.rebuild = rebuilding if rebuilding.pending else None
            self.outage.pending += self.logcheck.found_in_outage(runtime, rebuilding.problem)
            self._audit_failed(runtime.audit, exc)

    def _rebuild_progress(self, status: str) -> None:
        """A rebuild or replay begins (before READY): say so, and give systemd's start
        timeout room for it (a log of years may hold thousands of holds)."""
        logger.info("%s", status)
        self.notifier.notify(status=status, extend_timeout_usec=str(REBUILD_EXTEND_USEC))
