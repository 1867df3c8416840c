"""An audit log that cannot be written (EIO, ENOSPC, EROFS, EDQUOT): the outage and its end.

No erase starts without its intent entry and none is reported done without its entry, so a
failed append pauses erasing: one error line when the outage starts, a count per failure, and
retries with capped exponential backoff (full jitter). What could not be written meanwhile (the
start's ``config.loaded``, a log problem's report, holds rebuilt from the log) waits here and
goes out first, with ``audit.resumed``, the first entry that can be written again. The loop
owns what a pause means beyond that (status, sweeps, settling interrupted erases).
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable, Iterator
from datetime import datetime

from recd.core.audit import AuditDraft
from recd.core.backoff import full_jitter
from recd.core.times import format_human_time, format_time
from recd.daemon.runtime import Runtime
from recd.errors import CatalogueCorrupt, StateError, os_reason
from recd.ports.audit import AuditLog
from recd.ports.clock import Clock
from recd.service.rebuild import Rebuild
from recd.service.recovery import Recovery

logger = logging.getLogger(__name__)

#: Retries of an audit log that cannot be written: the first after up to 1 s, then twice as
#: long each time (full jitter, recd.core.backoff), never more than 5 minutes apart.
AUDIT_RETRY_BASE = 1.0
AUDIT_RETRY_CAP = 300.0


class AuditOutage:
    """While ``problem`` is set the audit log cannot be written and nothing is erased."""

    def __init__(
        self, clock: Clock, count: Callable[[], None], changed: Callable[[], None]
    ) -> None:
        self.clock = clock
        self._count = count  # one failed append (a metric)
        self._changed = changed  # the pause began (the loop publishes it)
        self.problem: str | None = None  # why the audit log cannot be written, if so
        self._since: datetime | None = None
        self._failures = 0  # failed appends in this outage
        self.retry_at = 0.0  # monotonic time of the next try
        self.pending: list[AuditDraft] = []  # written first when the log can be again
        self.rebuild: Rebuild | None = None  # holds rebuilt from the log, not yet audited

    def failed(self, audit: AuditLog, exc: BaseException, where: str) -> None:
        """Log the outage's start once, count each failure, set the next try. ``where`` names
        the chain (``Config.audit_named``)."""
        failure = audit.failure or exc
        problem = f"{where} cannot be written: {os_reason(failure)}"
        self._failures += 1
        self._count()
        if self.problem is None:
            self._since = self.clock.now()
            logger.error(
                "erasing paused: %s; nothing is erased until an audit entry can be written "
                "(retrying with backoff)",
                problem,
            )
        self.problem = problem
        attempt = min(self._failures, 64)
        delay = full_jitter(attempt, AUDIT_RETRY_BASE, AUDIT_RETRY_CAP, random.random())  # noqa: S311 (spreads retries; not a secret)
        self.retry_at = self.clock.monotonic() + delay
        self._changed()

    @contextlib.contextmanager
    def guard(
        self, audit: Callable[[], AuditLog | None], where: Callable[[], str]
    ) -> Iterator[None]:
        """Turn an append that failed into an outage; anything else goes on up. ``audit`` and
        ``where`` are read when it fails: a reload in the block may have replaced them."""
        try:
            yield
        except CatalogueCorrupt:
            raise  # not the audit log's: the run loop moves the catalogue aside
        except (OSError, StateError) as exc:
            current = audit()
            if current is None or current.failure is None:
                raise
            self.failed(current, exc, where())

    def notice(self, audit: AuditLog, where: str) -> None:
        """Follow what an append made on the loop's behalf (an admin command's) showed."""
        failure = audit.failure
        if failure is not None and self.problem is None:
            self.failed(audit, failure, where)
        elif failure is None and self.problem is not None:
            self.retry_at = self.clock.monotonic()  # writable again: resume at once

    def due(self) -> bool:
        """Whether it is time to try the log again."""
        return self.clock.monotonic() >= self.retry_at

    def resume(self, runtime: Runtime, log: str) -> None:
        """Write what waited and ``audit.resumed``, then settle the erases whose intent or
        outcome could not be written, as after a crash; a failure raises, the outage goes on."""
        audit = runtime.audit
        since = self._since or self.clock.now()
        details = {
            "error": self.problem,
            "since": format_time(since),
            "failed_appends": self._failures,
        }
        drafts = [*self.pending, AuditDraft("audit.resumed", log, details)]
        audit.append(drafts, self.clock.now())
        self.pending = []
        if self.rebuild is not None:  # the holds were restored at start: audit that now
            self.rebuild.record()
            self.rebuild = None
        logger.warning(
            "audit log writable again after %d failed appends since %s: erasing resumes",
            self._failures,
            format_human_time(since),
        )
        self.problem, self._since, self._failures = None, None, 0
        rt = runtime
        Recovery(rt.config, rt.catalogue, rt.audit, self.clock, rt.erasers).run()
