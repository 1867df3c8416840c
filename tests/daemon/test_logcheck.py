"""The daemon and the check of the audit log at start (``recd.daemon.logcheck``; issue 14 point
2), in process: the mark kept current between steps; a log problem pauses sweeps and request
runs until acknowledged."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recd.adapters.auditlog.log import FileAuditLog
from recd.adapters.systemd import Notifier
from recd.core.audit import AuditDraft, seal_line
from recd.core.model import recording_id
from recd.core.scope import Scope
from recd.daemon.admin.dispatch import Admin
from recd.daemon.control import Caller
from recd.daemon.inbox import Command
from recd.daemon.loop import Daemon
from recd.daemon.outage import AUDIT_RETRY_CAP
from recd.errors import NotAllowedInState
from recd.ports.records import Actor
from recd.protocol import Request
from recd.service.holds import Holds
from tests.adapters.loopfs import Mounts
from tests.estate import Estate
from tests.fakes import FakeClock, NotifyListener
from tests.fulldisk import PAGE, audit_on, fill

ALICE = Actor("alice", 1001, admin=True)


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    return Estate(tmp_path, fake_clock)


@pytest.fixture
def daemon(estate: Estate, listener: NotifyListener) -> Iterator[Daemon]:
    d = Daemon(estate.config, estate.clock, Notifier(listener.path))
    yield d
    d.stop()


def ask(daemon: Daemon, command: str, **args: object) -> Any:
    caller = Caller(os.getpid(), 0, 0, ())
    return Admin(daemon).handle(Request(command, dict(args)), caller).unwrap()


def log_problem(daemon: Daemon) -> str | None:
    return daemon.log_problem  # read through a call: mypy would keep an earlier narrowing


def audit_problem(daemon: Daemon) -> str | None:
    return daemon.audit_problem  # likewise


def mark_seq(daemon: Daemon) -> int | None:
    mark = daemon.runtime.catalogue.audit_mark()
    return None if mark is None else mark.seq


def last_seq(daemon: Daemon) -> int:
    last = daemon.runtime.audit.last()
    assert last is not None
    return last.seq


def test_the_mark_follows_the_log_at_the_end_of_each_step(estate: Estate, daemon: Daemon) -> None:
    estate.write("L1/a.wav", age_days=5)
    daemon.start()
    assert mark_seq(daemon) == last_seq(daemon), "not marked at the end of the start"
    scope = Scope("L1", recordings=frozenset({recording_id("pbx", "L1/a.wav")}))
    daemon.holds().place(scope, case="C-1", reason="r", until=None, actor=ALICE)
    assert mark_seq(daemon) < last_seq(daemon)  # type: ignore[operator]
    daemon.step(None)
    assert mark_seq(daemon) == last_seq(daemon), "not marked at the end of the step"


def test_a_paused_daemon_sleeps_until_woken(estate: Estate, daemon: Daemon) -> None:
    """Erasing paused by a log problem, with a recording overdue and a sweep still wanted: the
    loop waits for a command (the acknowledgement) or its next rescan, instead of waking at
    once for ever (found spinning at 100 % CPU)."""
    for _ in range(3):
        assert estate.once()[0] == 0
    lines = estate.audit_path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"config.loaded"', b'"config.loadeD"')
    estate.audit_path.write_bytes(b"".join(lines))
    estate.write("L1/due.wav", age_days=40)
    daemon.start()
    daemon.step(None)
    assert (log_problem(daemon) or "").startswith(f"{estate.audit_path}: entry 2 does not verify")
    assert daemon.timeout() >= 60, "woken at once while nothing may be erased"
    daemon.acknowledge_log("alice", "checked")
    assert daemon.timeout() == 0.0, "the sweep the acknowledgement allows waits"


def test_a_log_problem_pauses_sweeps_and_request_runs_until_acknowledged(
    estate: Estate, daemon: Daemon
) -> None:
    for _ in range(3):
        assert estate.once()[0] == 0
    lines = estate.audit_path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"config.loaded"', b'"config.loadeD"')
    estate.audit_path.write_bytes(b"".join(lines))
    due = estate.write("L1/due.wav", age_days=40)

    daemon.start()
    daemon.step(None)

    assert due.exists()
    assert daemon.log_problem is not None
    assert daemon.log_problem.startswith(f"{estate.audit_path}: entry 2 does not verify")
    assert daemon.status() == f"erasing paused: {daemon.log_problem}"
    assert ask(daemon, "status")["audit_check"] == {"paused": True, "problem": daemon.log_problem}
    with pytest.raises(NotAllowedInState, match=r"^erasing paused: .*entry 2 does not verify"):
        daemon.run_request("R-1", ALICE)
    marked = mark_seq(daemon)
    assert marked is not None and marked < last_seq(daemon), "marked past the problem"

    seq, problem = daemon.acknowledge_log("alice", "checked")
    daemon.step(None)

    assert problem is not None and problem.startswith(f"{estate.audit_path}: entry 2")
    assert not due.exists()
    assert log_problem(daemon) is None
    assert ask(daemon, "status")["audit_check"] == {"paused": False, "problem": None}
    assert mark_seq(daemon) == last_seq(daemon) > seq
    with pytest.raises(NotAllowedInState, match="nothing to acknowledge"):
        daemon.acknowledge_log("alice", "again")
    entries = estate.audit()
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    entry = entries[seq - 1]
    assert (entry["action"], entry["actor"], entry["details"]["kind"]) == (
        "audit.acknowledged", "alice", "chain",
    )  # fmt: skip


def test_an_admin_command_that_fails_half_way_leaves_its_entry_to_the_replay(
    estate: Estate, daemon: Daemon
) -> None:
    daemon.start()
    before = mark_seq(daemon)
    assert before is not None

    def half_done() -> None:
        daemon.runtime.audit.append([AuditDraft("hold.placed", "H-0042", {})], estate.clock.now())
        raise sqlite3.OperationalError("disk I/O error")  # its catalogue change failed

    daemon.step(Command(half_done))
    daemon.step(None)

    assert mark_seq(daemon) == before < last_seq(daemon)


def test_a_replay_at_start_is_counted_by_why(estate: Estate, daemon: Daemon) -> None:
    estate.write("L1/a.wav", age_days=5)
    assert estate.once()[0] == 0
    rt = estate.runtime()
    scope = Scope("L1", recordings=frozenset({recording_id("pbx", "L1/a.wav")}))
    Holds(estate.config, rt.catalogue, rt.audit, estate.clock).place(
        scope, case="C-1", reason="r", until=None, actor=ALICE
    )
    rt.close()  # as if killed before the mark moved

    daemon.start()

    assert daemon.metrics is not None
    registry = daemon.metrics.registry
    counts = {
        why: registry.get_sample_value("recd_catalogue_rebuilds_total", {"why": why})
        for why in ("missing", "empty", "unmarked", "behind")
    }
    assert counts == {"missing": 0.0, "empty": 0.0, "unmarked": 0.0, "behind": 1.0}
    assert [e["details"]["why"] for e in estate.audit() if e["action"] == "catalogue.rebuilt"] == [
        "behind"
    ]


@pytest.mark.root
def test_a_log_problem_found_during_an_audit_outage_is_audited_once_the_log_can_be_written(
    estate: Estate, daemon: Daemon, tmp_path: Path
) -> None:
    with Mounts(tmp_path / "mounts") as mounts:
        disk = mounts.tmpfs(estate.base / "auditfs", size="64k").mountpoint
        audit_on(mounts, estate, disk)
        for _ in range(3):
            assert estate.once()[0] == 0
        lines = estate.audit_path.read_bytes().splitlines(keepends=True)
        lines[1] = lines[1].replace(b'"config.loaded"', b'"config.loadeD"')
        estate.audit_path.write_bytes(b"".join(lines))
        with FileAuditLog.open(estate.audit_path, estate.clock.now()) as log:
            pad = PAGE - 64 - log.end_offset() % PAGE  # the next entries will not fit
            bare = len(to_line_of(log, estate))
            log.append([AuditDraft("test.padding", "-", {"pad": "x" * ((pad - bare) % PAGE)})],
                       estate.clock.now())  # fmt: skip
        filler = fill(disk)
        due = estate.write("L1/due.wav", age_days=40)

        daemon.start()  # config.loaded and audit.problem cannot be written
        assert daemon.audit_problem == (
            f"the audit log {estate.audit_path} cannot be written: No space left on device"
        )
        assert (log_problem(daemon) or "").startswith(f"{estate.audit_path}: entry 2 does not")
        assert "audit.problem" not in estate.audit_path.read_text()
        filler.unlink()
        estate.clock.advance(AUDIT_RETRY_CAP)
        daemon.step(None)

        assert audit_problem(daemon) is None
        assert (log_problem(daemon) or "").startswith(f"{estate.audit_path}: entry 2 does not")
        assert due.exists(), "erased with the log in doubt once it was writable"
        actions = [e["action"] for e in estate.audit()][-3:]
        assert actions == ["config.loaded", "audit.problem", "audit.resumed"]
        daemon.stop()


def to_line_of(log: FileAuditLog, estate: Estate) -> bytes:
    """The padding entry's line with an empty pad, as the log would seal it next."""
    last = log.last()
    assert last is not None
    draft = AuditDraft("test.padding", "-", {"pad": ""})
    return seal_line(draft, seq=last.seq + 1, prev=last.hash, time=estate.clock.now())[1]
