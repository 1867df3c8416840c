"""A file replaced by another of the same size that reused the inode number (issue 13, 4).

ext4 hands a freed inode number to the next file created at once, and ``mv`` and ``cp -p`` keep
an old mtime: (dev, ino, size, mtime) no longer tell the new file from the one indexed. The
inode's change time (and birth time, where known) does; the erase checks them, leaves such a
file alone and re-indexes it with its own deadline.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from recd.adapters.local.checks import check_identity
from recd.adapters.local.erase import LocalEraser
from recd.adapters.sqlite.catalogue import SqliteCatalogue
from recd.core.model import Recording, Stamps, recording_id
from recd.daemon.runtime import reindex, scan_all
from recd.ports.eraser import Changed, Refused
from recd.service.sweep import Sweeper, SweepReport
from tests.adapters.loopfs import Mounts
from tests.estate import Estate
from tests.fakes import FakeClock
from tests.tools import need

# -- LocalEraser.prepare: the identity checked at erase ---------------------------------------


@pytest.fixture
def eraser(root: Path) -> Iterator[LocalEraser]:
    with LocalEraser(root, chunk_size=64 * 1024) as e:
        yield e


def indexed(path: Path) -> tuple[int, int, int, Stamps]:
    st = path.stat()
    return st.st_dev, st.st_ino, st.st_size, Stamps(st.st_mtime_ns, st.st_ctime_ns)


def test_the_file_as_indexed_is_prepared(root: Path, eraser: LocalEraser) -> None:
    (root / "a.wav").write_bytes(b"recording")
    dev, ino, size, stamps = indexed(root / "a.wav")
    eraser.prepare("a.wav", dev, ino, size, stamps).close()
    eraser.prepare("a.wav", dev, ino, size, Stamps(stamps.mtime_ns)).close()  # no ctime: unknown


@pytest.mark.parametrize(
    ("change", "what"),
    [
        (lambda p: os.utime(p, ns=(0, p.stat().st_mtime_ns + 1)), "mtime"),
        (lambda p: p.chmod(0o600), "ctime"),
        (lambda p: p.write_bytes(b"longer recording"), "size"),
    ],
)
def test_a_file_changed_since_indexing_is_changed_not_erasable(
    root: Path, eraser: LocalEraser, change: Callable[[Path], None], what: str
) -> None:
    (root / "a.wav").write_bytes(b"recording")
    dev, ino, size, stamps = indexed(root / "a.wav")
    change(root / "a.wav")
    with pytest.raises(Changed, match=f"changed since it was indexed \\({what} "):
        eraser.prepare("a.wav", dev, ino, size, stamps)
    eraser.prepare("a.wav", dev, ino, None, None).close()  # recovery compares nothing


def test_birth_times_are_compared_only_when_both_are_known(root: Path) -> None:
    (root / "a.wav").write_bytes(b"recording")
    st = (root / "a.wav").stat()
    stamps = Stamps(st.st_mtime_ns, st.st_ctime_ns, 1_000)
    check_identity(st, st.st_dev, st.st_dev, st.st_ino, st.st_size, stamps)  # not known now
    check_identity(st, st.st_dev, st.st_dev, st.st_ino, st.st_size, stamps, btime_ns=1_000)
    with pytest.raises(Changed, match=r"\(birth time 1970-01-01T00:00:00.000002000Z, indexed "):
        check_identity(st, st.st_dev, st.st_dev, st.st_ino, st.st_size, stamps, btime_ns=2_000)
    without = Stamps(st.st_mtime_ns, st.st_ctime_ns)
    check_identity(st, st.st_dev, st.st_dev, st.st_ino, st.st_size, without, btime_ns=2_000)


def test_another_inode_is_still_refused_as_replaced(root: Path, eraser: LocalEraser) -> None:
    (root / "a.wav").write_bytes(b"recording")
    dev, ino, size, stamps = indexed(root / "a.wav")
    (root / "b.wav").write_bytes(b"recording")
    (root / "b.wav").replace(root / "a.wav")
    with pytest.raises(Refused, match="replaced since it was indexed") as caught:
        eraser.prepare("a.wav", dev, ino, size, stamps)
    assert not isinstance(caught.value, Changed)


# -- a real reused inode number on ext4 -------------------------------------------------------


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    with Mounts(tmp_path / "mounts") as m:
        yield m


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock, mounts: Mounts) -> Estate:
    """An estate whose recordings are on a fresh ext4 (its state dir is not)."""
    mounts.loop("ext4", size_mb=16, mountpoint=tmp_path / "recordings")
    return Estate(tmp_path, fake_clock)


def row(estate: Estate, relpath: str) -> Recording:
    cat = SqliteCatalogue(estate.config.daemon.state_dir / "catalog.db")
    try:
        found = cat.get(recording_id("pbx", relpath))
    finally:
        cat.close()
    assert found is not None
    return found


def replaced_then_swept(estate: Estate, replace: Callable[[Path, int], None]) -> SweepReport:
    """Index a due L1/old.wav; ``replace(path, old mtime_ns)`` puts another file of the same
    size there (asserted: with the same inode number); sweep without a scan between."""
    path = estate.write("L1/old.wav", age_days=31, data=b"\x01" * 4096)
    before = path.stat()
    rt = estate.runtime()
    try:
        scan_all(rt)
        replace(path, before.st_mtime_ns)
        after = path.stat()
        assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
            before.st_ino, before.st_size, before.st_mtime_ns,
        ), "ext4 did not reuse the inode number"  # fmt: skip
        return Sweeper(
            estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers,
            reindex=functools.partial(reindex, rt),
        ).run()  # fmt: skip
    finally:
        rt.close()


def recreate(path: Path, mtime_ns: int) -> None:
    path.unlink()
    path.write_bytes(b"\x02" * 4096)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def moved_over(path: Path, mtime_ns: int) -> None:
    """``mv`` of a file made elsewhere on the same filesystem after the old one was deleted."""
    need("mv")
    path.unlink()
    other = path.parent.parent / "incoming.wav"
    other.write_bytes(b"\x02" * 4096)
    os.utime(other, ns=(mtime_ns, mtime_ns))
    subprocess.run(["mv", str(other), str(path)], check=True)


def copied_with_times(path: Path, mtime_ns: int) -> None:
    """``cp -p`` of a file from another filesystem that has the old mtime."""
    need("cp")
    source = path.parents[3] / "elsewhere.wav"  # tmp_path: not the ext4
    source.write_bytes(b"\x02" * 4096)
    os.utime(source, ns=(mtime_ns, mtime_ns))
    path.unlink()
    subprocess.run(["cp", "-p", str(source), str(path)], check=True)
    source.unlink()


@pytest.mark.root
@pytest.mark.parametrize("replace", [recreate, moved_over, copied_with_times])
def test_a_new_file_on_a_reused_inode_is_not_erased_as_the_old_one(
    estate: Estate, replace: Callable[[Path, int], None]
) -> None:
    report = replaced_then_swept(estate, replace)
    path = estate.root / "L1" / "old.wav"
    assert report.erased == 0
    assert path.read_bytes() == b"\x02" * 4096
    rid = recording_id("pbx", "L1/old.wav")
    assert estate.actions() == [("erase.skipped", rid)]  # no intent: nothing was touched
    reason = estate.audit()[-1]["details"]["skipped"]
    assert reason.startswith("changed since it was indexed (ctime ")
    assert row(estate, "L1/old.wav").ctime_ns == path.stat().st_ctime_ns  # re-indexed
    # Its own deadline (from its own, old, mtime): the next sweep erases it as itself.
    assert estate.sweep().erased == 1
    assert [a for a, _ in estate.actions()] == ["erase.skipped", "erase.intent", "erase.done"]
