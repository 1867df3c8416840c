"""When the daemon sweeps (``recd.daemon.sweeps``), in-process: deadlines, recordings kept back
and retried, a sweep that yields to a signal between batches, holds that expire, a file
rewritten since indexing, and a failing erase retried every RETRY, not on its own file events."""

from __future__ import annotations

import logging
import os
import signal
import time
from datetime import timedelta
from typing import Any

import pytest

from recd.adapters.local import erase
from recd.adapters.local.checks import Held
from recd.core.model import recording_id
from recd.core.scope import Scope
from recd.daemon.signals import Event
from recd.daemon.sweeps import RETRY
from recd.ports.eraser import EraseError
from recd.ports.source import WatchEvent
from tests.daemon.helpers import ALICE, make
from tests.estate import Estate
from tests.fakes import NotifyListener


def test_sleeps_until_the_next_deadline_and_erases_then(
    estate: Estate, listener: NotifyListener
) -> None:
    f = estate.write("L1/soon.wav", age_days=30 - 10 / 86400)  # due in 10 seconds
    daemon = make(estate, listener)
    daemon.start()
    try:
        assert daemon.timeout() == pytest.approx(10, abs=0.01)
        estate.clock.advance(9.9)
        daemon.step(None)
        assert f.exists()  # never early
        estate.clock.advance(0.1)
        daemon.step(None)
        assert not f.exists()
        assert daemon.timeout() == 3600.0  # nothing left: wake hourly
    finally:
        daemon.stop()


def test_due_but_kept_recordings_are_retried_not_spun_on(
    estate: Estate, listener: NotifyListener
) -> None:
    f = estate.write("L1/call.wav", age_days=31, modified_seconds_ago=30)
    daemon = make(estate, listener)
    daemon.start()
    try:
        assert f.exists()
        assert daemon.timeout() == pytest.approx(RETRY.total_seconds())
        estate.clock.advance(RETRY.total_seconds() * 4)
        daemon.step(None)
        assert not f.exists()
    finally:
        daemon.stop()


def test_a_pending_signal_interrupts_a_long_sweep_between_batches(
    estate: Estate, listener: NotifyListener
) -> None:
    for i in range(300):  # more than one batch of 256
        estate.write(f"L1/old{i:03}.wav", age_days=31, data=b"x")
    daemon = make(estate, listener)
    daemon.handle_signal(signal.SIGTERM, None)  # pending while start scans and sweeps
    try:
        daemon.start()
        assert len(list((estate.root / "L1").iterdir())) == 44  # one batch, then it yielded
        assert len(estate.actions("erase.done")) == 256
        assert daemon.timeout() == 0.0, "the rest of the sweep is still wanted"
        assert daemon.next_event() is Event.STOP  # the signal, before any more erasing
    finally:
        daemon.stop()
    assert len(list((estate.root / "L1").iterdir())) == 44


def test_a_hold_that_expires_wakes_the_loop_and_its_recordings_wait_out_the_grace(
    estate: Estate, listener: NotifyListener
) -> None:
    f = estate.write("L1/call.wav", age_days=30 - 3600 / 86400)  # due in an hour
    daemon = make(estate, listener)
    daemon.start()
    try:
        until = estate.clock.now() + timedelta(minutes=10)
        daemon.holds().place(Scope("L1"), case="C-1", reason="litigation", until=until,
                             actor=ALICE)  # fmt: skip
        daemon.holds_changed()
        daemon.step(None)
        assert daemon.timeout() == pytest.approx(600)  # the expiry, before the hour is up
        estate.clock.advance(2 * 3600)  # past the expiry and the recording's deadline
        daemon.step(None)
        assert f.exists()  # released, but not erased before holds.release_grace (7d)
        (released,) = [e for e in estate.audit() if e["action"] == "hold.released"]
        assert (released["actor"], released["details"]["expired"]) == ("recd", True)
        estate.clock.advance(7 * 86400)
        daemon.step(None)
        assert not f.exists()
    finally:
        daemon.stop()


def test_a_file_rewritten_since_indexing_is_reindexed_by_the_sweep_not_erased(
    estate: Estate, listener: NotifyListener
) -> None:
    f = estate.write("L1/call.wav", age_days=30 - 10 / 86400)  # due in 10 seconds
    daemon = make(estate, listener)
    daemon.start()
    try:
        estate.clock.advance(10)
        new = b"\x02" * 8192  # a new call written under the same name before the deadline
        f.write_bytes(new)
        now = estate.clock.now()
        os.utime(f, (now.timestamp(), now.timestamp()))
        daemon.step(None)  # the sweep, before the loop took the watcher's events
        assert f.read_bytes() == new
        row = daemon.runtime.catalogue.get(recording_id("pbx", "L1/call.wav"))
        assert row is not None
        assert (row.size, row.deadline) == (len(new), now + timedelta(days=30))
        assert not [a for a, _ in estate.actions() if a == "erase.done"]
    finally:
        daemon.stop()


def fail_after_writing(p: Held, fd: int, *args: Any, **kwargs: Any) -> int:
    """``overwrite_held`` failing after its first write (an I/O error): the file's ctime has
    moved on (the kernel's coarse clock ticked) and the writable descriptor is closed after it,
    so the watcher sees the file changed."""
    while os.fstat(fd).st_ctime_ns == p.st.st_ctime_ns:
        os.pwrite(fd, b"\0", 0)
        time.sleep(0.001)
    raise EraseError("overwrite failed: Input/output error")


def test_a_failing_erase_logs_one_line_and_waits_for_the_retry_not_its_own_file_events(
    estate: Estate,
    listener: NotifyListener,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found under systemd: the failed erase's own file events re-indexed the file, which was
    due, so the loop swept again at once and failed again, logging the same line each time."""
    f = estate.write("L1/old.wav", age_days=31)
    monkeypatch.setattr(erase, "overwrite_held", fail_after_writing)
    caplog.set_level(logging.INFO, logger="recd")
    daemon = make(estate, listener)
    daemon.start()  # the first scan, then a sweep: the erase fails
    try:
        # What the watcher queues when the erase closes its writable descriptor.
        daemon.inbox.queue.put(WatchEvent("pbx", "L1/old.wav", "changed", time.time()))
        daemon.step(daemon.next_event())
        failed = [m for m in caplog.messages if m.startswith("erase of ")]
        assert failed == [f"erase of {f} failed: overwrite failed: Input/output error"]
        assert [a for a, _ in estate.actions()] == ["erase.intent", "erase.failed"]
        row = daemon.runtime.catalogue.get(recording_id("pbx", "L1/old.wav"))
        assert row is not None and row.ctime_ns == f.stat().st_ctime_ns, "not re-indexed"
        assert daemon.timeout() == pytest.approx(RETRY.total_seconds())
        estate.clock.advance(RETRY.total_seconds())
        daemon.step(None)  # tried again once RETRY is up
        assert len([m for m in caplog.messages if m.startswith("erase of ")]) == 2
    finally:
        daemon.stop()
