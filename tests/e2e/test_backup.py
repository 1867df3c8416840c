"""`recctl backup DIR` against a real daemon, `recctl backup verify`, and the restore it is for
(issue 14, point 4): restoring yesterday's catalogue over a state where holds were placed since,
the live audit log kept, loses none.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from recd.cli import client
from recd.cli.main import main as recctl_main
from recd.core.audit import verify
from tests.auditchains import write_chain
from tests.e2e.helpers import (
    audit_entries,
    backdate,
    kill_daemon,
    recctl,
    rid,
    running,
    start_daemon,
    stop_daemon,
    write_estate_with_grace,
    write_recording,
)
from tests.fakes import NotifyListener

Completed = subprocess.CompletedProcess[str]


def ctl(sock: Path, *args: str) -> Completed:
    return recctl("--socket", str(sock), *args)


def ok(done: Completed) -> Completed:
    assert done.returncode == 0, done.stderr
    return done


def place(sock: Path, relpath: str) -> str:
    placed = ok(ctl(sock, "hold", "place", "--licence", "L1", "--case", "CASE-1",
                    "--reason", "court order", "--recording", rid(relpath)))  # fmt: skip
    return placed.stdout.strip()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def backed_up(sock: Path, target: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(ok(ctl(sock, "backup", str(target), "--json")).stdout)
    return result


def test_a_backup_holds_the_catalogue_the_log_and_a_manifest_that_verifies(
    tmp_path: Path, listener: NotifyListener
) -> None:
    config = write_estate_with_grace(tmp_path)
    write_recording(tmp_path, "L1/a.wav", age_days=5)
    target = tmp_path / "backups" / "monday"
    target.parent.mkdir()
    with running(config, tmp_path, listener) as sock:
        hold = place(sock, "L1/a.wav")
        done = ok(ctl(sock, "backup", str(target)))

    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == ["catalog.db", "audit.log", "MANIFEST.json"]
    assert sorted(os.listdir(target)) == ["MANIFEST.json", "audit.log", "catalog.db"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in target.iterdir()}
    assert modes == {"catalog.db": 0o600, "audit.log": 0o640, "MANIFEST.json": 0o640}
    manifest = json.loads((target / "MANIFEST.json").read_text())
    files = {f["name"]: f for f in manifest["files"]}
    for name in ("catalog.db", "audit.log"):
        assert files[name]["size"] == (target / name).stat().st_size
        assert files[name]["sha256"] == sha256(target / name)
    copied = (target / "audit.log").read_bytes()
    chain = verify(copied.splitlines(keepends=True))
    assert chain.ok and manifest["audit"] == {
        "entries": chain.entries, "seq": chain.entries, "hash": chain.last_hash,
    }  # fmt: skip
    head = f"{chain.entries}:{chain.last_hash}"
    assert lines[-1].startswith(f"backup written to {target}: 3 files, ")
    assert f"head {head}; recorded as audit entry {chain.entries + 1} (backup.written)" in lines[-1]
    live = (tmp_path / "state" / "audit.log").read_bytes()
    assert live.startswith(copied), "the copy is the live log's prefix"
    written = audit_entries(tmp_path)[chain.entries]  # the entry after the copied head
    assert (written["action"], written["subject"]) == ("backup.written", str(target))
    assert written["details"]["head"] == head
    assert written["details"]["manifest_sha256"] == sha256(target / "MANIFEST.json")
    db = sqlite3.connect(target / "catalog.db")
    try:
        assert db.execute("SELECT id FROM holds").fetchall() == [(hold,)]
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        db.close()

    checked = recctl("backup", "verify", str(target))
    assert (checked.returncode, checked.stderr) == (0, ""), checked.stdout
    assert checked.stdout == (
        f"backup {target} verified: 2 files as the manifest says, catalogue ok, audit chain "
        f"intact: {chain.entries} entries, head {head}\n"
    )


def test_verify_finds_a_changed_file_an_extra_one_and_a_cut_log(
    tmp_path: Path, listener: NotifyListener
) -> None:
    config = write_estate_with_grace(tmp_path)
    target = tmp_path / "b"
    with running(config, tmp_path, listener) as sock:
        backed_up(sock, target)
    spare = tmp_path / "spare"
    shutil.copytree(target, spare)

    with (target / "catalog.db").open("r+b") as f:
        f.seek(200)
        f.write(b"\xff")
    (target / "notes.txt").write_text("x")
    done = recctl("backup", "verify", str(target))
    assert done.returncode == 1 and done.stdout == ""
    assert f"recctl: {target}: catalog.db: SHA-256 " in done.stderr
    assert f"recctl: {target}: notes.txt: not in the manifest\n" in done.stderr

    log = spare / "audit.log"
    log.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:-1]))
    done = recctl("backup", "verify", str(spare), "--json")
    assert done.returncode == 1
    problems = json.loads(done.stdout)["problems"]
    assert problems[0].startswith("audit.log: "), problems
    assert "bytes, the manifest says" in problems[0]


@pytest.mark.parametrize("kind", ["not empty", "symlink", "file", "no parent"])
def test_a_target_that_is_not_a_new_or_empty_directory_is_refused(
    tmp_path: Path, listener: NotifyListener, kind: str
) -> None:
    config = write_estate_with_grace(tmp_path)
    target = tmp_path / "target"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if kind == "not empty":
        target.mkdir()
        (target / "old.txt").write_text("keep me")
    elif kind == "symlink":
        target.symlink_to(elsewhere)
    elif kind == "file":
        target.write_text("keep me")
    else:
        target = tmp_path / "missing" / "target"
    expected = {
        "not empty": f"recctl: {target}: is not empty (old.txt); give a new or empty directory "
        "(nothing was written)\n",
        "symlink": f"recctl: {target}: is a symbolic link; give the directory itself (not "
        "followed)\n",
        "file": f"recctl: {target}: exists and is not a directory\n",
        "no parent": f"recctl: {target}: cannot create it: {target.parent} does not exist\n",
    }[kind]
    with running(config, tmp_path, listener) as sock:
        before = len(audit_entries(tmp_path))
        done = ctl(sock, "backup", str(target))
        assert (done.returncode, done.stderr, done.stdout) == (1, expected, "")
        assert len(audit_entries(tmp_path)) == before, "a refused backup was audited"
    assert os.listdir(elsewhere) == []
    if kind == "not empty":
        assert os.listdir(target) == ["old.txt"]
    if kind == "file":
        assert target.read_text() == "keep me"


def test_no_daemon_exits_69_and_leaves_no_directory(tmp_path: Path) -> None:
    target = tmp_path / "b"
    done = recctl("--socket", str(tmp_path / "recd.sock"), "backup", str(target))
    assert done.returncode == 69, done.stderr
    assert done.stderr.startswith("recctl: recd is not running: cannot connect to ")
    assert not target.exists()


def test_a_backup_taken_while_the_daemon_appends_is_a_whole_chain(
    tmp_path: Path, listener: NotifyListener
) -> None:
    """Holds placed and released in a loop while backups are taken: each copied log ends at a
    whole entry, verifies, and holds at least what the copied catalogue reflects."""
    config = write_estate_with_grace(tmp_path)
    write_recording(tmp_path, "L1/a.wav", age_days=5)
    stop = threading.Event()
    with running(config, tmp_path, listener) as sock:

        def churn() -> None:
            while not stop.is_set():
                hold = place(sock, "L1/a.wav")
                ok(ctl(sock, "hold", "release", hold, "--reason", "churn"))

        worker = threading.Thread(target=churn)
        worker.start()
        try:
            results = [backed_up(sock, tmp_path / f"b{i}") for i in range(4)]
        finally:
            stop.set()
            worker.join()
    for i, result in enumerate(results):
        checked = recctl("backup", "verify", str(tmp_path / f"b{i}"))
        assert checked.returncode == 0, checked.stderr
        db = sqlite3.connect(tmp_path / f"b{i}" / "catalog.db")
        try:
            holds = {row[0] for row in db.execute("SELECT id FROM holds")}
        finally:
            db.close()
        copied = (tmp_path / f"b{i}" / "audit.log").read_text().splitlines()
        placed = {e["subject"] for e in map(json.loads, copied) if e["action"] == "hold.placed"}
        assert holds <= placed, "the copied catalogue holds a hold the copied log never placed"
        assert result["entries"] >= 1


# --- the restore ---------------------------------------------------------------------------------


def age(base: Path, relpath: str, days: float) -> None:
    """Set a recording's start (its mtime) ``days`` back: 30 days make it due."""
    backdate(base / "recordings" / relpath, days)


def restore(backup: Path, state: Path, *, audit_log: bool) -> None:
    """The operator's restore, recd stopped: the catalogue from the backup (its write-ahead
    log and index beside it removed: they belong to the catalogue replaced); with
    ``audit_log``, the audit files too (the live ones were lost)."""
    for name in ("catalog.db-wal", "catalog.db-shm"):
        (state / name).unlink(missing_ok=True)
    shutil.copy2(backup / "catalog.db", state / "catalog.db")
    if audit_log:
        for old in state.glob("audit.log*"):
            old.unlink()
        for name in os.listdir(backup):
            if name.startswith("audit.log"):
                shutil.copy2(backup / name, state / name)


def holds(sock: Path) -> dict[str, str]:
    listed = json.loads(ok(ctl(sock, "hold", "ls", "--all", "--json")).stdout)
    return {h["id"]: h["state"] for h in listed}


def test_yesterdays_catalogue_restored_beside_todays_log_loses_no_hold(
    tmp_path: Path, listener: NotifyListener
) -> None:
    config = write_estate_with_grace(tmp_path)
    write_recording(tmp_path, "L1/a.wav", age_days=5)
    write_recording(tmp_path, "L1/b.wav", age_days=5)
    write_recording(tmp_path, "L1/free.wav", age_days=5)
    with running(config, tmp_path, listener) as sock:
        hold_a = place(sock, "L1/a.wav")
        backed_up(sock, tmp_path / "yesterday")
        hold_b = place(sock, "L1/b.wav")
        ok(ctl(sock, "hold", "release", hold_a, "--reason", "case closed"))
    for relpath in ("L1/a.wav", "L1/b.wav", "L1/free.wav"):
        age(tmp_path, relpath, 40)
    restore(tmp_path / "yesterday", tmp_path / "state", audit_log=False)

    with running(config, tmp_path, listener) as sock:
        assert not (tmp_path / "recordings/L1/free.wav").exists(), "the sweep did not run"
        assert (tmp_path / "recordings/L1/b.wav").exists(), "a hold placed since was lost"
        assert (tmp_path / "recordings/L1/a.wav").exists(), "erased within its release grace"
        assert holds(sock) == {hold_a: "released", hold_b: "active"}


def test_a_restore_of_catalogue_and_log_brings_back_the_backups_holds(
    tmp_path: Path, listener: NotifyListener
) -> None:
    config = write_estate_with_grace(tmp_path)
    write_recording(tmp_path, "L1/a.wav", age_days=5)
    write_recording(tmp_path, "L1/free.wav", age_days=5)
    with running(config, tmp_path, listener) as sock:
        hold_a = place(sock, "L1/a.wav")
        result = backed_up(sock, tmp_path / "yesterday")
    for relpath in ("L1/a.wav", "L1/free.wav"):
        age(tmp_path, relpath, 40)
    (tmp_path / "state" / "catalog.db").unlink()  # the disk is lost: catalogue and log
    (tmp_path / "state" / "audit.log").unlink()
    restore(tmp_path / "yesterday", tmp_path / "state", audit_log=True)

    with running(config, tmp_path, listener) as sock:
        assert not (tmp_path / "recordings/L1/free.wav").exists(), "the sweep did not run"
        assert (tmp_path / "recordings/L1/a.wav").exists(), "the backup's hold was lost"
        assert holds(sock) == {hold_a: "active"}
    log = (tmp_path / "state" / "audit.log").read_bytes()
    chain = verify(log.splitlines(keepends=True), watch={result["entries"]})
    assert chain.ok and chain.watched[result["entries"]] == result["head"].partition(":")[2]


def test_closed_segments_are_backed_up_as_they_are_and_verify_as_one_chain(
    tmp_path: Path, listener: NotifyListener
) -> None:
    config = write_estate_with_grace(tmp_path)
    state = tmp_path / "state"
    write_chain(state, [("audit.log.1-3.gz", 1, 3), ("audit.log.4-6", 4, 6), ("audit.log", 7, 8)])
    target = tmp_path / "b"
    proc = start_daemon(config, listener, tmp_path / "recd.log")
    try:
        listener.wait_for("READY=1", timeout=60)
        result = backed_up(tmp_path / "recd.sock", target)
        stop_daemon(proc, listener)
    finally:
        kill_daemon(proc)
    assert [f["name"] for f in result["files"]] == [
        "catalog.db", "audit.log.1-3.gz", "audit.log.4-6", "audit.log",
    ]  # fmt: skip
    for name in ("audit.log.1-3.gz", "audit.log.4-6"):
        assert (target / name).read_bytes() == (state / name).read_bytes()
    mark = result["catalogue_mark"]["seq"]
    assert mark is None or mark <= result["entries"]
    checked = recctl("backup", "verify", str(target))
    assert checked.returncode == 0, checked.stderr
    assert f"audit chain intact: {result['entries']} entries" in checked.stdout

    # A segment left out is a chain that no longer holds together.
    (target / "audit.log.4-6").unlink()
    manifest = json.loads((target / "MANIFEST.json").read_text())
    manifest["files"] = [f for f in manifest["files"] if f["name"] != "audit.log.4-6"]
    (target / "MANIFEST.json").write_text(json.dumps(manifest))
    broken = recctl("backup", "verify", str(target))
    assert broken.returncode == 1
    assert broken.stderr == (
        f"recctl: {target}: the audit chain breaks at seq 7: sequence jumps from 3 to 7 "
        "(entries removed or reordered?)\n"
    )


def test_recd_killed_before_it_records_the_backup_leaves_it_whole_and_says_so(
    tmp_path: Path,
    listener: NotifyListener,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_estate_with_grace(tmp_path)
    target = tmp_path / "b"
    proc = start_daemon(config, listener, tmp_path / "recd.log")
    real_call = client.call

    def call_then_kill(*args: Any, **kwargs: Any) -> Any:
        reply = real_call(*args, **kwargs)
        if kwargs.get("fds"):
            kill_daemon(proc)  # SIGKILL, with the snapshot handed over
        return reply

    try:
        listener.wait_for("READY=1", timeout=60)
        monkeypatch.setattr(client, "call", call_then_kill)
        code = recctl_main(["--socket", str(tmp_path / "recd.sock"), "backup", str(target)])
    finally:
        kill_daemon(proc)
    err = capsys.readouterr().err
    assert code == 69
    assert err.startswith(
        f"recctl: {target}: the backup is complete, but recd did not record it in the audit "
        "log: recd is not running: cannot connect to "
    )
    assert recctl_main(["backup", "verify", str(target)]) == 0
    assert not any(e["action"] == "backup.written" for e in audit_entries(tmp_path))
    assert list((tmp_path / "state").glob(".backup-*")) == []
