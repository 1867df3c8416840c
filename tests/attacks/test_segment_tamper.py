"""Attack: rewrite a closed segment of the audit log between two starts, and cover the traces.

Someone with write access to the state directory edits an entry of a closed segment (the start
does not read a segment it checked before), keeps its size and puts its modification time
back; or seals every entry after the change again, through every later segment and the live
log, so that each file verifies on its own. What must hold: the next start finds it (the
file's ctime cannot be set back; the live log's bytes are checked against the checkpoint) and
erases nothing until an administrator acknowledges it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from recd.adapters.auditlog.log import FileAuditLog
from recd.config.types import AuditSettings
from recd.core.audit import AuditDraft, seal_line
from recd.core.times import parse_time
from recd.daemon.runtime import rebuilder
from tests.estate import Estate
from tests.fakes import FakeClock

AUDIT = AuditSettings(rotate_size=64 << 10)


def history(estate: Estate) -> Path:
    """Three closed segments and a live log, checked (and their prints kept) by a start."""
    state = estate.audit_path.parent
    state.mkdir(parents=True)
    log = FileAuditLog.open(estate.audit_path, estate.clock.now(), AUDIT)
    while log.extent().segments < 3:
        log.append([AuditDraft("test.note", "x", {"pad": "p" * 900})], estate.clock.now())
    log.close()
    assert estate.once()[0] == 0
    return state


def files(state: Path) -> list[Path]:
    """The segments in chain order, then the live log."""
    found = sorted(
        state.glob("audit.log.*-*"), key=lambda p: int(p.name.split(".")[2].split("-")[0])
    )
    return [*found, state / "audit.log"]


def problem_at_start(estate: Estate) -> str | None:
    rt = estate.runtime()
    try:
        check = rebuilder(rt)
        check.restore()
    finally:
        rt.close()
    return None if check.problem is None else check.problem.kind


def test_a_same_size_edit_with_its_mtime_put_back_is_found(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    estate = Estate(tmp_path, fake_clock, audit=AUDIT)
    middle = files(history(estate))[1]
    before = middle.stat()
    data = middle.read_bytes()
    at = data.index(b'"pad":"p') + 7
    middle.write_bytes(data[:at] + b"q" + data[at + 1 :])  # one byte, same size
    os.utime(middle, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (middle.stat().st_size, middle.stat().st_mtime_ns) == (
        before.st_size,
        before.st_mtime_ns,
    )
    assert problem_at_start(estate) == "segment"


def test_a_chain_sealed_again_through_the_live_log_is_found(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    estate = Estate(tmp_path, fake_clock, audit=AUDIT)
    chain = files(history(estate))
    prev: str | None = None
    for path in chain[1:]:  # from the middle segment's 6th entry on, every file
        lines = path.read_bytes().splitlines(keepends=True)
        for i, line in enumerate(lines):
            e = json.loads(line)
            if prev is None and path == chain[1] and i == 5:
                e["details"]["pad"] = "q" * 900  # same size: every offset stays right
                prev = e["prev"]
            if prev is None:
                continue
            draft = AuditDraft(e["action"], e["subject"], e["details"], e["actor"])
            entry, lines[i] = seal_line(draft, seq=e["seq"], prev=prev, time=parse_time(e["time"]))
            prev = entry.hash
        path.write_bytes(b"".join(lines))
    assert problem_at_start(estate) == "chain", "the live log's bytes against the checkpoint"
