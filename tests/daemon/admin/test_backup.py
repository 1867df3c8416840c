"""The daemon's `backup` and `backup written` commands in-process (a started daemon, its loop on a
thread, a real socket): one backup at a time, tokens, a catalogue ahead of its log, no temporary
file left in the state directory, each refusal and failure. The snapshot itself is tested in
tests/adapters/test_snapshot.py."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recd.cli import client
from recd.cli import main as recctl
from recd.cli.client import call
from recd.daemon.admin.backup import REMEMBERED
from recd.protocol import ErrorKind, Reply, Request
from tests.adapters.loopfs import Mounts
from tests.daemon.admin.helpers import Live, three_recordings
from tests.estate import Estate
from tests.fakes import FakeClock
from tests.fulldisk import audit_on, fill, pad_to_page_end


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    return three_recordings(tmp_path, fake_clock)


@pytest.fixture
def live(estate: Estate) -> Iterator[Live]:
    running = Live(estate)
    yield running
    running.close()


def ask(live: Live, command: str, **args: Any) -> Reply:
    return call(live.estate.config.daemon.socket, Request(command, args), fds=True)


def backup(live: Live) -> dict[str, Any]:
    reply = ask(live, "backup", dir="/backups/x")
    try:
        result: dict[str, Any] = reply.unwrap()
        assert len(reply.fds) == len(result["files"])
    finally:
        for fd in reply.fds:
            os.close(fd)
    return result


def leftovers(live: Live) -> list[str]:
    return sorted(p.name for p in live.estate.config.daemon.state_dir.glob(".backup-*"))


def test_the_snapshot_is_described_and_no_temporary_file_stays(live: Live) -> None:
    stale = live.estate.config.daemon.state_dir / ".backup-stale"
    stale.mkdir()
    (stale / "catalog.db").write_bytes(b"left by a recd killed mid-backup")
    reply = ask(live, "backup", dir="/backups/x")
    result = reply.unwrap()
    try:
        assert [f["name"] for f in result["files"]] == ["catalog.db", "audit.log"]
        sizes = [os.fstat(fd).st_size for fd in reply.fds]
        assert sizes == [f["size"] for f in result["files"]]
        assert all(os.fstat(fd).st_nlink == 0 for fd in reply.fds), "a name was left behind"
        with pytest.raises(OSError):
            os.write(reply.fds[1], b"x")  # read-only
    finally:
        for fd in reply.fds:
            os.close(fd)
    assert leftovers(live) == []
    assert result["audit"]["entries"] == result["audit"]["seq"] >= 1


def test_one_backup_at_a_time(live: Live) -> None:
    gate, held = threading.Event(), threading.Event()

    def block_the_loop() -> None:
        held.set()
        gate.wait(30)

    blocker = threading.Thread(target=lambda: live.daemon.call_soon(block_the_loop))
    blocker.start()
    held.wait(10)
    first: list[dict[str, Any]] = []
    taking = threading.Thread(target=lambda: first.append(backup(live)))
    taking.start()
    try:
        deadline = 100
        while not leftovers(live) and deadline:  # the first one copied the catalogue
            threading.Event().wait(0.05)
            deadline -= 1
        second = ask(live, "backup", dir="/backups/y")
        assert (second.error, second.message) == (
            ErrorKind.NOT_ALLOWED,
            "another backup is being taken; try again once it is done",
        )
        assert second.fds == ()
    finally:
        gate.set()
        blocker.join()
        taking.join()
    assert first and first[0]["files"]


def test_a_token_records_one_backup_of_its_own(live: Live) -> None:
    taken = backup(live)
    args = {"dir": "/backups/x", "manifest_sha256": "0" * 64, "bytes": 10}
    wrong = ask(live, "backup written", token="f" * 32, **args)
    assert (wrong.error, wrong.message) == (
        ErrorKind.NOT_FOUND,
        "no backup was handed to you with this token (or recd restarted)",
    )
    bad = ask(live, "backup written", token=taken["token"], **(args | {"bytes": -1}))
    assert (bad.error, bad.message) == (ErrorKind.USAGE, "bytes: a whole number expected, not -1")
    done = ask(live, "backup written", token=taken["token"], **args).unwrap()
    again = ask(live, "backup written", token=taken["token"], **args)
    assert again.error is ErrorKind.NOT_FOUND
    log = (live.estate.config.daemon.state_dir / "audit.log").read_text().splitlines()
    entry = json.loads(log[-1])
    assert (entry["seq"], entry["action"], entry["subject"]) == (
        done["seq"], "backup.written", "/backups/x",
    )  # fmt: skip
    assert entry["details"] == {
        "files": 2,
        "bytes": 10,
        "entries": taken["audit"]["entries"],
        "head": f"{taken['audit']['seq']}:{taken['audit']['hash']}",
        "catalogue_mark": taken["catalogue_mark"],
        "manifest_sha256": "0" * 64,
    }


def test_a_catalogue_ahead_of_its_log_is_not_backed_up(live: Live) -> None:
    path: Path = live.estate.config.daemon.state_dir / "catalog.db"
    db = sqlite3.connect(path)
    try:
        with db:
            db.execute("UPDATE meta SET value = ? WHERE key = 'audit_mark'",
                       (json.dumps({"seq": 999, "hash": "a" * 64}),))  # fmt: skip
    finally:
        db.close()
    entries = len((path.parent / "audit.log").read_text().splitlines())
    reply = ask(live, "backup", dir="/backups/x")
    assert reply.error is ErrorKind.NOT_ALLOWED and reply.fds == ()
    assert reply.message == (
        f"{path.parent}: the catalogue reflects audit entry 999, after the log's last "
        f"({entries}): the log was cut or replaced; see `recctl audit verify`"
    )
    assert leftovers(live) == []


def test_only_the_last_few_tokens_are_remembered(live: Live) -> None:
    tokens = [backup(live)["token"] for _ in range(REMEMBERED + 1)]
    args = {"dir": "/backups/x", "manifest_sha256": "0" * 64, "bytes": 10}
    oldest = ask(live, "backup written", token=tokens[0], **args)
    assert (oldest.error, oldest.message) == (
        ErrorKind.NOT_FOUND,
        "no backup was handed to you with this token (or recd restarted)",
    )
    assert ask(live, "backup written", token=tokens[1], **args).ok


def test_a_manifest_digest_that_is_not_one_is_refused(live: Live) -> None:
    token = backup(live)["token"]
    bad = ask(live, "backup written", token=token, dir="/b", manifest_sha256="abc", bytes=1)
    assert (bad.error, bad.message) == (
        ErrorKind.USAGE,
        "manifest_sha256: a SHA-256 in hex expected, not 'abc'",
    )
    assert ask(live, "backup written", token=token, dir="/b", manifest_sha256="a" * 64,
               bytes=1).ok  # fmt: skip


def refused(live: Live) -> str:
    """The message of a backup recd refuses; it handed nothing over and left nothing behind."""
    reply = ask(live, "backup", dir="/backups/x")
    assert (reply.error, reply.fds) == (ErrorKind.FAILED, ())
    assert leftovers(live) == []
    assert reply.message is not None
    return reply.message


def test_a_damaged_last_entry_refuses_the_backup_and_says_where_to_look(live: Live) -> None:
    log = live.estate.audit_path
    whole = log.stat().st_size
    with log.open("ab") as f:
        f.write(b'{"seq": "not an entry"}\n')
    message = refused(live)
    assert message.startswith(f"{log}: cannot take a backup: its last entry is damaged (")
    assert message.endswith("); see `recctl audit verify`")
    os.truncate(log, whole)
    assert backup(live)["files"]  # the daemon is unharmed


def test_something_under_a_segments_name_that_is_no_file_refuses_the_backup(live: Live) -> None:
    state = live.estate.config.daemon.state_dir
    (state / "audit.log.1-3").mkdir()
    assert refused(live) == f"{state}: cannot take a backup: audit.log.1-3 is not a regular file"
    (state / "audit.log.1-3").rmdir()
    assert backup(live)["files"]


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    with Mounts(tmp_path / "mounts") as m:
        yield m


@pytest.mark.root
def test_a_state_directory_out_of_inodes_refuses_the_backup(
    estate: Estate,
    mounts: Mounts,
) -> None:
    state = estate.config.daemon.state_dir
    mounts.tmpfs(state, size="4m,nr_inodes=64")
    running = Live(estate)
    try:
        spare = state / "spare"
        spare.mkdir()
        made = 0
        with pytest.raises(OSError) as full:
            while True:
                (spare / str(made)).touch()
                made += 1
        assert full.value.errno == errno.ENOSPC
        assert refused(running) == (f"{state}: cannot take a backup: No space left on device")
        shutil.rmtree(spare)
        assert backup(running)["files"]
    finally:
        running.close()


@pytest.mark.root
def test_the_audit_entry_not_written_is_said_and_the_backup_stays_whole(
    tmp_path: Path,
    estate: Estate,
    mounts: Mounts,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The audit disk fills up between the snapshot and its ``backup.written`` entry: recctl
    says the backup is complete and not recorded (exit 1); it verifies; nothing half-written
    is left in the log."""
    disk = mounts.tmpfs(tmp_path / "auditfs", size="64k").mountpoint
    audit_on(mounts, estate, disk)
    running = Live(estate)
    filler: list[Path] = []
    try:
        pad_to_page_end(running.daemon)
        real_call = client.call

        def call_then_fill(*args: Any, **kwargs: Any) -> Any:
            reply = real_call(*args, **kwargs)
            if kwargs.get("fds"):
                filler.append(fill(disk))
            return reply

        monkeypatch.setattr(client, "call", call_then_fill)
        target = tmp_path / "b"
        code = recctl.main(["--socket", str(estate.config.daemon.socket), "backup", str(target)])
        assert (code, capsys.readouterr().err) == (
            1,
            f"recctl: {target}: the backup is complete, but recd did not record it in the audit "
            f"log: {estate.audit_path}: cannot write the audit log: No space left on device\n",
        )
        monkeypatch.undo()
        assert recctl.main(["backup", "verify", str(target)]) == 0
        log = estate.audit_path.read_bytes()
        assert log.endswith(b"\n") and b"backup.written" not in log
    finally:
        for path in filler:
            path.unlink()
        running.close()
