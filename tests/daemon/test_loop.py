"""The daemon's lifecycle in-process (``recd.daemon.loop``): step() driven by a fake clock, real
state, real signals; start, stop, reload, the watchdog and the open file limit."""

from __future__ import annotations

import logging
import os
import resource
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from recd.adapters.systemd import Notifier
from recd.cli.client import call
from recd.config.load import CatalogueSettings, Config
from recd.core.periods import parse_period
from recd.core.pgurl import PostgresURL
from recd.daemon.inbox import Command
from recd.daemon.loop import Daemon
from recd.daemon.serving import FD_CEILING
from recd.daemon.signals import Event
from recd.errors import (
    ConfigInvalid,
    ConfigProblem,
    DaemonUnavailable,
    StateError,
)
from recd.protocol import Request
from tests.daemon.helpers import drain, make
from tests.estate import Estate
from tests.fakes import FakeClock, NotifyListener


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
    daemon.inbox.queue.put(Event.STOP)
    assert daemon.run() == 0
    assert drain(listener)[-1] == "STOPPING=1\nSTATUS=stopping"


def test_stop_before_start_answers_the_commands_still_queued(
    estate: Estate, listener: NotifyListener
) -> None:
    daemon = make(estate, listener)
    ran: list[int] = []
    queued = Command(lambda: ran.append(1))
    daemon.inbox.queue.put(queued)
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


def test_reload_to_an_unreachable_shared_catalogue_keeps_the_sqlite_one_and_says_why(
    estate: Estate, listener: NotifyListener, caplog: pytest.LogCaptureFixture
) -> None:
    """A reload naming a database that cannot be reached goes back to the catalogue before."""
    gone = estate.root / "no-server"
    url = PostgresURL(f"postgresql:///recd?host={gone}", "recd", (str(gone),))
    shared = replace(estate.config, catalogue=CatalogueSettings(url))
    daemon = make(estate, listener, loader=lambda path: shared)
    daemon.start()
    try:
        old = daemon.config
        daemon.step(Event.RELOAD)
        assert daemon.config is old
        failed = [m for m in caplog.messages if m.startswith("reload failed: ")]
        assert len(failed) == 1
        assert failed[0].startswith(f'reload failed: catalogue database "recd" on {gone}: ')
        assert failed[0].endswith("; going back to the configuration before")
        assert daemon.dbwait.problem is None
    finally:
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


def test_start_raises_a_low_open_file_limit_and_says_so(
    estate: Estate, listener: NotifyListener, caplog: pytest.LogCaptureFixture
) -> None:
    saved = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard = saved[1]
    wanted = FD_CEILING if hard == resource.RLIM_INFINITY else min(hard, FD_CEILING)
    if wanted <= 1024:  # pragma: no cover (a host whose hard limit leaves nothing to raise)
        pytest.skip(f"the hard RLIMIT_NOFILE is {hard}: nothing above 1024 to raise to")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # a unit without LimitNOFILE=
    daemon = make(estate, listener)
    try:
        with caplog.at_level(logging.INFO, logger="recd"):
            daemon.start()
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == wanted
        assert f"open file limit raised from 1024 to {wanted}" in caplog.messages
    finally:
        daemon.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, saved)


def test_a_failed_reload_whose_old_state_is_gone_too_stops_recd_with_the_error(
    estate: Estate, listener: NotifyListener
) -> None:
    (estate.base / "a-file").write_bytes(b"")
    unusable = replace(
        estate.config, daemon=replace(estate.config.daemon, state_dir=estate.base / "a-file" / "s")
    )
    state = estate.config.daemon.state_dir

    def load_after_the_state_was_moved(path: Path) -> Config:
        state.rename(estate.base / "state.moved")  # moved away by hand while recd runs
        state.write_bytes(b"")  # and something else put in its place
        return unusable

    daemon = make(estate, listener, loader=load_after_the_state_was_moved)
    daemon.inbox.queue.put(Event.RELOAD)
    with pytest.raises(StateError) as caught:
        daemon.run()
    assert str(caught.value) == f"{state}: cannot create the state directory: File exists"
    assert daemon.audit_problem is None  # not taken for an audit log that cannot be written
    assert drain(listener)[-1] == "STOPPING=1\nSTATUS=stopping"


def test_a_state_dir_that_cannot_be_used_is_refused_and_the_old_one_kept(
    tmp_path: Path, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    estate = Estate(tmp_path, fake_clock)
    kept = estate.write("L1/a.wav", age_days=1)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    bad = replace(estate.config.daemon, state_dir=blocker / "state")

    def loader(path: Path) -> Config:
        return replace(estate.config, daemon=bad)

    daemon = Daemon(estate.config, estate.clock, Notifier(None), loader=loader)
    daemon.start()
    try:
        daemon.step(Event.RELOAD)
        assert "reload failed: " in caplog.text
        assert "cannot create the state directory" in caplog.text
        assert daemon.config is estate.config
        reply = call(estate.config.daemon.socket, Request("status"), timeout=10).unwrap()
        assert reply["recordings"] == 1 and kept.exists()
    finally:
        daemon.stop()
