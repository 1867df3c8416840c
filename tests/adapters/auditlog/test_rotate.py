"""FileAuditLog rotation on real files: one chain across segments, offsets that survive it,
compression, and a SIGKILL at every step of a rotation (SPEC section 8)."""

from __future__ import annotations

import contextlib
import errno
import gzip
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recd.adapters.auditlog import files
from recd.adapters.auditlog.log import FileAuditLog
from recd.config.types import AuditCompression, AuditSettings
from recd.core.audit import AuditDraft, AuditEntry, from_line, to_line, verify
from recd.errors import AuditCorrupt, StateError
from recd.ports.audit import AuditExtent
from tests.adapters.loopfs import Mounts

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SIZE = 64 * 1024  # the smallest audit.rotate_size
PAD = "p" * 900  # about 1 KiB an entry: a segment every ~64 entries


def drafts(n: int, start: int = 0) -> list[AuditDraft]:
    return [
        AuditDraft("hold.placed", f"H{i}", {"n": i, "pad": PAD}) for i in range(start, start + n)
    ]


def settings(compress: AuditCompression = "none") -> AuditSettings:
    return AuditSettings(rotate_size=SIZE, compress=compress)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit.log"


def names(path: Path) -> list[str]:
    return sorted(os.listdir(path.parent))


def segment_bytes(path: Path, name: str) -> bytes:
    where = path.with_name(name)
    return gzip.decompress(where.read_bytes()) if name.endswith(".gz") else where.read_bytes()


def chain_offsets(path: Path) -> list[tuple[AuditEntry, int]]:
    """Each entry of the chain with its offset in it."""
    found, offset = [], 0
    for line in chain_bytes(path).splitlines(keepends=True):
        found.append((from_line(line), offset))
        offset += len(line)
    return found


def chain_bytes(path: Path) -> bytes:
    """Every segment (in chain order, uncompressed), then the live log."""
    segs = [n for n in names(path) if n.startswith("audit.log.")]
    segs.sort(key=lambda n: int(n.split(".")[2].split("-")[0]))
    return b"".join(segment_bytes(path, n) for n in segs) + path.read_bytes()


def write(path: Path, n: int, compress: AuditCompression = "none") -> list[AuditEntry]:
    written: list[AuditEntry] = []
    with FileAuditLog.open(path, NOW, settings(compress)) as log:
        for i in range(n):
            written += log.append(drafts(1, start=i), NOW)
    return written


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


def chain_entries(path: Path) -> list[AuditEntry]:
    return [from_line(line) for line in chain_bytes(path).splitlines(keepends=True)]


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


@pytest.mark.root
def test_a_compression_that_runs_out_of_space_leaves_the_segment_plain(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """A full disk mid-compression: no partial .gz is left, the plain segment stays whole and
    is compressed at a later start; nothing is lost."""
    incompressible = [
        AuditDraft("hold.placed", f"H{i}", {"n": i, "pad": os.urandom(450).hex()})
        for i in range(70)
    ]
    with Mounts(tmp_path / "mounts") as mounts:
        mounts.tmpfs(tmp_path / "state", size="1m")
        path = tmp_path / "state" / "audit.log"
        filler = tmp_path / "state" / "filler"
        with FileAuditLog.open(path, NOW, settings("gzip")) as log:
            log.append(incompressible[:55], NOW)
            with filler.open("wb", buffering=0) as fill, contextlib.suppress(OSError):
                while True:  # the disk full, then 8 pages given back
                    fill.write(b"\0" * 4096)
            os.truncate(filler, filler.stat().st_size - 8 * 4096)
            log.append(incompressible[55:56], NOW)
            assert len(caplog.messages) == 1
            assert caplog.messages[0] == (
                f"cannot compress audit log segment {path}.1-56: No space left on device; it "
                "stays uncompressed until recd starts again"
            )
            assert sorted(os.listdir(path.parent)) == ["audit.log", "audit.log.1-56", "filler"]
            log.append(incompressible[56:], NOW)
        filler.unlink()
        plain = path.with_name("audit.log.1-56").read_bytes()
        assert verify((plain + path.read_bytes()).splitlines(keepends=True)).ok
        with FileAuditLog.open(path, NOW, settings("gzip")):
            pass
        assert gzip.decompress(path.with_name("audit.log.1-56.gz").read_bytes()) == plain


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


def _damage(path: Path, name: str, change: Callable[[bytes], bytes]) -> None:
    where = path.with_name(name)
    where.write_bytes(change(where.read_bytes()))


MIDDLE = "audit.log.57-113"
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


def test_a_segment_without_its_last_newline_is_named_when_read_alone(path: Path):
    write(path, 200)
    _damage(path, MIDDLE, lambda b: b[:-1])
    with FileAuditLog.open(path, NOW, settings()) as log:
        with pytest.raises(AuditCorrupt) as exc:
            list(log.read_segment(MIDDLE))
    assert str(exc.value) == (
        f"{path.with_name(MIDDLE)}: entry at byte 65162: no newline at the end of the file"
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


def test_gzip_compresses_segments_left_plain(path: Path):
    write(path, 140)
    plain = {n: path.with_name(n).read_bytes() for n in names(path) if n != "audit.log"}
    with FileAuditLog.open(path, NOW, settings("gzip")):
        pass
    assert names(path) == sorted(["audit.log", *(n + ".gz" for n in plain)])
    for name, data in plain.items():
        assert gzip.decompress(path.with_name(name + ".gz").read_bytes()) == data


# a crash at each step ---------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import UTC, datetime
    from pathlib import Path
    from recd.adapters.auditlog.log import FileAuditLog
    from recd.config.types import AuditSettings
    from recd.core.audit import AuditDraft

    path, kill_at, compress = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    log = FileAuditLog.open(path, now, AuditSettings(64 * 1024, compress))
    calls = 0

    def crashing(call):
        def step(*args, **kwargs):
            global calls
            calls += 1
            if calls == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return call(*args, **kwargs)
        return step

    for name in ("open", "write", "fsync", "fchmod", "link", "rename", "unlink", "ftruncate"):
        setattr(os, name, crashing(getattr(os, name)))
    log.append([AuditDraft("hold.placed", "last", {"pad": "p" * 900})], now)
    print(calls)
    """
)


def crash_at(path: Path, step: int, compress: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(step), compress],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def check_settled(path: Path, acknowledged: list[AuditEntry], compress: AuditCompression) -> None:
    """Open completes or undoes the rotation: one chain holding every acknowledged entry, no
    file left half made, and the next rotation works."""
    with FileAuditLog.open(path, NOW, settings(compress)) as log:
        entries = list(log.read_all())
        assert entries[: len(acknowledged)] == acknowledged
        assert not {n for n in names(path) if n.endswith((".new", ".tmp"))}
        live = path.stat()
        assert live.st_nlink == 1
        segs = [n for n in names(path) if n != "audit.log"]
        assert all(n.endswith(".gz") for n in segs) == (compress == "gzip" or not segs)
        assert len({n.removesuffix(".gz") for n in segs}) == len(segs)  # not both forms
        for i in range(70):
            log.append(drafts(1, start=1000 + i), NOW)
        assert log.extent().segments > len(segs)
        assert [e.seq for e in log.read_all()] == list(range(1, log.last().seq + 1))  # type: ignore[union-attr]


@pytest.mark.parametrize("compress", ["none", "gzip"])
def test_a_sigkill_at_any_step_of_a_rotation_is_settled_by_the_next_open(
    tmp_path: Path, compress: AuditCompression
):
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    acknowledged = write(prepared / "audit.log", 55)  # the next entry takes it past 64 KiB
    step = 0
    while True:
        step += 1
        state = tmp_path / f"step{step}"
        shutil.copytree(prepared, state)
        done = crash_at(state / "audit.log", step, compress)
        if done.returncode == 0:
            break
        assert done.returncode == -signal.SIGKILL, done.stderr
        check_settled(state / "audit.log", acknowledged, compress)
        shutil.rmtree(state)
    steps = int(done.stdout)
    assert step == steps + 1
    assert steps >= (12 if compress == "none" else 20)  # every step of the rotation was tried
    check_settled(state / "audit.log", acknowledged, compress)


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
