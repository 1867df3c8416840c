"""The daemon's lifecycle in-process: step() driven by a fake clock, real state, real signals."""

from __future__ import annotations

import errno
import io
import logging
import os
import resource
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recd.adapters.systemd import Notifier
from recd.cli.client import call
from recd.config.load import Config, RetentionSettings, SourceConfig
from recd.core.model import UnclassifiedPolicy, recording_id
from recd.core.periods import parse_period
from recd.core.requeststate import RequestState
from recd.core.scope import Scope
from recd.daemon.admin.dispatch import Admin
from recd.daemon.control import Caller
from recd.daemon.inbox import Command, Inbox
from recd.daemon.loop import Daemon
from recd.daemon.metrics import Metrics
from recd.daemon.outage import AUDIT_RETRY_BASE, AUDIT_RETRY_CAP
from recd.daemon.runtime import ClockConfirmation, run_once
from recd.daemon.serving import FD_CEILING
from recd.daemon.signals import Event
from recd.daemon.sweeps import RETRY
from recd.errors import (
    ConfigInvalid,
    ConfigProblem,
    DaemonUnavailable,
    ExitCode,
    NotAllowedInState,
    StateError,
    UsageError,
)
from recd.ports.records import Actor
from recd.protocol import ErrorKind, RemoteError, Request
from recd.service import indexing
from tests.adapters.loopfs import Mounts
from tests.estate import Estate
from tests.fakes import FakeClock, NotifyListener
from tests.fulldisk import audit_on, fill, pad_to_page_end
from tests.s3server import s3_client


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    return Estate(tmp_path, fake_clock)


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
    daemon.inbox.queue.put(Event.STOP)
    assert daemon.run() == 0
    assert drain(listener)[-1] == "STOPPING=1\nSTATUS=stopping"


def test_signal_handlers_only_enqueue(estate: Estate, listener: NotifyListener) -> None:
    daemon = make(estate, listener)
    saved = {s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)}
    try:
        daemon.install_signals()
        signal.raise_signal(signal.SIGHUP)
        signal.raise_signal(signal.SIGTERM)
        assert [daemon.inbox.queue.get_nowait(), daemon.inbox.queue.get_nowait()] == [
            Event.RELOAD, Event.STOP,
        ]  # fmt: skip
        assert daemon.inbox.queue.empty()
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


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


# -- lifecycle edges: stopping, commands, reloads that move things ----------------------------


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


# -- start: the open file limit, a state that is not recd's, a clock far ahead for --once ------


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


def test_a_symlink_planted_as_the_catalogue_is_refused_and_not_followed(
    estate: Estate, listener: NotifyListener
) -> None:
    state = estate.config.daemon.state_dir
    state.mkdir(mode=0o750)
    elsewhere = estate.base / "elsewhere.db"
    (state / "catalog.db").symlink_to(elsewhere)
    daemon = make(estate, listener)
    with pytest.raises(StateError) as caught:
        daemon.start()
    daemon.stop()
    assert str(caught.value) == (
        f"{state}/catalog.db: cannot make the state private: Too many levels of symbolic links"
    )
    assert not elsewhere.exists()  # SQLite never created the file the link points to


def test_once_with_the_clock_far_ahead_erases_nothing_until_an_administrator_confirms(
    tmp_path: Path,
) -> None:
    estate = Estate(tmp_path, FakeClock(datetime.now(UTC)))
    due = estate.write("L1/due.wav", age_days=31)
    estate.clock.set(estate.clock.now() + timedelta(days=10))  # ahead of the tree's ctimes
    with pytest.raises(NotAllowedInState) as caught:
        estate.once()
    assert str(caught.value) == (
        "erasing nothing: wall clock is 10d ahead of the newest recording (more than "
        "safety.max_clock_gap 3d); check the clock, then run `recd --once --confirm-clock`"
    )
    assert due.exists() and estate.audit() == []
    out = io.StringIO()
    confirm = ClockConfirmation("root", "NTP checked against two servers")
    assert run_once(estate.config, estate.clock, out, confirm) == ExitCode.OK
    assert not due.exists()
    assert [e["action"] for e in estate.audit()][:2] == ["config.loaded", "clock.confirmed"]
    confirmed = estate.audit()[1]
    assert confirmed["actor"] == "root"
    assert confirmed["details"]["reason"] == "NTP checked against two servers"
    assert confirmed["details"]["problem"].startswith("wall clock is 10d ahead")


def test_once_compares_the_clock_with_the_newest_object_of_an_s3_source_too(
    tmp_path: Path, s3_endpoint: str, make_bucket: Callable[[str], str]
) -> None:
    bucket = make_bucket("versioned")
    s3_client(s3_endpoint).put_object(Bucket=bucket, Key="L1/20261120120000_a.wav", Body=b"a")
    estate = Estate(tmp_path, FakeClock(datetime.now(UTC) + timedelta(seconds=5)))
    rule = estate.config.sources[0].rule
    archive = SourceConfig(
        "archive", "s3", rule, bucket=bucket, endpoint_url=s3_endpoint, region="us-east-1"
    )
    estate.configure(sources=(archive,))  # no directory: no change time to go by
    assert estate.once()[0] == ExitCode.OK  # indexes the key (LastModified: the store's clock)
    estate.clock.set(estate.clock.now() + timedelta(days=10))
    with pytest.raises(NotAllowedInState) as caught:
        estate.once()
    assert str(caught.value).startswith(
        "erasing nothing: wall clock is 10d ahead of the last audit entry and the newest "
        "recording (more than safety.max_clock_gap 3d)"
    )


# -- the loop: holds expiring, files changed under a sweep, scans racing a reload -------------


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


def test_a_scan_of_a_source_a_reload_removed_meanwhile_scans_nothing(
    estate: Estate, listener: NotifyListener
) -> None:
    pbx = estate.config.sources[0]
    (estate.base / "more").mkdir()
    estate.configure(sources=(pbx, replace(pbx, name="pbx2", path=estate.base / "more")))
    without = replace(estate.config, sources=(pbx,))
    daemon = make(estate, listener, loader=lambda path: without)
    daemon.start()
    try:
        daemon.handle_signal(signal.SIGHUP, None)  # the reload comes first...
        replies: list[Any] = []
        # ...then `recctl scan --source pbx2`, checked against the configuration before it
        admin = threading.Thread(target=lambda: replies.append(ask(daemon, "scan", source="pbx2")))
        admin.start()
        deadline = time.monotonic() + 10
        while daemon.inbox.queue.qsize() < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        daemon.step(daemon.next_event())  # the reload: pbx2 is gone
        assert [s.name for s in daemon.config.sources] == ["pbx"]
        daemon.step(daemon.next_event())  # the scan of pbx2
        admin.join(timeout=10)
        assert replies == [[]]  # nothing scanned, and the loop goes on
    finally:
        daemon.stop()


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


# -- early-deletion runs cut short ------------------------------------------------------------

ALICE = Actor("alice", 1001, admin=True)
BOB = Actor("bob", 1002, admin=True)


def approve_request(daemon: Daemon) -> None:
    """REQ-1, for every recording of licence L1, registered by alice and approved by bob."""
    desk = daemon.requests()
    desk.register(
        {
            "request_id": "REQ-1",
            "licence": "L1",
            "requested_by": {"name": "Jane Doe", "email": "dpo@x.example", "role": "DPO"},
            "received": "2026-11-20T10:00:00Z",
            "reason": "Erasure requested by the data subject",
            "evidence": "letter 77",
            "scope": {"all": True},
        },
        ALICE,
    )
    desk.approve("REQ-1", BOB)


def request_state(daemon: Daemon) -> RequestState:
    stored = daemon.runtime.catalogue.request("REQ-1")
    assert stored is not None
    return stored.state


def test_a_stop_during_a_run_fails_the_waiting_admin_and_the_next_start_finishes_it(
    estate: Estate, listener: NotifyListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("recd.service.requestruns.BATCH", 2)  # a batch every 2 files, not 256
    paths = [estate.write(f"L1/{n}_c1.wav", age_days=1) for n in range(5)]
    daemon = make(estate, listener)
    daemon.start()
    try:
        approve_request(daemon)
        daemon.handle_signal(signal.SIGTERM, None)  # the stop arrives as the run starts
        future = daemon.run_request("REQ-1", ALICE)
        assert sum(not p.exists() for p in paths) == 2  # one batch, then it yielded
        assert not future.done()
        daemon.step(daemon.next_event())
        assert daemon.stopping
    finally:
        daemon.stop()
    error = future.exception(timeout=0)
    assert type(error) is DaemonUnavailable
    assert str(error) == "recd stopped during the run; it resumes when recd starts"
    again = make(estate, listener)
    again.start()
    try:
        assert not any(p.exists() for p in paths)
        assert request_state(again) is RequestState.COMPLETED
    finally:
        again.stop()


def test_a_resumed_run_yields_again_to_a_signal_and_ends_after_it(
    estate: Estate, listener: NotifyListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("recd.service.requestruns.BATCH", 2)
    paths = [estate.write(f"L1/{n}_c1.wav", age_days=1) for n in range(7)]
    daemon = make(estate, listener, loader=lambda path: estate.config)
    daemon.start()
    try:
        approve_request(daemon)
        daemon.handle_signal(signal.SIGHUP, None)
        future = daemon.run_request("REQ-1", ALICE)
        assert sum(not p.exists() for p in paths) == 2
        # A second SIGHUP lands while the loop resumes the run, once it has erased 2 more:
        # nothing real times a signal between two batches, so the inbox, asked whether
        # anything urgent waits, sends it.
        urgent = Inbox.urgent
        sent: list[int] = []

        def second_sighup_mid_run(inbox: Inbox) -> bool:
            if inbox is daemon.inbox and not sent and sum(not p.exists() for p in paths) == 4:
                sent.append(1)
                daemon.handle_signal(signal.SIGHUP, None)
            return bool(urgent.fget(inbox))  # type: ignore[attr-defined]

        monkeypatch.setattr(Inbox, "urgent", property(second_sighup_mid_run))
        daemon.step(daemon.next_event())  # the first reload, then the run resumes
        assert sent and sum(not p.exists() for p in paths) == 4
        assert not future.done() and request_state(daemon) is RequestState.EXECUTING
        for _ in range(20):  # the erasures' file events, the second reload, then the run ends
            if future.done():
                break
            daemon.step(daemon.next_event())
        assert not any(p.exists() for p in paths)
        stored, _items = future.result(timeout=0)
        assert stored.state is RequestState.COMPLETED
    finally:
        daemon.stop()


# -- the audit log cannot be written (root: its own small filesystem, filled) -----------------


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    with Mounts(tmp_path / "mounts") as m:
        yield m


def audit_disk(estate: Estate, mounts: Mounts) -> Path:
    """Put the audit log alone on a 64k tmpfs (a file bind mount); returns its mount point."""
    disk = mounts.tmpfs(estate.base / "auditfs", size="64k").mountpoint
    audit_on(mounts, estate, disk)
    return disk


def audit_problem(daemon: Daemon) -> str | None:
    """Why the daemon finds the audit log unwritable, read afresh (no type narrowing)."""
    return daemon.audit_problem


@pytest.mark.root
def test_a_start_with_a_full_audit_disk_serves_and_indexes_but_erases_only_once_it_can_write(
    estate: Estate, listener: NotifyListener, mounts: Mounts, caplog: pytest.LogCaptureFixture
) -> None:
    filler = fill(audit_disk(estate, mounts))
    due = estate.write("L1/due.wav", age_days=31)
    daemon = make(estate, listener)
    daemon.start()  # config.loaded cannot be written: recd starts anyway, erasing paused
    try:
        problem = f"the audit log {estate.audit_path} cannot be written: No space left on device"
        assert due.exists()
        assert daemon.status() == f"erasing paused: {problem}"
        assert ask(daemon, "status")["audit_log"] == {"writable": False, "problem": problem}
        assert [r["location"].rpartition("/")[2] for r in ask(daemon, "ls")] == ["due.wav"]
        assert f"STATUS=erasing paused: {problem}" in drain(listener)
        assert estate.audit_path.read_bytes() == b""
        assert 0 < daemon.timeout() <= AUDIT_RETRY_BASE * 2  # the first retry, not an hour
        filler.unlink()
        estate.clock.advance(AUDIT_RETRY_CAP)
        with caplog.at_level(logging.WARNING, logger="recd"):
            daemon.step(None)
        assert not due.exists()
        assert daemon.audit_problem is None and daemon.status().startswith("next deadline")
    finally:
        daemon.stop()
    entries = estate.audit()
    # config.loaded of this start, written late but first, then the end of the outage
    assert [e["action"] for e in entries] == [
        "config.loaded", "audit.resumed", "erase.intent", "erase.done",
    ]  # fmt: skip
    assert entries[0]["details"]["daemon"] is True
    assert entries[1]["details"]["error"] == problem
    assert any("audit log writable again after" in m for m in caplog.messages)


@pytest.mark.root
def test_an_admin_command_whose_entry_cannot_be_written_pauses_erasing_and_one_later_resumes_it(
    estate: Estate, listener: NotifyListener, mounts: Mounts, caplog: pytest.LogCaptureFixture
) -> None:
    disk = audit_disk(estate, mounts)
    due = estate.write("L1/soon.wav", age_days=30 - 60 / 86400)  # due in a minute
    daemon = make(estate, listener)
    daemon.start()

    def clock_confirm() -> Any:
        """`recctl clock confirm` from an admin connection; the loop takes it."""
        replies: list[Any] = []

        def admin() -> None:
            try:
                replies.append(ask(daemon, "clock confirm", reason="checked"))
            except OSError as exc:
                replies.append(exc)

        thread = threading.Thread(target=admin)
        thread.start()
        daemon.step(daemon.next_event())
        thread.join(timeout=10)
        return replies[0]

    try:
        pad_to_page_end(daemon)
        filler = fill(disk)
        refused = clock_confirm()
        assert isinstance(refused, OSError) and refused.errno == errno.ENOSPC
        problem = f"the audit log {estate.audit_path} cannot be written: No space left on device"
        assert audit_problem(daemon) == problem  # noticed though the command caught its error
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
            f"erasing paused: {problem}; nothing is erased until an audit entry can be written "
            "(retrying with backoff)"
        ]
        assert daemon.metrics is not None
        errors = daemon.metrics.registry.get_sample_value("recd_audit_write_errors_total")
        assert errors is not None and errors >= 1
        estate.clock.advance(60)
        daemon.step(None)
        assert due.exists()  # due now, but its intent could not be written
        filler.unlink()
        confirmed = clock_confirm()  # written: the log is writable again
        assert confirmed["problem"] is None
        assert not due.exists()  # resumed at once, not at the next retry of the backoff
        assert audit_problem(daemon) is None
    finally:
        daemon.stop()
    actions = [e["action"] for e in estate.audit() if e["action"] != "test.padding"]
    assert actions[-4:] == ["clock.confirmed", "audit.resumed", "erase.intent", "erase.done"]
