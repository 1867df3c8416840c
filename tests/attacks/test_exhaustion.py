"""Attack: the recordings' filesystem full when recd erases (ENOSPC).

A user who can write to the recording tree fills its filesystem, and plants a sparse file named
like a due recording: mostly holes, so an in-place overwrite needs blocks the filesystem no longer
has. On tmpfs, recd erases by unlink, which needs no space.

What must hold: ordinary due recordings are still erased (their overwrite reuses their own blocks;
unlink and rename need none); the sparse file's erase fails with its reason (``write failed: No
space left on device after N of M bytes``), is audited as ``erase.failed`` and never as
done, and leaves no erase temp file; ``--once`` exits 4; no traceback. Once space is freed the
next run must erase it, still at its old deadline (xfail: it does not yet, see below).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from recd.core.model import recording_id
from tests.adapters.loopfs import Mounts
from tests.e2e.helpers import (
    TEMP_PREFIX,
    audit_entries,
    check_consistent,
    recd,
    write_estate,
    write_recording,
)
from tests.intentshape import per_recording

pytestmark = pytest.mark.root

SPARSE = 16 * 1024 * 1024


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    with Mounts(tmp_path / "mounts") as m:
        yield m


def sparse_recording(path: Path) -> Path:
    """A due recording of 16 MiB that holds 6 kB of data and holes."""
    with path.open("wb") as f:
        f.write(b"secret" * 1000)
        f.truncate(SPARSE)
    os.utime(path, (0, 0))
    return path


def fill(root: Path) -> Path:
    """Write to ``root/filler`` until the filesystem is full."""
    filler = root / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\xff" * 65536)
                f.flush()
        except OSError:
            pass
    os.sync()
    return filler


def test_full_ext4_erases_every_due_file_even_a_sparse_one(tmp_path: Path, mounts: Mounts) -> None:
    """An overwrite writes only the blocks a file holds: the holes of a sparse 16 MiB file on a
    full 8 MB filesystem are not written (that would need blocks there are not), so it is
    erased like the others, and its data is gone from the device."""
    rec = tmp_path / "recordings"
    rec.mkdir()
    fs = mounts.loop("ext4", size_mb=8, mountpoint=rec)
    config = write_estate(tmp_path)
    due = [write_recording(tmp_path, f"L1/{n}.wav", age_days=31) for n in ("a", "z")]
    due.append(sparse_recording(rec / "L1" / "sparse.wav"))
    fill(rec)

    result = recd("--once", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "L1: 3 recordings, 3 due, 3 erased\n" in result.stdout
    assert not any(p.exists() for p in due)
    entries = per_recording(audit_entries(tmp_path))
    [done] = [e for e in entries if e["subject"] == _subject(due[-1])][1:]
    assert done["action"] == "erase.done"
    assert (done["details"]["method"], done["details"]["effective"]) == ("overwrite", True)
    assert not [p for p in (rec / "L1").iterdir() if p.name.startswith(TEMP_PREFIX)]
    check_consistent(tmp_path, ["L1/a.wav", "L1/z.wav", "L1/sparse.wav", "filler"])
    fs.unmount()
    assert not fs.image_contains(b"secret" * 100)


def test_full_tmpfs_still_erases_by_unlink(tmp_path: Path, mounts: Mounts) -> None:
    rec = tmp_path / "recordings"
    mounts.tmpfs(rec, size="2m")
    config = write_estate(tmp_path)
    due = [write_recording(tmp_path, f"L1/{n}.wav", age_days=31) for n in ("a", "z")]
    due.append(sparse_recording(rec / "L1" / "sparse.wav"))
    fill(rec)
    assert os.statvfs(rec).f_bavail < 2
    result = recd("--once", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "L1: 3 recordings, 3 due, 3 erased\n" in result.stdout
    assert not any(p.exists() for p in due)
    check_consistent(tmp_path, ["L1/a.wav", "L1/z.wav", "L1/sparse.wav", "filler"])


def _subject(path: Path) -> str:
    return recording_id("pbx", str(path.relative_to(path.parents[1])))
