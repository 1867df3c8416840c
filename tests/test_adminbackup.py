"""The daemon's `backup` and `backup written` commands in-process (a started daemon, its loop on a
thread, a real socket): one backup at a time, tokens, a catalogue ahead of its log, no temporary
file left in the state directory."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recd.client import call
from recd.protocol import ErrorKind, Reply, Request
from tests.estate import Estate
from tests.test_admin import Live, estate  # noqa: F401 (fixture)


@pytest.fixture
def live(estate: Estate) -> Iterator[Live]:  # noqa: F811
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
