"""The closed segments of the audit log checked at start (issue 14 points 2-3): a segment
unchanged since the last check is trusted unread, one new or changed is read entry by entry,
one changed, gone or out of place stops erasing. The real FileAuditLog rotating every 64 KiB,
a real SQLite catalogue keeping the prints."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recd.adapters.auditlog.log import FileAuditLog
from recd.adapters.sqlite.catalogue import SqliteCatalogue
from recd.config.types import AuditCompression, AuditSettings
from recd.core.audit import AuditDraft, seal_line
from recd.core.logcheck import SEGMENT
from recd.core.times import parse_time
from recd.daemon.runtime import rebuilder
from recd.ports.catalogue import Catalogue
from recd.service.rebuild import acknowledge
from recd.service.segcheck import SegmentState, check_segments
from tests.estate import Estate
from tests.fakes import FakeClock

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PAD = "p" * 900  # about 1 KiB an entry: a segment every ~64 entries


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def catalogue(state: Path) -> Iterator[SqliteCatalogue]:
    cat = SqliteCatalogue(state / "catalog.db")
    yield cat
    cat.close()


def grow(state: Path, segments: int, compress: AuditCompression = "none") -> None:
    """A log rotated into at least ``segments`` closed segments."""
    log = FileAuditLog.open(state / "audit.log", NOW, AuditSettings(64 << 10, compress))
    try:
        i = 0
        while log.extent().segments < segments:
            log.append([AuditDraft("hold.placed", f"H{i}", {"n": i, "pad": PAD})], NOW)
            i += 1
    finally:
        log.close()


def start(state: Path, catalogue: Catalogue) -> SegmentState:
    """The check a start makes; the prints kept when it found nothing."""
    log = FileAuditLog.open(state / "audit.log", NOW, AuditSettings(64 << 10))
    try:
        found = check_segments(str(state / "audit.log"), log, catalogue.audit_segments())
    finally:
        log.close()
    if found.problem is None:
        catalogue.set_audit_segments(found.prints)
    return found


def segment_names(state: Path) -> list[str]:
    found = [n for n in os.listdir(state) if n.startswith("audit.log.")]
    return sorted(found, key=lambda n: int(n.split(".")[2].split("-")[0]))


def change_entry(where: Path, index: int, *, reseal: bool, rest: bool = False) -> None:
    """Change entry ``index`` of segment ``where`` (its details); ``reseal``: seal it again so
    its own hash verifies; ``rest``: and every entry after it in the segment too."""
    lines = where.read_bytes().splitlines(keepends=True)
    entries = [json.loads(line) for line in lines]
    entries[index]["details"]["n"] = -1
    prev = entries[index]["prev"]
    for i in range(index, len(entries) if rest else index + 1):
        e = entries[i]
        if reseal:
            draft = AuditDraft(e["action"], e["subject"], e["details"], e["actor"])
            entry, lines[i] = seal_line(draft, seq=e["seq"], prev=prev, time=parse_time(e["time"]))
            prev = entry.hash
        else:
            lines[i] = (json.dumps(e, separators=(",", ":")) + "\n").encode()
    where.write_bytes(b"".join(lines))


def test_a_second_start_reads_no_segment(state: Path, catalogue: SqliteCatalogue) -> None:
    grow(state, 4)
    first = start(state, catalogue)
    assert (first.problem, first.verified) == (None, 4), "no prints yet: every segment is read"
    again = start(state, catalogue)
    assert (again.problem, again.verified) == (None, 0)
    grow(state, 5)
    rotated = start(state, catalogue)
    assert (rotated.problem, rotated.verified) == (None, 1), "only the segment closed since"


@pytest.mark.parametrize(("reseal", "rest"), [(False, False), (True, False), (True, True)])
def test_an_entry_changed_in_a_closed_segment_is_a_problem(
    state: Path, catalogue: SqliteCatalogue, reseal: bool, rest: bool
) -> None:
    grow(state, 3)
    assert start(state, catalogue).problem is None
    middle = state / segment_names(state)[1]
    change_entry(middle, 10, reseal=reseal, rest=rest)
    found = start(state, catalogue)
    assert found.problem is not None and found.problem.kind == SEGMENT
    assert found.verified == 1, "only the segment whose file changed is read"
    assert str(middle) in found.problem.text
    assert "recctl audit verify --file" in found.problem.text
    assert start(state, catalogue).problem == found.problem, "not trusted until acknowledged"


def test_a_segment_changed_with_its_ctime_alone_is_read_again(
    state: Path, catalogue: SqliteCatalogue
) -> None:
    grow(state, 3)
    start(state, catalogue)
    os.chmod(state / segment_names(state)[0], 0o600)  # same bytes, a new ctime
    found = start(state, catalogue)
    assert (found.problem, found.verified) == (None, 1)


def test_a_deleted_segment_is_a_problem(state: Path, catalogue: SqliteCatalogue) -> None:
    grow(state, 3)
    start(state, catalogue)
    victim = segment_names(state)[1]
    os.unlink(state / victim)
    found = start(state, catalogue)
    assert found.problem is not None and found.problem.kind == SEGMENT
    assert found.problem.details["fault"] == "gone"
    assert f"{state / victim} (entries" in found.problem.text
    assert "is gone, but recd checked it before" in found.problem.text


def test_a_deleted_segment_is_found_without_prints(state: Path, catalogue: SqliteCatalogue) -> None:
    grow(state, 3)
    os.unlink(state / segment_names(state)[1])
    found = start(state, catalogue)
    assert found.problem is not None and found.problem.details["fault"] == "gap"
    assert "are missing: no file holds them" in found.problem.text


def test_the_first_segment_deleted_without_prints_is_a_problem(
    state: Path, catalogue: SqliteCatalogue
) -> None:
    grow(state, 2)
    os.unlink(state / segment_names(state)[0])
    found = start(state, catalogue)
    assert found.problem is not None and found.problem.details["fault"] == "gap"


def test_a_segment_compressed_since_is_read_once(state: Path, catalogue: SqliteCatalogue) -> None:
    grow(state, 3)
    start(state, catalogue)
    grow(state, 3, compress="gzip")  # the next open compresses every plain segment
    assert all(n.endswith(".gz") for n in segment_names(state))
    found = start(state, catalogue)
    assert (found.problem, found.verified) == (None, 3)
    again = start(state, catalogue)
    assert (again.problem, again.verified) == (None, 0)


def test_a_compressed_segment_replaced_is_a_problem(
    state: Path, catalogue: SqliteCatalogue
) -> None:
    grow(state, 3, compress="gzip")
    start(state, catalogue)
    middle = state / segment_names(state)[1]
    data = gzip.decompress(middle.read_bytes()).splitlines(keepends=True)
    middle.write_bytes(gzip.compress(b"".join(data[:-1])))  # its last entry removed
    found = start(state, catalogue)
    assert found.problem is not None and found.problem.kind == SEGMENT


def test_swapped_segments_are_a_problem(state: Path, catalogue: SqliteCatalogue) -> None:
    grow(state, 3)
    start(state, catalogue)
    first, second = (state / n for n in segment_names(state)[:2])
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)
    found = start(state, catalogue)
    assert found.problem is not None and found.problem.kind == SEGMENT


def test_prints_of_another_shape_are_ignored(state: Path, catalogue: SqliteCatalogue) -> None:
    grow(state, 2)
    start(state, catalogue)
    shape = json.dumps({"segments": {"x": {"file": [1]}}})  # as another recd might write it
    with sqlite3.connect(state / "catalog.db") as db:
        update = "UPDATE meta SET value = ? WHERE key = 'audit_segments'"
        assert db.execute(update, (shape,)).rowcount == 1  # the prints the start recorded
    db.close()
    assert catalogue.audit_segments() is None
    assert start(state, catalogue).verified == 2


def test_a_changed_segment_pauses_erasing_until_acknowledged(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    """Through the start's check (``Rebuild.restore``): the problem, kept until an
    administrator acknowledges it; then the segments as they are now are trusted."""
    estate = Estate(tmp_path, fake_clock, audit=AuditSettings(64 << 10))
    estate.audit_path.parent.mkdir(parents=True)
    log = FileAuditLog.open(estate.audit_path, NOW, AuditSettings(64 << 10))
    while log.extent().segments < 3:
        log.append([AuditDraft("test.note", "x", {"pad": PAD})], NOW)
    log.close()
    assert estate.once()[0] == 0
    state = estate.audit_path.parent
    change_entry(state / segment_names(state)[1], 5, reseal=True)
    for _ in range(2):
        rt = estate.runtime()
        try:
            rebuilding = rebuilder(rt)
            rebuilding.restore()
        finally:
            rt.close()
        assert rebuilding.problem is not None and rebuilding.problem.kind == SEGMENT
    rt = estate.runtime()
    try:
        acknowledge(rt.catalogue, rt.audit, rebuilding.path, rebuilding.problem, "alice",
                    "checked", fake_clock.now())  # fmt: skip
    finally:
        rt.close()
    rt = estate.runtime()
    try:
        again = rebuilder(rt)
        again.restore()
    finally:
        rt.close()
    assert (again.problem, again.segments_read) == (None, 0)


def test_an_acknowledged_break_is_not_found_again_when_its_neighbour_is_read(
    state: Path, catalogue: SqliteCatalogue
) -> None:
    """The last segment sealed again from one entry on: it no longer links into the live log.
    Acknowledged; then the live log is closed into a new segment, read at the next start:
    the break already taken is not a new problem."""
    grow(state, 3)
    start(state, catalogue)
    change_entry(state / segment_names(state)[-1], 10, reseal=True, rest=True)
    found = start(state, catalogue)
    assert found.problem is not None and found.problem.details["fault"] == "prev"
    log = FileAuditLog.open(state / "audit.log", NOW, AuditSettings(64 << 10))
    try:
        acknowledge(catalogue, log, str(state / "audit.log"), found.problem, "alice", "ok", NOW)
    finally:
        log.close()
    assert start(state, catalogue).problem is None
    grow(state, 4)
    after = start(state, catalogue)
    assert (after.problem, after.verified) == (None, 1)


def test_progress_is_told_before_segments_are_read(state: Path, catalogue: SqliteCatalogue) -> None:
    """So the daemon can say so (``STATUS=``) and give systemd's start timeout room."""
    grow(state, 3)
    told: list[str] = []
    log = FileAuditLog.open(state / "audit.log", NOW, AuditSettings(64 << 10))
    try:
        found = check_segments(str(state / "audit.log"), log, None, told.append)
        catalogue.set_audit_segments(found.prints)
        check_segments(str(state / "audit.log"), log, catalogue.audit_segments(), told.append)
    finally:
        log.close()
    assert told == [
        "checking the audit log: 0 of 3 closed segments read (new or changed since the last check)"
    ], "told once before reading, and not when every segment is trusted"


def test_a_segment_emptied_is_a_problem_naming_it(state: Path, catalogue: SqliteCatalogue) -> None:
    grow(state, 3)
    start(state, catalogue)
    middle = state / segment_names(state)[1]
    first_seq = int(middle.name.split(".")[2].split("-")[0])
    middle.write_bytes(b"")
    found = start(state, catalogue)
    assert found.problem is not None and found.problem.kind == SEGMENT
    assert found.problem.text.startswith(
        f"{middle}: entry {first_seq} does not verify (the segment holds no entry): "
    )
    assert found.problem.details == {"segment": str(middle), "bad_seq": first_seq,
                                     "fault": "chain"}  # fmt: skip
    assert start(state, catalogue).problem == found.problem, "trusted once emptied"


def test_a_live_log_cut_short_while_the_segments_are_checked_is_left_to_its_own_check(
    state: Path, catalogue: SqliteCatalogue
) -> None:
    """Another program truncates the live log after recd opened it: the segments are still
    checked (no traceback); the live log's own check at start reports the cut."""
    grow(state, 2)
    log = FileAuditLog.open(state / "audit.log", NOW, AuditSettings(64 << 10))
    try:
        os.truncate(state / "audit.log", 0)
        found = check_segments(str(state / "audit.log"), log, None)
    finally:
        log.close()
    assert (found.problem, found.verified) == (None, 2)
    assert found.prints.live is None, "a live log it could not read was printed"
