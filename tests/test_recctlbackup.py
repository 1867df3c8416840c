"""`recctl backup verify DIR` offline, on backups built here file by file (a real catalogue, a real
chain over segments and the live log, a manifest), each changed in one way."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recd import recctl
from recd.adapters.sqlite import SqliteCatalogue
from recd.core.audit import GENESIS, AuditDraft, seal_line
from recd.core.backup import BackupFile, Manifest, manifest_json
from recd.ports import AuditMark

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
