"""How long the daemon's loop may sleep: until the earliest thing it must do unwoken.

The next full rescan, watcher poll and watchdog ping; while the audit log cannot be written,
its next try; while the catalogue's database cannot be reached, its next try; else the next
hold expiry, and the next deadline unless erasing is paused (a paused loop must not spin on
a sweep it may not run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recd.core.holds import next_expiry
from recd.daemon.sweeps import RETRY

if TYPE_CHECKING:
    from recd.daemon.loop import Daemon

MAX_SLEEP = 3600.0  # wake at least hourly, so a stepped wall clock is noticed


def timeout(daemon: Daemon) -> float:
    """Seconds until the earliest thing ``daemon``'s loop must do without being woken."""
    if daemon.dbwait.problem is not None:  # waiting for the database: only the next try
        return min(daemon.dbwait.wait(), MAX_SLEEP)
    now = daemon.clock.now()
    waits = [MAX_SLEEP, daemon.scans.next_scan - daemon.clock.monotonic()]
    if daemon.watching.next_poll is not None:
        waits.append(daemon.watching.next_poll - daemon.clock.monotonic())
    if daemon.watchdog is not None:
        waits.append(daemon.watchdog - (daemon.clock.monotonic() - daemon.last_ping))
    if daemon.audit_problem is not None:  # nothing is erased before the next try
        waits.append(daemon.outage.retry_at - daemon.clock.monotonic())
        return max(0.0, min(waits))
    expiry = next_expiry(daemon.runtime.catalogue.holds())
    if expiry is not None:  # holds expire even while erasing is paused
        waits.append((expiry - now).total_seconds())
    if daemon.clock_problem is not None:  # the wall clock is not to be trusted for waits
        waits.append(RETRY.total_seconds())
    if daemon.log_problem is not None or daemon.clock_problem is not None:
        # Nothing is erased until the log is acknowledged or the clock is confirmed (a
        # command, which wakes the loop) or trusted again (looked at every RETRY): a sweep
        # still wanted or a deadline passed must not make the loop spin.
        return max(0.0, min(waits))
    if daemon.sweeps.needed or daemon.runs.resume_needed:
        return 0.0
    return max(0.0, min(waits + daemon.sweeps.waits(daemon.runtime, now)))
