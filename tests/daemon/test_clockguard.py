"""The daemon's clock guard (``recd.daemon.clockguard``), in-process with a fake clock: a wall
clock that steps or falls behind the audit log pauses erasing, and the loop looks again every
``RETRY`` while it lasts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from recd.daemon.loop import Daemon
from recd.daemon.signals import Event
from recd.daemon.sweeps import RETRY
from tests.daemon.helpers import drain, make
from tests.estate import Estate
from tests.fakes import NotifyListener


def problem(daemon: Daemon) -> str | None:
    return daemon.clock_problem


def test_clock_stepped_forward_pauses_erasing_until_consistent(
    estate: Estate, listener: NotifyListener, caplog: pytest.LogCaptureFixture
) -> None:
    f = estate.write("L1/later.wav", age_days=29)  # due in one day
    daemon = make(estate, listener)
    daemon.start()
    try:
        start = estate.clock.now()
        estate.clock.set(start + timedelta(days=2))  # wall clock steps; monotonic does not
        drain(listener)
        daemon.step(None)
        assert f.exists()
        assert problem(daemon) == (
            "wall clock jumped 2d ahead of the monotonic clock (more than safety.max_clock_jump 1h)"
        )
        assert "STATUS=erasing paused: wall clock jumped 2d ahead" in drain(listener)[0]
        assert daemon.timeout() <= RETRY.total_seconds()
        estate.clock.set(start)  # stepped back into line
        daemon.step(None)
        assert problem(daemon) is None
        assert f.exists()  # and rightly still not due
        assert caplog.messages[-1] == "wall clock consistent again: erasing resumes"
    finally:
        daemon.stop()


def test_clock_behind_the_audit_log_pauses_erasing(
    estate: Estate, listener: NotifyListener
) -> None:
    f = estate.write("L1/due.wav", age_days=31, modified_seconds_ago=30)  # kept by settle
    daemon = make(estate, listener)
    daemon.start()
    try:
        assert f.exists()
        estate.clock.set(estate.clock.now() - timedelta(minutes=10))
        estate.clock.advance(200)  # past settle, by both clocks, but still behind the log
        daemon.step(None)
        assert f.exists()
        assert daemon.clock_problem == "wall clock is 6m40s behind the last audit entry" or (
            daemon.clock_problem is not None
            and "behind the last audit entry" in daemon.clock_problem
        )
    finally:
        daemon.stop()


def test_a_daemon_paused_by_the_clock_sleeps_until_the_next_look(
    estate: Estate, listener: NotifyListener
) -> None:
    """The clock far ahead at start, a recording overdue and the first sweep still wanted: the
    loop looks at the clock again every RETRY instead of waking at once for ever (found
    spinning at 100 % CPU until `recctl clock confirm`)."""
    estate.write("L1/a.wav", age_days=40)
    assert estate.once()[0] == 0
    estate.clock.advance(10 * 86400)
    estate.write("L1/due.wav", age_days=50)
    daemon = make(estate, listener)
    daemon.start()
    try:
        daemon.step(None)
        assert problem(daemon) is not None and "10d ahead" in str(problem(daemon))
        assert daemon.timeout() == RETRY.total_seconds()
        daemon.confirm_clock("alice", "checked")
        assert daemon.timeout() == 0.0, "the sweep the confirmation allows waits"
    finally:
        daemon.stop()


def test_reload_while_erasing_is_paused_says_so(estate: Estate, listener: NotifyListener) -> None:
    daemon = make(estate, listener, loader=lambda path: estate.config)
    daemon.start()
    try:
        estate.clock.set(estate.clock.now() + timedelta(days=2))
        daemon.step(None)
        drain(listener)
        daemon.step(Event.RELOAD)
        assert (
            "READY=1\nSTATUS=erasing paused: wall clock jumped 2d ahead of the monotonic clock "
            "(more than safety.max_clock_jump 1h)"
        ) in drain(listener)
    finally:
        daemon.stop()
