"""The audit log's files on disk (recd.adapters.auditlog.files): the first line of a live
log cut short, one segment read alone, segments compressed (and a full disk leaving no
partial .gz), and whatever a SIGKILL at any step of a rotation left settled by the next
open.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from recd.adapters.auditlog.log import FileAuditLog
from recd.config.types import AuditCompression
from recd.core.audit import AuditDraft, AuditEntry, verify
from recd.errors import AuditCorrupt
from tests.adapters.auditlog.helpers import MIDDLE, NOW, _damage, drafts, names, settings, write
from tests.adapters.loopfs import Mounts


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


def test_the_first_line_of_a_log_cut_short_since_its_size_was_read_is_what_is_left(
    path: Path,
):
    """Another program cuts the log between recd's fstat and its read: the read ends (it
    looped for ever, at 100 % CPU, before the start said anything); a child process, so
    a regression fails the test instead of hanging it."""
    path.write_bytes(b'{"seq":1')  # 8 bytes of what was a longer first line
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(f"""
            import os
            from recd.adapters.auditlog.files import first_line
            fd = os.open({str(path)!r}, os.O_RDONLY)
            print(first_line(fd, 70_000))
        """)],
        capture_output=True, text=True, timeout=20, check=True,
    )  # fmt: skip
    assert child.stdout == "b'{\"seq\":1'\n"


def test_a_segment_without_its_last_newline_is_named_when_read_alone(path: Path):
    write(path, 200)
    _damage(path, MIDDLE, lambda b: b[:-1])
    with FileAuditLog.open(path, NOW, settings()) as log:
        with pytest.raises(AuditCorrupt) as exc:
            list(log.read_segment(MIDDLE))
    assert str(exc.value) == (
        f"{path.with_name(MIDDLE)}: entry at byte 65162: no newline at the end of the file"
    )


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
