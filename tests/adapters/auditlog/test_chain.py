"""Reading the audit chain across its files (recd.adapters.auditlog.chain, through
FileAuditLog): every segment then the live log, offsets taken before rotations, a reader
following a rotation, and a missing, damaged or cut segment named where the chain breaks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from recd.adapters.auditlog.log import FileAuditLog
from recd.config.types import AuditCompression
from recd.errors import AuditCorrupt
from tests.adapters.auditlog.helpers import (
    MIDDLE,
    NOW,
    _damage,
    chain_entries,
    chain_offsets,
    drafts,
    names,
    settings,
    write,
)


def test_read_all_reads_every_segment_then_the_live_log(path: Path):
    write(path, 150, "gzip")
    with FileAuditLog.open(path, NOW, settings("gzip")) as log:
        assert list(log.read_all()) == chain_entries(path)
        assert [e.seq for e in log.read_since(100)] == list(range(101, log.last().seq + 1))  # type: ignore[union-attr]
        assert list(log.read_since(log.end_offset())) == []


@pytest.mark.parametrize("compress", ["none", "gzip"])
def test_an_offset_taken_before_rotations_reads_on_through_them(
    path: Path, compress: AuditCompression
):
    with FileAuditLog.open(path, NOW, settings(compress)) as log:
        log.append(drafts(10), NOW)
        offset = log.end_offset()  # an erase intent's, stored in the catalogue
        after = [e for i in range(10, 150) for e in log.append(drafts(1, start=i), NOW)]
        assert log.extent().segments == 2
        read = [e for e in log.read_from(offset) if e.action != "audit.rotated"]
        assert read == after
        with pytest.raises(ValueError) as exc:
            log.read_from(offset + 5)
        assert str(exc.value) == f"offset {offset + 5} is not the start of an audit entry"


def test_a_reader_follows_a_rotation_that_happens_while_it_reads(path: Path):
    with FileAuditLog.open(path, NOW, settings()) as log:
        log.append(drafts(60), NOW)
        entries = log.read_from(0)
        assert next(entries).seq == 1
        log.append(drafts(40, start=60), NOW)  # past the size: rotated
        assert log.extent().segments == 1
        assert [e.seq for e in entries] == list(range(2, 102))


def test_a_missing_segment_is_a_gap_for_the_rebuild(path: Path):
    write(path, 200)
    assert names(path) == [
        "audit.log", "audit.log.1-56", "audit.log.114-170",
        "audit.log.57-113",
    ]  # fmt: skip
    path.with_name("audit.log.57-113").unlink()
    with FileAuditLog.open(path, NOW, settings()) as log:
        with pytest.raises(AuditCorrupt) as exc:
            list(log.read_all())
        assert str(exc.value) == (
            f"{path}.114-170: entry at byte 0: entries 57-113 are missing: no segment holds "
            "them (a segment removed?)"
        )
        with pytest.raises(AuditCorrupt) as direct:
            log.read_since(70)
        assert str(direct.value) == (
            f"{path.parent}: entries 71-113 are missing: no segment holds them (a segment removed?)"
        )


NOT_ROTATED = (
    "does not begin with the audit.rotated entry recd writes when it starts a segment, so "
    "where it lies in the chain is unknown"
)


@pytest.mark.parametrize(
    ("compress", "name", "change", "problem"),
    [
        ("none", MIDDLE, lambda b: b"x" + b[1:], "the first entry is damaged (not valid JSON)"),
        ("none", MIDDLE, lambda b: b"", NOT_ROTATED),
        ("none", MIDDLE, lambda b: b[b.index(b"\n") + 1 :], NOT_ROTATED),
        ("none", MIDDLE, lambda b: b[:-100], "ends at byte 66243, before the 66343 bytes the "
                                             "next file says it holds (changed by another "
                                             "program?)"),
        ("none", MIDDLE, lambda b: b[:-1] + b" ", "entry at byte 65162: no newline at the end "
                                                  "of the file (changed by another program?)"),
        ("gzip", MIDDLE + ".gz", lambda b: b"not gzip\n", "not a complete gzip file (Not a "
                                                           "gzipped file (b'no'))"),
        ("gzip", MIDDLE + ".gz", lambda b: b[: len(b) // 2], "not a complete gzip file "
                                                            "(Compressed file ended before the "
                                                            "end-of-stream marker was reached)"),
    ],
    ids=["first-entry", "emptied", "first-entry-removed", "cut", "last-newline", "not-gzip",
         "gzip-cut"],
)  # fmt: skip
def test_a_damaged_segment_is_named_when_the_chain_is_read(
    path: Path,
    compress: AuditCompression,
    name: str,
    change: Callable[[bytes], bytes],
    problem: str,
):
    write(path, 200, compress)
    _damage(path, name, change)
    with FileAuditLog.open(path, NOW, settings(compress)) as log:
        with pytest.raises(AuditCorrupt) as exc:
            list(log.read_all())
        assert str(exc.value) == f"{path.with_name(name)}: {problem}"
        last = log.last()
        assert last is not None
        assert log.append(drafts(1, start=200), NOW)[0].seq == last.seq + 1, "the log stopped"


def test_a_segment_cut_before_an_offset_says_where_it_really_ends(path: Path):
    write(path, 200)
    [entry] = [e for e in chain_offsets(path) if e[0].seq == 100]
    _damage(path, MIDDLE, lambda b: b[:1000])
    with FileAuditLog.open(path, NOW, settings()) as log:
        with pytest.raises(AuditCorrupt) as exc:
            list(log.read_from(entry[1]))
    assert str(exc.value) == (
        f"{path.with_name(MIDDLE)}: ends at byte 1000, before the 66343 bytes the next file "
        "says it holds (changed by another program?)"
    )


def test_reading_from_a_removed_first_segment_names_the_directory(path: Path):
    write(path, 200)
    path.with_name("audit.log.1-56").unlink()
    with FileAuditLog.open(path, NOW, settings()) as log:
        with pytest.raises(AuditCorrupt) as exc:
            list(log.read_from(0))
    assert str(exc.value) == (
        f"{path.parent}: no segment holds byte 0 of the audit chain (a segment removed?)"
    )
