"""FileAuditLog rotation (recd.adapters.auditlog.log) on real files: one chain across
segments, the rotation logged, reopened and retried when it fails, what ``open`` refuses
beside segments, a torn line right after a rotation, and an interrupt once the rotation
took effect (SPEC section 8). Reading across segments is in test_chain.py; compression
and a SIGKILL at every step of a rotation are in test_files.py.
"""

from __future__ import annotations

import errno
import logging
import os
from datetime import timedelta
from pathlib import Path

import pytest

from recd.adapters.auditlog import files
from recd.adapters.auditlog.log import FileAuditLog
from recd.config.types import AuditCompression
from recd.core.audit import from_line, to_line, verify
from recd.errors import StateError
from recd.ports.audit import AuditExtent
from tests.adapters.auditlog.helpers import (
    NOW,
    SIZE,
    chain_bytes,
    chain_entries,
    drafts,
    names,
    segment_bytes,
    settings,
    write,
)

# rotating ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", ["none", "gzip"])
def test_the_log_rotates_into_segments_that_continue_one_chain(
    path: Path, compress: AuditCompression
):
    written = write(path, 200, compress)
    suffix = ".gz" if compress == "gzip" else ""
    rotated = [e for e in chain_entries(path) if e.action == "audit.rotated"]
    assert len(rotated) == 3
    segs = [str(e.details["segment"]) + suffix for e in rotated]
    assert names(path) == sorted(["audit.log", *segs])
    first = 1
    for entry in rotated:  # each segment ends where the next live log's first entry follows it
        name = f"audit.log.{first}-{entry.seq - 1}"
        lines = segment_bytes(path, name + suffix).splitlines(keepends=True)
        last = from_line(lines[-1])
        assert (entry.subject, entry.prev, last.seq) == (name, last.hash, entry.seq - 1)
        assert entry.details["first"] == first
        assert len(b"".join(lines)) >= SIZE
        first = entry.seq
    live = path.read_bytes().splitlines(keepends=True)
    assert from_line(live[0]) == rotated[-1]
    data = chain_bytes(path)
    assert verify(data.splitlines(keepends=True)).ok
    for entry in rotated:
        assert data.index(to_line(entry)) == entry.details["offset"]
    assert [e for e in chain_entries(path) if e.action != "audit.rotated"] == written
    for name in segs:
        assert oct(path.with_name(name).stat().st_mode & 0o777) == "0o640"


def test_the_rotation_is_logged(path: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="recd.adapters.auditlog.log")
    write(path, 70)
    assert caplog.messages == [f"audit log rotated: entries 1-56 closed into {path}.1-56"]


def test_reopening_continues_the_chain_after_a_rotation(path: Path):
    written = write(path, 100)
    with FileAuditLog.open(path, NOW, settings()) as log:
        assert log.last() == chain_entries(path)[-1]
        assert log.end_offset() == len(chain_bytes(path))
        assert log.extent() == AuditExtent(path.stat().st_size, 1)
        more = log.append(drafts(1, start=100), NOW)
        assert [e.seq for e in log.read_all()] == list(range(1, more[0].seq + 1))
    assert [e for e in chain_entries(path) if e.action != "audit.rotated"] == [*written, *more]


def test_a_rotation_that_fails_is_logged_once_and_tried_again(
    path: Path, caplog: pytest.LogCaptureFixture
):
    with FileAuditLog.open(path, NOW, settings()) as log:
        log.append(drafts(50), NOW)
        blocker = path.with_name("audit.log.new")
        blocker.mkdir()  # the new log's temporary name is taken
        for i in range(50, 60):
            assert log.append(drafts(1, start=i), NOW)[0].seq == i + 1  # appends go on
        assert caplog.messages == [
            f"cannot rotate the audit log {path} into audit.log.1-56: File exists; trying "
            "again after the next append"
        ]
        assert names(path) == ["audit.log", "audit.log.new"]
        blocker.rmdir()
        log.append(drafts(1, start=60), NOW)
        assert names(path) == ["audit.log", "audit.log.1-61"]
    assert verify(chain_bytes(path).splitlines(keepends=True)).ok


def test_a_rotation_whose_segment_name_is_taken_leaves_that_file_and_goes_on(
    path: Path, caplog: pytest.LogCaptureFixture
):
    """Something not recd's already has the segment's name: it is never overwritten; the
    rotation is tried again after the next append, under the next name."""
    squat = path.with_name("audit.log.1-56")
    with FileAuditLog.open(path, NOW, settings()) as log:
        log.append(drafts(55), NOW)
        squat.write_bytes(b"an operator's notes\n")
        log.append(drafts(1, start=55), NOW)
        assert caplog.messages == [
            f"cannot rotate the audit log {path} into audit.log.1-56: File exists; trying "
            "again after the next append"
        ]
        assert names(path) == ["audit.log", "audit.log.1-56"], "a leftover of the rotation"
        log.append(drafts(1, start=56), NOW)
        last = log.last()
    assert names(path) == ["audit.log", "audit.log.1-56", "audit.log.1-57"]
    assert squat.read_bytes() == b"an operator's notes\n"
    data = path.with_name("audit.log.1-57").read_bytes() + path.read_bytes()
    assert verify(data.splitlines(keepends=True)).ok
    assert last is not None and from_line(path.read_bytes()).seq == last.seq == 58


def test_a_rotation_whose_directory_sync_fails_stands_and_says_so(
    path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    """The last fsync of the directory (after the new log took the name) fails: the rotation
    is done, the warning names the directory, appends go on. (Only a mock makes a directory's
    fsync fail on demand.)"""
    with FileAuditLog.open(path, NOW, settings()) as log:
        log.append(drafts(55), NOW)
        syncs: list[Path] = []

        def fsync_dir(where: Path) -> None:
            syncs.append(where)
            if len(syncs) == 2:
                raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(files, "fsync_dir", fsync_dir)
        log.append(drafts(1, start=55), NOW)
        assert syncs == [path.parent, path.parent]
        assert caplog.messages == [f"audit log rotated, but {path.parent}: Input/output error"]
        assert log.append(drafts(1, start=56), NOW)[0].seq == 58
    assert names(path) == ["audit.log", "audit.log.1-56"]
    assert verify(chain_bytes(path).splitlines(keepends=True)).ok


# what open finds --------------------------------------------------------------------------------


def test_a_live_log_removed_beside_its_segments_is_refused(path: Path):
    write(path, 70)
    path.unlink()
    with pytest.raises(StateError) as exc:
        FileAuditLog.open(path, NOW, settings())
    assert str(exc.value) == (
        f"{path}: holds no entry without the audit.rotated entry that follows a segment, yet "
        "segment audit.log.1-56 holds entries up to seq 56: the live log was removed or "
        "replaced; restore it from a backup, or move the segments away to start a new chain"
    )


def test_a_live_log_whose_first_entry_is_damaged_beside_segments_is_refused(path: Path):
    write(path, 60)
    data = path.read_bytes()
    path.write_bytes(b"x" + data[1:])
    with pytest.raises(StateError) as exc:
        FileAuditLog.open(path, NOW, settings())
    assert str(exc.value) == (
        f"{path}: the first entry is damaged, so where the log continues its segments is "
        f"unknown; run `recctl audit verify --file {path.parent}` to find the first bad entry"
    )


def test_a_torn_line_right_after_a_rotation_is_repaired_and_recorded(path: Path):
    write(path, 56)  # the 56th entry takes the log past the size
    rotated = from_line(path.read_bytes())
    assert rotated.action == "audit.rotated"
    with path.open("ab") as file:
        file.write(b'{"action":"hold.pla')
    later = NOW + timedelta(minutes=1)
    with FileAuditLog.open(path, later, settings()) as log:
        recovered = log.last()
        assert recovered is not None
        assert (recovered.action, recovered.prev) == ("audit.recovered", rotated.hash)
        assert recovered.details["offset"] == len(to_line(rotated))
        assert [e.seq for e in log.read_all()] == list(range(1, recovered.seq + 1))
    assert verify(chain_bytes(path).splitlines(keepends=True)).ok


def test_an_interrupt_just_after_the_rotation_took_effect_keeps_the_segment(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KeyboardInterrupt (or any exception that is not an OSError) delivered after the new
    log took the name: the segment's name is by then the only name of the closed entries, so
    it stays, and the next open finds one chain. (Only a wrapped ``os.rename`` can place an
    interrupt there.)"""
    real_rename = os.rename

    def rename_then_interrupt(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        real_rename(src, dst)
        raise KeyboardInterrupt

    log = FileAuditLog.open(path, NOW, settings())
    log.append(drafts(55), NOW)
    monkeypatch.setattr(os, "rename", rename_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        log.append(drafts(1, start=55), NOW)
    monkeypatch.undo()
    log.close()
    assert names(path) == ["audit.log", "audit.log.1-56"]
    with FileAuditLog.open(path, NOW, settings()) as again:
        assert [e.seq for e in again.read_all()][-2:] == [56, 57]
    assert verify(chain_bytes(path).splitlines(keepends=True)).ok
