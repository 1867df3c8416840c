"""Issue 13 (3): mounts hidden in a recording tree (root only: real ``mount --bind``).

A bind mount of the root's own filesystem has the root's ``st_dev``; recd tells it by mount id
(``statx`` ``STATX_MNT_ID``, and the mount points below the root in mountinfo). Whatever is
mounted, and whenever it appears (before the walk, between the walk and the erase, after the
erase opened the file), the victim outside the tree keeps its content and mtime, and recd goes
on erasing the other due recordings.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from recd.adapters.local import safefs
from recd.adapters.local.directory import DirectorySource
from recd.adapters.local.erase import LocalEraser
from recd.core.model import ErasePattern
from recd.ports.eraser import Refused
from tests.adapters.local.helpers import OVERWRITE, TEMP, erase_one, ident, touch
from tests.adapters.loopfs import Mounts
from tests.attacks.helpers import SECRET, Victim
from tests.e2e.helpers import recd, write_estate, write_recording

pytestmark = pytest.mark.root

SAME_MOUNT = r"is on another mount of the same filesystem \(a mount below the root\)$"


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    with Mounts(tmp_path / "mounts") as m:
        yield m


def scanned(root: Path) -> tuple[set[str], list[str]]:
    src = DirectorySource("pbx", root)
    found = {f.relpath for f in src.scan()}
    return found, src.report.skipped_mounts


def test_directory_bound_from_elsewhere_on_the_same_fs_is_neither_walked_nor_erased(
    mounts: Mounts, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "root"
    victim = Victim(tmp_path / "elsewhere" / "victim.wav")
    touch(root / "L1" / "own.wav")
    (root / "L1" / "bound").mkdir()
    mounts.bind(victim.path.parent, root / "L1" / "bound")
    assert (root / "L1" / "bound" / "victim.wav").stat().st_dev == (root / "L1").stat().st_dev

    with caplog.at_level(logging.WARNING):
        assert scanned(root) == ({"L1/own.wav"}, ["L1/bound"])
    assert "not entering L1/bound: a bind mount of this filesystem is mounted there" in (
        caplog.text
    )
    src = DirectorySource("pbx", root)
    assert src.facts("L1/bound/victim.wav") is None
    assert list(src.scan("L1/bound")) == []
    with LocalEraser(root) as e:
        with pytest.raises(Refused, match=rf"^L1/bound {SAME_MOUNT}"):
            e.prepare("L1/bound/victim.wav", *ident(victim.st))
        with pytest.raises(Refused, match=rf"^L1/bound {SAME_MOUNT}"):
            e.locate("L1/bound/victim.wav", TEMP, victim.st.st_dev, victim.st.st_ino)
        erase_one(e, "L1/own.wav", (root / "L1" / "own.wav").stat(), OVERWRITE)
    assert victim.untouched()
    assert not (root / "L1" / "own.wav").exists()


def test_single_file_bound_over_a_recording_is_not_written_before_the_rename_fails(
    mounts: Mounts, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    victim = Victim(tmp_path / "elsewhere" / "victim.wav")
    touch(root / "L1" / "rec.wav", b"underneath")
    touch(root / "L1" / "other.wav")
    mounts.bind(victim.path, root / "L1" / "rec.wav")
    seen = (root / "L1" / "rec.wav").stat()
    assert (seen.st_dev, seen.st_ino) == (victim.st.st_dev, victim.st.st_ino)

    assert scanned(root) == ({"L1/other.wav"}, ["L1/rec.wav"])
    assert DirectorySource("pbx", root).facts("L1/rec.wav") is None
    with LocalEraser(root) as e:
        # the identity the victim has through the mount: only the mount id tells them apart
        with pytest.raises(Refused, match=rf"^{SAME_MOUNT}"):
            e.prepare("L1/rec.wav", *ident(seen))
        erase_one(e, "L1/other.wav", (root / "L1" / "other.wav").stat(), OVERWRITE)
    assert victim.untouched()
    assert not (root / "L1" / "other.wav").exists()


@pytest.mark.parametrize("kind", ["directory", "file"])
def test_bind_mount_appearing_between_the_walk_and_the_erase_is_refused(
    mounts: Mounts, tmp_path: Path, kind: str
) -> None:
    root = tmp_path / "root"
    victim = Victim(tmp_path / "elsewhere" / "rec.wav")
    touch(root / "L1" / "rec.wav")
    indexed = {f.relpath: f for f in DirectorySource("pbx", root).scan()}
    assert set(indexed) == {"L1/rec.wav"}
    if kind == "directory":
        mounts.bind(victim.path.parent, root / "L1")
        where = "L1 "
    else:
        mounts.bind(victim.path, root / "L1" / "rec.wav")
        where = ""
    f = indexed["L1/rec.wav"]
    with LocalEraser(root) as e, pytest.raises(Refused, match=rf"^{where}{SAME_MOUNT}"):
        e.prepare("L1/rec.wav", f.dev, f.ino, f.size)
    assert victim.untouched()


def test_mount_on_a_directory_of_the_path_after_prepare_erases_only_the_inode_held(
    mounts: Mounts, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    victim = Victim(tmp_path / "elsewhere" / "rec.wav")
    st = touch(root / "L1" / "rec.wav", b"the recording")
    with LocalEraser(root) as e:
        with e.prepare("L1/rec.wav", *ident(st)) as p:
            mount = mounts.bind(victim.path.parent, root / "L1")
            e.erase(p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=True, temp_name=TEMP)
        e.sync()
    assert victim.untouched()
    mount.unmount()
    assert list((root / "L1").iterdir()) == []  # the recording beneath the mount is gone


def test_recursive_bind_takes_nested_mounts_along_and_none_is_entered(
    mounts: Mounts, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    outer = Victim(tmp_path / "elsewhere" / "outer" / "a.wav")
    inner = Victim(tmp_path / "deeper" / "b.wav")
    (outer.path.parent / "inner").mkdir()
    mounts.bind(inner.path.parent, outer.path.parent / "inner")
    (root / "L1" / "r").mkdir(parents=True)
    touch(root / "L1" / "own.wav")
    mounts.bind(outer.path.parent, root / "L1" / "r", recursive=True)
    assert (root / "L1" / "r" / "inner" / "b.wav").read_bytes() == SECRET

    assert scanned(root) == ({"L1/own.wav"}, ["L1/r"])
    with LocalEraser(root) as e:
        for relpath, v in (("L1/r/a.wav", outer), ("L1/r/inner/b.wav", inner)):
            with pytest.raises(Refused, match=rf"^L1/r {SAME_MOUNT}"):
                e.prepare(relpath, *ident(v.st))
    assert outer.untouched() and inner.untouched()


def test_the_roots_own_parent_bound_inside_the_root_is_not_a_way_out(
    mounts: Mounts, tmp_path: Path
) -> None:
    base = tmp_path / "base"
    root = base / "recordings"
    victim = Victim(base / "victim.wav")
    touch(root / "L1" / "own.wav")
    (root / "L1" / "loop").mkdir()
    mounts.bind(base, root / "L1" / "loop")
    assert (root / "L1" / "loop" / "recordings" / "L1" / "own.wav").exists()

    assert scanned(root) == ({"L1/own.wav"}, ["L1/loop"])
    with LocalEraser(root) as e:
        with pytest.raises(Refused, match=rf"^L1/loop {SAME_MOUNT}"):
            e.prepare("L1/loop/victim.wav", *ident(victim.st))
    assert victim.untouched()


def test_mount_points_with_escaped_names_are_read_from_mountinfo(
    mounts: Mounts, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    victim = Victim(tmp_path / "elsewhere" / "victim.wav")
    name = "with space\\and\ttab"
    (root / name).mkdir(parents=True)
    mounts.bind(victim.path.parent, root / name)
    assert safefs.mounts_below(str(root)) == frozenset({name})
    assert scanned(root) == (set(), [name])


def test_a_directory_mounted_after_it_was_listed_is_refused_by_mount_id(
    mounts: Mounts, tmp_path: Path
) -> None:
    # what the walk does when mountinfo was read before the mount appeared
    root = tmp_path / "root"
    victim = Victim(tmp_path / "elsewhere" / "victim.wav")
    (root / "sub").mkdir(parents=True)
    mounts.bind(victim.path.parent, root / "sub")
    root_fd, root_id = safefs.Root(root).open()
    try:
        with pytest.raises(safefs.CrossesMount, match="another mount of the same filesystem"):
            safefs.open_subdir(root_fd, "sub", root_id, "sub")
    finally:
        os.close(root_fd)


def test_once_skips_every_bind_mount_and_erases_the_other_due_recordings(
    mounts: Mounts, tmp_path: Path
) -> None:
    config = write_estate(tmp_path)
    rec = tmp_path / "recordings"
    dir_victim = Victim(tmp_path / "elsewhere" / "victim.wav")
    file_victim = Victim(tmp_path / "outside.wav")
    due = write_recording(tmp_path, "L1/due.wav", age_days=31)
    write_recording(tmp_path, "L1/mounted.wav", age_days=31)
    (rec / "L1" / "bound").mkdir()
    mounts.bind(dir_victim.path.parent, rec / "L1" / "bound")
    mounts.bind(file_victim.path, rec / "L1" / "mounted.wav")

    result = recd("--once", "--config", str(config))
    assert (result.returncode, result.stdout) == (0, "L1: 1 recording, 1 due, 1 erased\n")
    assert "not entering L1/bound: a bind mount of this filesystem is mounted there" in (
        result.stderr
    )
    assert "not entering L1/mounted.wav: a bind mount" in result.stderr
    assert not due.exists()
    assert dir_victim.untouched() and file_victim.untouched()


def test_the_mount_id_fallback_agrees_with_statx(mounts: Mounts, tmp_path: Path) -> None:
    # /proc/self/fdinfo is what kernels without STATX_MNT_ID (before 5.8) are asked
    (tmp_path / "root" / "bound").mkdir(parents=True)
    mounts.bind(tmp_path / "root", tmp_path / "root" / "bound")
    fds = [os.open(tmp_path / p, os.O_PATH) for p in ("root", "root/bound")]
    try:
        ids = [safefs._fdinfo_mnt_id(fd) for fd in fds]
        assert ids == [safefs.mount_id(fd) for fd in fds]
        assert None not in ids and ids[0] != ids[1]
    finally:
        for fd in fds:
            os.close(fd)


def test_a_mount_hidden_later_under_an_unchanged_directory_is_not_walked(
    mounts: Mounts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mount changes no directory's mtime: a rescan that trusts an unchanged directory's
    stamp still meets the mount (mountinfo, and the mount id of each subdirectory opened)."""
    import time

    from recd.adapters.local import directory
    from recd.ports.source import DirStamp

    none: dict[str, DirStamp] = {}

    monkeypatch.setattr(directory, "STAMP_SLACK_NS", 0)
    root = tmp_path / "root"
    victim = Victim(tmp_path / "elsewhere" / "victim.wav")
    touch(root / "L1" / "own.wav")
    touch(root / "L1" / "sub" / "deep.wav")
    time.sleep(0.05)
    src = DirectorySource("pbx", root)
    stamps = {x.relpath: x.stamp for x in src.scan_dirs("", none.get) if x.stamp is not None}
    assert set(stamps) == {"", "L1", "L1/sub"}
    mounts.bind(victim.path.parent, root / "L1" / "sub")
    found = {x.relpath: x for x in src.scan_dirs("", stamps.get)}
    assert found[""].files is None  # trusted: nothing is mounted in it
    assert found["L1"].files is not None  # something is mounted in it: listed
    assert "L1/sub" not in found and src.report.skipped_mounts == ["L1/sub"]
    monkeypatch.setattr(safefs, "mounts_below", lambda root: frozenset())  # mountinfo misses it
    found = {x.relpath: x for x in src.scan_dirs("", stamps.get)}
    assert found["L1"].files is None and "L1/sub" not in found  # refused by its mount id
    assert src.report.skipped_mounts == ["L1/sub"]
    assert victim.untouched()
