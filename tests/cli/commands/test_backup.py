"""`recctl backup verify DIR` offline, on backups built here file by file (a real catalogue, a real
chain over segments and the live log, a manifest), each changed in one way; and what `recctl
backup DIR` does when something fails while it writes (an in-process daemon, a real socket)."""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from recd.adapters.sqlite.catalogue import SqliteCatalogue
from recd.cli import client
from recd.cli import main as recctl
from recd.core.audit import GENESIS, AuditDraft, seal_line
from recd.core.backup import BackupFile, Manifest, manifest_json
from recd.errors import ExitCode
from recd.ports.records import AuditMark
from recd.protocol import Reply
from tests.adapters.loopfs import Mounts
from tests.daemon.admin.helpers import Live, three_recordings
from tests.estate import Estate
from tests.fakes import FakeClock
from tests.fulldisk import fill

WHEN = datetime(2026, 12, 1, tzinfo=UTC)


def chain(count: int) -> list[tuple[int, str, bytes]]:
    prev, out = GENESIS, []
    for seq in range(1, count + 1):
        entry, line = seal_line(AuditDraft("test.entry", f"e{seq}"), seq=seq, prev=prev, time=WHEN)
        prev = entry.hash
        out.append((seq, entry.hash, line))
    return out


def build(base: Path, *, mark: tuple[int, str] | None = (4, ""), live_from: int = 4) -> Path:
    """A backup of a 6-entry chain: ``audit.log.1-3``, then ``audit.log``; the catalogue marked
    at ``mark`` (its real hash when given as ``""``)."""
    entries = chain(6)
    target = base / "b"
    target.mkdir()
    (target / "audit.log.1-3").write_bytes(b"".join(e[2] for e in entries[: live_from - 1]))
    (target / "audit.log").write_bytes(b"".join(e[2] for e in entries[live_from - 1 :]))
    catalogue = SqliteCatalogue(target / "catalog.db")
    if mark is not None:
        seq, digest = mark
        catalogue.set_audit_mark(AuditMark(seq, digest or entries[seq - 1][1]))
    catalogue.close()
    db = sqlite3.connect(target / "catalog.db")
    db.execute("PRAGMA journal_mode=DELETE")  # fold the WAL in, as the online backup does
    db.close()
    write_manifest(target, entries[-1][1], mark and (mark[0], mark[1] or entries[mark[0] - 1][1]))
    return target


def write_manifest(target: Path, head: str, mark: tuple[int, str] | None) -> None:
    files = tuple(
        BackupFile(name, (target / name).stat().st_size,
                   hashlib.sha256((target / name).read_bytes()).hexdigest())
        for name in ("catalog.db", "audit.log.1-3", "audit.log")
    )  # fmt: skip
    manifest = Manifest(
        "1.0", "2026-12-01T00:00:00.000000Z", "/var/lib/recd", files, 6, 6, head,
        None if mark is None else mark[0], None if mark is None else mark[1],
    )  # fmt: skip
    (target / "MANIFEST.json").write_bytes(manifest_json(manifest))


def verified(target: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = recctl.main(["backup", "verify", str(target)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_whole_backup_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = build(tmp_path)
    head = chain(6)[-1][1]
    assert verified(target, capsys) == (
        0,
        f"backup {target} verified: 3 files as the manifest says, catalogue ok, audit chain "
        f"intact: 6 entries, head 6:{head}\n",
        "",
    )


def other_mark(target: Path) -> None:
    """The catalogue and the manifest agree on a mark the chain does not hold."""
    db = sqlite3.connect(target / "catalog.db")
    with db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'audit_mark'",
                   (json.dumps({"seq": 4, "hash": "e" * 64}),))  # fmt: skip
    db.close()
    write_manifest(target, chain(6)[-1][1], (4, "e" * 64))


def catalogue_disagrees(target: Path) -> None:
    write_manifest(target, chain(6)[-1][1], (5, chain(6)[4][1]))


def no_manifest(target: Path) -> None:
    (target / "MANIFEST.json").unlink()


def unreadable_mark(value: str) -> Callable[[Path], None]:
    def damage(target: Path) -> None:
        db = sqlite3.connect(target / "catalog.db")
        with db:
            db.execute("UPDATE meta SET value = ? WHERE key = 'audit_mark'", (value,))
        db.close()
        write_manifest(target, chain(6)[-1][1], (4, chain(6)[3][1]))

    return damage


def garbage_catalogue(target: Path) -> None:
    (target / "catalog.db").write_bytes(b"not a database" * 100)
    write_manifest(target, chain(6)[-1][1], (4, chain(6)[3][1]))


def wrong_head(target: Path) -> None:
    write_manifest(target, "d" * 64, (4, chain(6)[3][1]))


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (other_mark, f"the catalogue's mark 4:{'e' * 64} is not in the chain"),
        (catalogue_disagrees, "catalog.db: audit mark"),
        (no_manifest, "MANIFEST.json: No such file or directory (an interrupted backup has none)"),
        (garbage_catalogue, "catalog.db: not a readable catalogue: file is not a database"),
        (unreadable_mark("{4:"), "catalog.db: its audit mark is not readable: {4:"),
        (unreadable_mark("[4]"), "catalog.db: its audit mark is not readable: [4]"),
        (wrong_head,
         f"the audit chain ends at 6:{chain(6)[-1][1]}, the manifest says 6:{'d' * 64}"),
    ],
)  # fmt: skip
def test_a_damaged_backup_says_what_is_wrong(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: Callable[[Path], None],
    problem: str,
) -> None:
    target = build(tmp_path)
    damage(target)
    code, out, err = verified(target, capsys)
    assert (code, out) == (1, "")
    assert err.startswith(f"recctl: {target}: {problem}"), err


def test_verify_refuses_a_symlink_and_prints_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = build(tmp_path)
    link = tmp_path / "link"
    link.symlink_to(target)
    assert verified(link, capsys) == (
        1, "", f"recctl: {link}: is a symbolic link; give the directory itself (not followed)\n",
    )  # fmt: skip
    assert recctl.main(["backup", "verify", str(target), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == {"dir": str(target), "ok": True, "problems": [], "entries": 6,
                     "head": f"6:{chain(6)[-1][1]}"}  # fmt: skip


def test_verify_of_a_directory_that_is_not_there_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verified(tmp_path / "nowhere", capsys) == (
        1, "", f"recctl: {tmp_path / 'nowhere'}: cannot open it: No such file or directory\n",
    )  # fmt: skip


def fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def planted(kind: str) -> Callable[[Path], None]:
    """``audit.log`` replaced by a FIFO, a symbolic link, a directory, or removed."""

    def plant(target: Path) -> None:
        log = target / "audit.log"
        if kind == "fifo":
            fifo(log)
        elif kind == "symlink":
            (target / "elsewhere").write_bytes(log.read_bytes())
            log.unlink()
            log.symlink_to(target / "elsewhere")
            (target / "elsewhere").rename(target.parent / "elsewhere")
        elif kind == "directory":
            log.unlink()
            log.mkdir()
        else:
            log.unlink()

    return plant


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("fifo", "audit.log: cannot read it: not a regular file"),
        ("symlink", "audit.log: cannot read it: Too many levels of symbolic links"),
        ("directory", "audit.log: cannot read it: not a regular file"),
        ("missing", "audit.log: missing"),
    ],
)
def test_a_listed_file_that_is_not_a_plain_file_is_a_problem_not_a_hang(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, problem: str
) -> None:
    """A FIFO under a listed name used to block verify for ever (opened without O_NONBLOCK)."""
    target = build(tmp_path)
    planted(kind)(target)
    code, out, err = verified(target, capsys)
    assert (code, out, err) == (1, "", f"recctl: {target}: {problem}\n")


def test_a_manifest_that_is_a_fifo_is_refused_not_waited_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = build(tmp_path)
    fifo(target / "MANIFEST.json")
    assert verified(target, capsys) == (
        1, "", f"recctl: {target}: MANIFEST.json: not a regular file (an interrupted backup "
        "has none)\n",
    )  # fmt: skip


def test_a_read_error_is_a_problem_of_that_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk error while reading (EIO cannot be had from a real disk here: os.read fails)."""
    target = build(tmp_path)
    real_read = os.read

    def failing(fd: int, size: int) -> bytes:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("/audit.log.1-3"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_read(fd, size)

    monkeypatch.setattr(os, "read", failing)
    assert verified(target, capsys) == (
        1, "", f"recctl: {target}: audit.log.1-3: cannot read it: Input/output error\n",
    )  # fmt: skip


def segment_gzipped(target: Path, damage: str) -> None:
    """``audit.log.1-3`` compressed as rotation leaves it, then damaged (``flipped``: a byte
    inside, ``cut``: its second half gone, ``plain``: not compressed), the manifest rewritten
    to match: only reading the chain can tell."""
    plain = target / "audit.log.1-3"
    packed = bytearray(gzip.compress(plain.read_bytes()))
    if damage == "flipped":
        packed[len(packed) // 2] ^= 0xFF
    elif damage == "cut":
        del packed[len(packed) // 2 :]
    else:
        packed = bytearray(plain.read_bytes())  # named .gz, never compressed
    (target / "audit.log.1-3.gz").write_bytes(packed)
    plain.unlink()
    manifest = json.loads((target / "MANIFEST.json").read_bytes())
    for f in manifest["files"]:
        if f["name"] == "audit.log.1-3":
            f.update(name="audit.log.1-3.gz", size=len(packed),
                     sha256=hashlib.sha256(packed).hexdigest())  # fmt: skip
    (target / "MANIFEST.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        ("flipped", "not a whole gzip file (Error -3 while decompressing data: "),
        ("cut", "not a whole gzip file (Compressed file ended before the end-of-stream marker"),
        ("plain", "Not a gzipped file (b'{\"')"),
    ],
)
def test_a_damaged_compressed_segment_is_named_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str, why: str
) -> None:
    """zlib's own error used to escape as a traceback; the file is named."""
    target = build(tmp_path)
    segment_gzipped(target, damage)
    code, out, err = verified(target, capsys)
    assert (code, out) == (1, "")
    assert err.startswith(f"recctl: {target}: audit.log.1-3.gz: {why}"), err
    assert err.endswith(": the audit chain cannot be read\n") and err.count("\n") == 1, err


def test_a_damaged_catalogue_says_so_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A page of the catalogue damaged (its hash in the manifest to match): quick_check's
    report, on one line."""
    target = build(tmp_path)
    db = target / "catalog.db"
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    last = len(data) - page
    data[last + 1 : last + 3] = b"\xff\xff"  # the last page's first free block: out of the page
    db.write_bytes(data)
    write_manifest(target, chain(6)[-1][1], (4, chain(6)[3][1]))
    code, out, err = verified(target, capsys)
    assert (code, out) == (1, "")
    assert err == (
        f"recctl: {target}: catalog.db: damaged (PRAGMA quick_check: Page {len(data) // page}: "
        "free space corruption)\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backup", "verify"], "backup verify: DIR is required (to back up into a directory "
         "named verify, give ./verify)"),
        (["backup", "a", "b"], "unrecognized arguments: b (see `recctl backup --help`)"),
    ],
)  # fmt: skip
def test_backup_arguments_that_make_no_sense_are_a_usage_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    code = recctl.main(["--socket", str(tmp_path / "none.sock"), *argv])
    assert (code, capsys.readouterr().err) == (ExitCode.USAGE, f"recctl: {message}\n")
    assert os.listdir(tmp_path) == [], "something was created"


# --- recctl backup DIR: what fails while it writes -----------------------------------------------
# Against a daemon started in-process (tests/daemon/admin/helpers.py's Live: its loop on
# a thread, a real socket), recctl run in-process so that a failure can be made to happen at
# its moment.


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    return three_recordings(tmp_path, fake_clock)


@pytest.fixture
def live(estate: Estate) -> Iterator[Live]:
    running = Live(estate)
    yield running
    running.close()


def backup_in(live: Live, target: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = recctl.main(["--socket", str(live.estate.config.daemon.socket), "backup", str(target)])
    return code, capsys.readouterr().err


def written_entries(live: Live) -> list[dict[str, Any]]:
    log = live.estate.config.daemon.state_dir / "audit.log"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    return [e for e in entries if e["action"] == "backup.written"]


#: (descriptor, device, inode) of each snapshot file recd handed over in the test.
Handed = list[tuple[int, int, int]]


def still_open(handed: Handed) -> list[int]:
    """The handed descriptors still open on the file they were handed with."""
    out = []
    for fd, dev, ino in handed:
        with contextlib.suppress(OSError):
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) == (dev, ino):
                out.append(fd)
    return out


def unharmed(live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The daemon takes the next backup, which verifies; it is the only one audited."""
    again = tmp_path / "again"
    assert backup_in(live, again, capsys) == (0, "")
    assert recctl.main(["backup", "verify", str(again)]) == 0
    assert [e["subject"] for e in written_entries(live)] == [str(again)]
    assert list(live.estate.config.daemon.state_dir.glob(".backup-*")) == []


def after_the_handover(
    monkeypatch: pytest.MonkeyPatch, then: Callable[[Reply], Reply] = lambda reply: reply
) -> Handed:
    """recctl's call for the snapshot returns, then ``then`` happens (and shapes its reply);
    the descriptors handed over."""
    real_call = client.call
    handed: Handed = []

    def call_then(*args: Any, **kwargs: Any) -> Any:
        reply = real_call(*args, **kwargs)
        if not kwargs.get("fds"):
            return reply
        handed.extend((fd, os.fstat(fd).st_dev, os.fstat(fd).st_ino) for fd in reply.fds)
        return then(reply)

    monkeypatch.setattr(client, "call", call_then)
    return handed


def test_a_parent_that_is_a_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plain").write_text("keep me")
    target = tmp_path / "plain" / "b"
    code = recctl.main(["--socket", str(tmp_path / "none.sock"), "backup", str(target)])
    assert (code, capsys.readouterr().err) == (
        1, f"recctl: {target}: cannot create it: Not a directory\n",
    )  # fmt: skip
    assert (tmp_path / "plain").read_text() == "keep me"


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    with Mounts(tmp_path / "mounts") as m:
        yield m


@pytest.mark.root
def test_a_full_disk_takes_back_what_was_written_and_keeps_the_empty_dir_it_was_given(
    tmp_path: Path,
    live: Live,
    mounts: Mounts,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    disk = tmp_path / "usb"
    mounts.tmpfs(disk, size="256k")
    target = disk / "b"
    target.mkdir(mode=0o700)  # the operator's own, empty: kept, emptied again
    fill(disk)
    handed = after_the_handover(monkeypatch)
    code, err = backup_in(live, target, capsys)
    assert (code, err) == (
        1, f"recctl: {target / 'catalog.db'}: cannot write it: No space left on device\n",
    )  # fmt: skip
    assert os.listdir(target) == []
    assert handed and still_open(handed) == [], "a descriptor of the snapshot was left open"
    assert written_entries(live) == []
    monkeypatch.undo()
    unharmed(live, tmp_path, capsys)


def test_dir_removed_while_recctl_writes_is_named(
    tmp_path: Path,
    live: Live,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "b"

    def remove_dir(reply: Reply) -> Reply:
        target.rmdir()  # a clean-up job, say: DIR is still empty
        return reply

    after_the_handover(monkeypatch, remove_dir)
    code, err = backup_in(live, target, capsys)
    assert (code, err) == (
        1, f"recctl: {target / 'catalog.db'}: cannot create it: No such file or directory\n",
    )  # fmt: skip
    assert not target.exists()
    monkeypatch.undo()
    assert written_entries(live) == []
    unharmed(live, tmp_path, capsys)


def test_a_segment_that_shrinks_while_it_is_copied_fails_the_backup(
    tmp_path: Path,
    live: Live,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """recd hands closed segments over where they are; one cut short in the state directory
    (it must never be) after recd said its size is not copied short."""
    segment = live.estate.config.daemon.state_dir / "audit.log.1-3"
    segment.write_bytes(b"".join(e[2] for e in chain(3)))
    size = segment.stat().st_size
    target = tmp_path / "b"

    def cut_short(reply: Reply) -> Reply:
        os.truncate(segment, 100)
        return reply

    handed = after_the_handover(monkeypatch, cut_short)
    code, err = backup_in(live, target, capsys)
    assert (code, err) == (
        1,
        f"recctl: {target / 'audit.log.1-3'}: recd's copy ends at byte 100, not at {size} as "
        "recd said: the file shrank in recd's state directory while it was copied (nothing "
        "was kept)\n",
    )
    assert not target.exists()
    assert handed and still_open(handed) == []
    assert written_entries(live) == []
    segment.unlink()
    monkeypatch.undo()
    unharmed(live, tmp_path, capsys)


def first_file(change: dict[str, Any]) -> Callable[[Reply], Reply]:
    def alter(reply: Reply) -> Reply:
        result = dict(reply.result)
        result["files"] = [result["files"][0] | change, *result["files"][1:]]
        return replace(reply, result=result)

    return alter


def one_descriptor_short(reply: Reply) -> Reply:
    os.close(reply.fds[-1])
    return replace(reply, fds=reply.fds[:-1])


@pytest.mark.parametrize(
    ("alter", "detail"),
    [
        (first_file({"name": "../../etc/cron.d/x"}), "a file named '../../etc/cron.d/x'"),
        (first_file({"size": -1}), "a size of -1"),
        (first_file({"size": "12"}), "a size of '12'"),
        (one_descriptor_short, "1 descriptors for 2 files"),
    ],
)
def test_a_reply_recctl_cannot_trust_writes_nothing(
    tmp_path: Path,
    live: Live,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    alter: Callable[[Reply], Reply],
    detail: str,
) -> None:
    """A reply from another recd version (or not from recd): nothing written, none of its
    descriptors kept open, nothing audited."""
    target = tmp_path / "b"
    handed = after_the_handover(monkeypatch, alter)
    code, err = backup_in(live, target, capsys)
    assert (code, err) == (
        1,
        f"recctl: recd's reply to `backup` is not what this recctl expects ({detail}); use the "
        "recctl that came with this recd\n",
    )
    assert not target.exists()
    assert handed and still_open(handed) == []
    assert written_entries(live) == []
