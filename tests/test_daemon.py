"""The daemon's lifecycle in-process: step() driven by a fake clock, real state, real signals."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from recd.adapters.systemd import Notifier
from recd.config import Config
from recd.core.periods import parse_period
from recd.daemon import RETRY, Daemon, Event
from recd.errors import ConfigInvalid, ConfigProblem
from tests.estate import Estate
from tests.fakes import FakeClock, NotifyListener


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    return Estate(tmp_path, fake_clock)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[NotifyListener]:
    sock = NotifyListener(str(tmp_path / "notify"))
    yield sock
    sock.close()


def make(estate: Estate, listener: NotifyListener, **kwargs: object) -> Daemon:
    return Daemon(estate.config, estate.clock, Notifier(listener.path), **kwargs)  # type: ignore[arg-type]


def drain(listener: NotifyListener) -> list[str]:
    while listener.receive(timeout=0.05) is not None:
        pass
    out, listener.messages = listener.messages, []
    return out


def test_start_reports_ready_then_erases_what_is_due(
    estate: Estate, listener: NotifyListener
) -> None:
    due = estate.write("L1/due.wav", age_days=31)
    later = estate.write("L1/later.wav", age_days=29)
    daemon = make(estate, listener)
    daemon.start()
    try:
        assert not due.exists() and later.exists()
        messages = drain(listener)
        assert messages[0] == "READY=1\nSTATUS=scanning sources"
        assert messages[-1].startswith("STATUS=next deadline 2026-")
    finally:
        daemon.stop()
    assert drain(listener) == ["STOPPING=1\nSTATUS=stopping"]


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


def test_rescan_happens_when_due(estate: Estate, listener: NotifyListener) -> None:
    daemon = make(estate, listener)
    daemon.start()
    try:
        assert daemon.timeout() == pytest.approx(3600.0)
        new = estate.write("L1/new.wav", age_days=40)
        estate.clock.advance(6 * 3600)  # daemon.rescan default: 6h
        daemon.step(None)
        assert not new.exists()
    finally:
        daemon.stop()


def test_watchdog_ping_each_step(estate: Estate, listener: NotifyListener) -> None:
    daemon = make(estate, listener, watchdog=15.0)
    daemon.start()
    try:
        drain(listener)
        assert daemon.timeout() == 15.0
        daemon.step(None)
        assert drain(listener)[-1] == "WATCHDOG=1"
    finally:
        daemon.stop()


def test_reload_with_a_bad_config_keeps_the_old_one(
    estate: Estate, listener: NotifyListener, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(path: Path) -> Config:
        raise ConfigInvalid([ConfigProblem(str(path), "erase.settle", 'not a period: "soon"')])

    daemon = make(estate, listener, loader=broken)
    daemon.start()
    try:
        old = daemon.config
        drain(listener)
        daemon.step(Event.RELOAD)
        assert daemon.config is old
        messages = drain(listener)
        assert messages[0] == "RELOADING=1\nSTATUS=reloading configuration"
        assert any(m.startswith("READY=1\nSTATUS=next deadline") for m in messages)
        assert f'reload refused: {old.path}: erase.settle: not a period: "soon"' in caplog.messages
    finally:
        daemon.stop()


def test_reload_that_shortens_retention_erases_at_once(
    estate: Estate, listener: NotifyListener
) -> None:
    f = estate.write("L2/forty.wav", age_days=40)
    shorter = replace(
        estate.config,
        licences={
            **estate.config.licences,
            "L2": replace(estate.config.licences["L2"], retention=parse_period("30d")),
        },
    )
    daemon = make(estate, listener, loader=lambda path: shorter)
    daemon.start()
    try:
        assert f.exists()
        daemon.step(Event.RELOAD)
        assert not f.exists()
        assert daemon.config is shorter
    finally:
        daemon.stop()


def test_stop_event_ends_the_loop(estate: Estate, listener: NotifyListener) -> None:
    daemon = make(estate, listener)
    daemon.events.put(Event.STOP)
    assert daemon.run() == 0
    assert drain(listener)[-1] == "STOPPING=1\nSTATUS=stopping"


def test_signal_handlers_only_enqueue(estate: Estate, listener: NotifyListener) -> None:
    daemon = make(estate, listener)
    saved = {s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)}
    try:
        daemon.install_signals()
        signal.raise_signal(signal.SIGHUP)
        signal.raise_signal(signal.SIGTERM)
        assert [daemon.events.get_nowait(), daemon.events.get_nowait()] == [
            Event.RELOAD, Event.STOP,
        ]  # fmt: skip
        assert daemon.events.empty()
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def test_a_pending_signal_interrupts_a_long_sweep_between_batches(
    estate: Estate, listener: NotifyListener
) -> None:
    for i in range(300):  # more than one batch of 256
        estate.write(f"L1/old{i:03}.wav", age_days=31, data=b"x")
    daemon = make(estate, listener)
    daemon._open(estate.config)
    try:
        from recd.runtime import scan_all

        scan_all(daemon.runtime)
        daemon.handle_signal(signal.SIGTERM, None)  # what a SIGTERM does
        report = daemon._sweep()
        assert report is not None
        assert (report.erased, report.interrupted) == (256, True)
        assert len(list((estate.root / "L1").iterdir())) == 44
    finally:
        daemon.stop()


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
