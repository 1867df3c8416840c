"""The daemon's lifecycle in-process: step() driven by a fake clock, real state, real signals."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from recd.adapters.systemd import Notifier
from recd.admin import Admin
from recd.client import call
from recd.config import Config, RetentionSettings
from recd.control import Caller
from recd.core.model import UnclassifiedPolicy, recording_id
from recd.core.periods import parse_period
from recd.daemon import RETRY, Daemon, Event
from recd.errors import (
    ConfigInvalid,
    ConfigProblem,
    DaemonUnavailable,
    StateError,
    UsageError,
)
from recd.inbox import Command
from recd.metrics import Metrics
from recd.protocol import ErrorKind, RemoteError, Request
from recd.service import indexing
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


def test_watchdog_ping_when_due_not_on_every_wake_up(
    estate: Estate, listener: NotifyListener
) -> None:
    daemon = make(estate, listener, watchdog=15.0)
    daemon.start()
    try:
        drain(listener)
        assert daemon.timeout() == 15.0
        daemon.step(None)
        assert "WATCHDOG=1" not in drain(listener)  # a busy loop does not flood systemd
        estate.clock.advance(15)
        assert daemon.timeout() == 0.0
        daemon.step(None)
        assert drain(listener)[-1] == "WATCHDOG=1"
        assert daemon.timeout() == 15.0
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


# -- lifecycle edges: stopping, commands, reloads that move things ----------------------------


def test_stop_before_start_answers_the_commands_still_queued(
    estate: Estate, listener: NotifyListener
) -> None:
    daemon = make(estate, listener)
    ran: list[int] = []
    queued = Command(lambda: ran.append(1))
    daemon.events.put(queued)
    daemon.stop()  # nothing was opened: nothing to close
    error = queued.future.exception(timeout=0)
    assert type(error) is DaemonUnavailable
    assert str(error) == "recd stopped before running it"
    with pytest.raises(DaemonUnavailable, match=r"^recd is stopping; try again when it is back$"):
        daemon.call_soon(lambda: 1)
    assert ran == []
    assert drain(listener) == ["STOPPING=1\nSTATUS=stopping"]


def test_a_command_cancelled_before_the_loop_takes_it_is_not_run(
    estate: Estate, listener: NotifyListener
) -> None:

    daemon = make(estate, listener)
    daemon.start()
    try:
        ran: list[int] = []
        command = Command(lambda: ran.append(1))
        assert command.future.cancel()
        daemon.step(command)
        assert ran == []
        assert command.future.cancelled()
    finally:
        daemon.stop()


def test_a_failed_start_closes_the_state_it_opened(
    estate: Estate, listener: NotifyListener
) -> None:

    estate.runtime().close()
    # An intent pointing past the end of the audit log (one restored from a backup).
    db = sqlite3.connect(estate.config.daemon.state_dir / "catalog.db")
    with db:
        db.execute("INSERT INTO intents VALUES ('i1', 'r1', 1000000000, '.recd-erase-x', '{}', 0)")
    db.close()
    daemon = make(estate, listener)
    with pytest.raises(ValueError, match=r"^offset 1000000000 is outside the audit log"):
        daemon.start()
    daemon.stop()
    estate.runtime().close()  # the audit log's lock was released: it opens again


def test_reload_moves_the_admin_socket_and_the_metrics(
    estate: Estate, listener: NotifyListener
) -> None:
    moved = replace(
        estate.config,
        daemon=replace(estate.config.daemon, socket=estate.base / "moved.sock"),
        metrics=replace(estate.config.metrics, per_licence=False),
    )
    estate.write("L1/a.wav", age_days=1)
    daemon = make(estate, listener, loader=lambda path: moved)
    daemon.start()
    try:
        before = daemon.metrics
        assert before is not None
        assert before.registry.get_sample_value("recd_recordings", {"licence": "L1"}) == 1.0
        daemon.step(Event.RELOAD)
        assert not estate.config.daemon.socket.exists()
        assert call(moved.daemon.socket, Request("status")).unwrap()["recordings"] == 1
        after: Metrics | None = daemon.metrics
        assert after is before  # the same counters live on
        assert after.address is not None  # same listen address: still served
        assert after.registry.get_sample_value("recd_recordings", {"licence": "L1"}) is None
        assert after.registry.get_sample_value("recd_recordings") == 1.0  # one total, no labels
    finally:
        daemon.stop()


def test_reload_to_a_state_dir_that_cannot_be_used_goes_back_to_the_old_config(
    estate: Estate, listener: NotifyListener, caplog: pytest.LogCaptureFixture
) -> None:
    (estate.base / "a-file").write_bytes(b"")
    unusable = replace(
        estate.config, daemon=replace(estate.config.daemon, state_dir=estate.base / "a-file" / "s")
    )
    f = estate.write("L1/due.wav", age_days=29)
    daemon = make(estate, listener, loader=lambda path: unusable)
    daemon.start()
    try:
        old = daemon.config
        daemon.step(Event.RELOAD)
        assert daemon.config is old
        assert (
            f"reload failed: {estate.base}/a-file/s: cannot create the state directory: Not a "
            "directory; going back to the configuration before"
        ) in caplog.messages
        estate.clock.advance(2 * 86400)  # and it goes on working: erases at the deadline
        daemon.step(None)
        assert not f.exists()
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


def test_start_with_the_clock_behind_the_audit_log_erases_nothing(
    estate: Estate, listener: NotifyListener
) -> None:
    assert estate.once()[0] == 0  # audit entries written at "now"
    f = estate.write("L1/due.wav", age_days=31)
    estate.clock.set(estate.clock.now() - timedelta(minutes=10))
    daemon = make(estate, listener)
    daemon.start()
    try:
        assert f.exists()
        assert daemon.clock_problem == "wall clock is 10m behind the last audit entry"
        assert "STATUS=erasing paused: wall clock is 10m behind the last audit entry" in drain(
            listener
        )
    finally:
        daemon.stop()


def test_a_long_scan_reports_its_progress(
    estate: Estate, listener: NotifyListener, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setattr(indexing, "BATCH", 2)  # a progress report every 2 files, not 5000
    for i in range(5):  # one directory each: the indexer flushes between directories
        estate.write(f"L{i}/a.wav", age_days=1)
    daemon = make(estate, listener, watchdog=15.0)
    daemon.start()
    try:
        messages = drain(listener)
        assert [m for m in messages if "so far" in m] == [
            "STATUS=scanning pbx: 2 files so far",
            "STATUS=scanning pbx: 4 files so far",
        ]
        assert "WATCHDOG=1" not in messages  # the fake clock stood still: none was due yet
    finally:
        daemon.stop()


# -- admin reads on a started daemon ----------------------------------------------------------


def ask(daemon: Daemon, command: str, **args: object) -> Any:
    caller = Caller(os.getpid(), 0, 0, ())
    return Admin(daemon).handle(Request(command, dict(args)), caller).unwrap()


def twins(prefix: str = "L1/call") -> tuple[str, str, str]:
    """Two relpaths whose recording ids share their first 6 digits, and those digits."""
    seen: dict[str, str] = {}
    for i in range(1_000_000):
        relpath = f"{prefix}{i}.wav"
        head = recording_id("pbx", relpath)[:6]
        if head in seen:
            return seen[head], relpath, head
        seen[head] = relpath
    raise AssertionError("no two ids alike")  # pragma: no cover (the birthday bound: ~5000)


def test_show_refuses_an_id_prefix_two_recordings_share(
    estate: Estate, listener: NotifyListener
) -> None:

    first, second, head = twins()
    estate.write(first, age_days=1)
    estate.write(second, age_days=1)
    daemon = make(estate, listener)
    daemon.start()
    try:
        with pytest.raises(UsageError) as caught:
            ask(daemon, "show", id=head)
        assert str(caught.value) == f"recording id {head} is ambiguous: give more of it"
    finally:
        daemon.stop()


def test_retention_rules_name_where_each_period_comes_from(
    estate: Estate, listener: NotifyListener
) -> None:
    estate.configure(retention=RetentionSettings(unclassified=UnclassifiedPolicy.DEFAULT))
    estate.write("L1/a.wav", age_days=1)
    estate.write("L7/b.wav", age_days=1)  # a licence with no file in licences.d
    estate.write("unknown/c.wav", age_days=1)  # unclassified
    daemon = make(estate, listener)
    daemon.start()
    try:
        rows = {r["licence"]: r for r in ask(daemon, "ls")}
        shown = {k: ask(daemon, "show", id=r["id"])["retention"] for k, r in rows.items()}
        # started a day ago + 30 days, whichever rule gave the 30 days
        assert {k: v.pop("deadline") for k, v in shown.items()} == dict.fromkeys(
            shown, "2026-12-22T12:00:00Z"
        )
        assert shown == {
            "L1": {"period": "30d", "rule": f"retention in {estate.base}/l1.toml"},
            "L7": {
                "period": "30d",
                "rule": f"retention.default in {estate.config.path} (licence not in licences.d)",
            },
            None: {
                "period": "30d",
                "rule": f"retention.unclassified = default (retention.default in "
                f"{estate.config.path})",
            },
        }
    finally:
        daemon.stop()


def test_policy_leaves_out_the_unclassified_when_there_are_none_to_keep(
    estate: Estate, listener: NotifyListener
) -> None:
    estate.write("L1/a.wav", age_days=1)
    daemon = make(estate, listener)
    daemon.start()
    try:
        assert [(r["licence"], r["recordings"]) for r in ask(daemon, "policy")] == [
            ("L1", 1), ("L2", 0),
        ]  # fmt: skip
    finally:
        daemon.stop()


def test_ls_of_every_state(estate: Estate, listener: NotifyListener) -> None:
    estate.write("L1/old.wav", age_days=31)
    estate.write("L1/new.wav", age_days=1)
    daemon = make(estate, listener)
    daemon.start()
    try:
        listed = ask(daemon, "ls", state="all")
        assert sorted((r["location"].rpartition("/")[2], r["state"]) for r in listed) == [
            ("new.wav", "present"), ("old.wav", "erased"),
        ]  # fmt: skip
    finally:
        daemon.stop()


def test_scan_of_a_source_that_cannot_be_scanned_is_an_error(
    estate: Estate, listener: NotifyListener
) -> None:
    daemon = make(estate, listener)
    daemon.start()

    def loop() -> None:
        while not daemon.stopping:
            daemon.step(daemon.next_event())

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        shutil.rmtree(estate.root)
        with pytest.raises(RemoteError) as caught:
            call(estate.config.daemon.socket, Request("scan", {"source": "pbx"})).unwrap()
        assert (caught.value.kind, str(caught.value)) == (
            ErrorKind.FAILED,
            f"source pbx: cannot scan {estate.root}: No such file or directory",
        )
    finally:
        daemon.handle_signal(signal.SIGTERM, None)
        thread.join()
        daemon.stop()


def test_the_loop_wakes_with_nothing_when_a_deadline_comes_first(
    estate: Estate, listener: NotifyListener
) -> None:
    f = estate.write("L1/soon.wav", age_days=30 - 0.01 / 86400)  # due in 10 ms
    daemon = make(estate, listener)
    daemon.start()
    try:
        assert 0 < daemon.timeout() <= 0.01
        assert daemon.next_event() is None  # after waiting (for real) until then
        estate.clock.advance(0.01)
        daemon.step(None)
        assert not f.exists()
    finally:
        daemon.stop()


def test_a_second_recd_on_the_same_state_refuses_to_start(
    estate: Estate, listener: NotifyListener
) -> None:
    first = make(estate, listener)
    first.start()
    try:
        second = make(estate, listener)
        with pytest.raises(StateError) as caught:
            second.run()
        assert str(caught.value) == (
            f"{estate.config.daemon.state_dir}/audit.log: in use by another recd process"
        )
        assert call(estate.config.daemon.socket, Request("status")).unwrap()["pid"] == os.getpid()
    finally:
        first.stop()
