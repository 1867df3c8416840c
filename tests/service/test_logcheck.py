"""The catalogue checked against the audit log at start (issue 14 point 2): the chain from the
catalogue's checkpoint, the catalogue's mark looked up in the log, a catalogue behind the log
given the entries after its mark. Real SQLite, the real audit log file, a fake clock."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from recd.adapters.auditlog.log import FileAuditLog
from recd.config.types import AuditSettings
from recd.core.audit import GENESIS, AuditDraft, seal_line
from recd.core.times import parse_time
from recd.ports.records import AuditMark
from recd.service.logcheck import after_mark, check_chain, find_mark
from tests.estate import Estate
from tests.fakes import FakeClock
from tests.service.helpers import check, started


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    return Estate(tmp_path, fake_clock)


def lines(estate: Estate) -> list[bytes]:
    return estate.audit_path.read_bytes().splitlines(keepends=True)


def reseal(entries: list[dict[str, Any]]) -> bytes:
    """The entries sealed again into a chain that verifies (a rewrite that covers itself)."""
    out, prev = [], GENESIS
    for e in entries:
        draft = AuditDraft(e["action"], e["subject"], e["details"], e["actor"])
        entry, line = seal_line(draft, seq=e["seq"], prev=prev, time=parse_time(e["time"]))
        out.append(line)
        prev = entry.hash
    return b"".join(out)


def test_the_chain_is_parsed_from_the_checkpoint_and_the_rest_only_hashed(estate: Estate) -> None:
    started(estate)
    total = len(lines(estate))
    db = sqlite3.connect(estate.config.daemon.state_dir / "catalog.db")
    (kept,) = db.execute("SELECT value FROM meta WHERE key = 'audit_checkpoint'").fetchone()
    assert json.loads(kept)["seq"] < total, "checked at the last start, before its entries"
    db.execute("DELETE FROM meta WHERE key = 'audit_checkpoint'")  # an older catalogue's
    db.commit()
    db.close()
    rt, first = check(estate)
    rt.close()
    assert (first.problem, first.checked) == (None, total)
    rt, again = check(estate)
    rt.close()
    assert (again.problem, again.checked) == (None, 0), "checked again from seq 1"


def test_an_entry_changed_before_the_checkpoint_is_found(estate: Estate) -> None:
    started(estate)
    data = lines(estate)
    data[1] = data[1].replace(b'"version"', b'"versioN"', 1)
    estate.audit_path.write_bytes(b"".join(data))
    rt, rebuilding = check(estate)
    rt.close()
    problem = rebuilding.problem
    assert problem is not None
    assert (problem.kind, problem.details["bad_seq"]) == ("chain", 2)
    assert problem.text == (
        f"{estate.audit_path}: entry 2 does not verify (entry at byte {len(data[0])}: hash "
        "does not match the entry's content): an entry was changed, removed or reordered; "
        f"`recctl audit verify --file {estate.audit_path}` shows it"
    )


def test_a_log_rewritten_and_sealed_again_before_the_checkpoint_is_found(estate: Estate) -> None:
    started(estate)
    entries = [json.loads(line) for line in lines(estate)]
    entries[0]["details"]["config"] = "/elsewhere/recd.toml"
    estate.audit_path.write_bytes(reseal(entries))
    rt, rebuilding = check(estate)
    rt.close()
    problem = rebuilding.problem
    assert problem is not None and problem.kind == "chain"
    assert "changed since recd checked them, and were sealed again" in problem.text


def test_a_cut_tail_and_a_deleted_log_are_found(estate: Estate) -> None:
    started(estate)
    data = lines(estate)
    estate.audit_path.write_bytes(b"".join(data[:1]))
    rt, rebuilding = check(estate)
    rt.close()
    problem = rebuilding.problem
    assert problem is not None and problem.kind == "cut"
    assert problem.text.startswith(f"{estate.audit_path} ends at byte {len(data[0])}, before")
    estate.audit_path.unlink()
    rt, rebuilding = check(estate)
    rt.close()
    assert rebuilding.problem is not None
    assert rebuilding.problem.text.startswith(f"{estate.audit_path} is empty, but recd")


@pytest.mark.parametrize("offset", [None, 1, 10**9], ids=["none", "mid-entry", "past-the-end"])
def test_a_mark_without_a_usable_offset_is_found_by_reading_the_log(
    estate: Estate, offset: int | None
) -> None:
    started(estate)
    entries = [json.loads(line) for line in lines(estate)]
    rt = estate.runtime()
    try:
        second = AuditMark(2, entries[1]["hash"], offset)
        assert find_mark(str(estate.audit_path), rt.audit, second) is None
        assert [(e.seq, linked) for e, linked in after_mark(rt.audit, second)] == [(3, True)]
        other = AuditMark(2, entries[0]["hash"], offset)
        problem = find_mark(str(estate.audit_path), rt.audit, other)
        assert problem is not None and problem.kind == "other-log"
        assert problem.details["found_hash"] == entries[1]["hash"]
        assert find_mark(str(estate.audit_path), rt.audit, AuditMark(None, None)) is None
    finally:
        rt.close()


def test_a_checkpoint_another_recd_wrote_is_ignored(estate: Estate) -> None:
    started(estate)
    db = sqlite3.connect(estate.config.daemon.state_dir / "catalog.db")
    db.execute("UPDATE meta SET value = '{\"seq\": 3}' WHERE key = 'audit_checkpoint'")
    db.commit()
    db.close()
    rt = estate.runtime()
    try:
        assert rt.catalogue.audit_checkpoint() is None
    finally:
        rt.close()


# --- the checkpoint and rotation ------------------------------------------------------------------


def rotating_log(tmp_path: Path) -> FileAuditLog:
    settings = AuditSettings(rotate_size=64 << 10)
    return FileAuditLog.open(tmp_path / "audit.log", parse_time(T0), settings)


def fill(log: FileAuditLog, n: int) -> None:
    pad = "x" * 400
    for i in range(n):
        log.append([AuditDraft("hold.placed", f"H{i}", {"pad": pad})], parse_time(T0))


T0 = "2026-12-01T10:00:00.000000Z"


def test_a_checkpoint_taken_before_a_rotation_is_followed_into_the_segment(
    tmp_path: Path,
) -> None:
    """The checkpoint lies in what is now a closed segment: the check parses from it through
    the rest of the segment and the live log (no false alarm), and the next checkpoint covers
    the live log from where it starts in the chain."""
    log = rotating_log(tmp_path)
    fill(log, 20)
    first = check_chain("audit.log", log, None)
    assert first.problem is None and first.checkpoint is not None
    assert first.checkpoint.start == 0
    fill(log, 200)  # past 64 KiB: rotated at least once
    assert log.live_start() > 0 and list(tmp_path.glob("audit.log.*-*"))
    again = check_chain("audit.log", log, first.checkpoint)
    assert again.problem is None, again.problem
    assert again.checked == log.last().seq - first.checkpoint.seq  # type: ignore[union-attr]
    assert again.checkpoint is not None and again.checkpoint.start == log.live_start()
    third = check_chain("audit.log", log, again.checkpoint)
    assert (third.problem, third.checked) == (None, 0), "only hashed from the new checkpoint"
    log.close()


def test_after_a_rotation_a_change_in_the_live_log_before_the_checkpoint_is_found(
    tmp_path: Path,
) -> None:
    log = rotating_log(tmp_path)
    fill(log, 200)
    fill(log, 5)
    base = log.live_start()
    assert base > 0
    state = check_chain("audit.log", log, None)
    assert state.problem is None and state.checkpoint is not None
    log.close()
    live = tmp_path / "audit.log"
    data = live.read_bytes()
    at = data.index(b'"H', len(data) // 3)
    line = data[data.rfind(b"\n", 0, at) + 1 : data.index(b"\n", at)]
    changed = json.loads(line)["seq"]
    live.write_bytes(data[:at] + b'"h' + data[at + 2 :])  # one entry's subject changed
    log = FileAuditLog.open(live, parse_time(T0), AuditSettings(rotate_size=64 << 10))
    found = check_chain("audit.log", log, state.checkpoint)
    assert found.problem is not None, "the change before the checkpoint went unseen"
    assert (found.problem.kind, found.problem.details["bad_seq"]) == ("chain", changed)
    assert found.problem.text.startswith(f"audit.log: entry {changed} does not verify")
    log.close()
