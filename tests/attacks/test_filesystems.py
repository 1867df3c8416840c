"""Attack: a recording tree on a filesystem where an in-place overwrite cannot reach the data.

Unusual but legal filesystems under a source root: tmpfs (pages may be in swap), overlay (the
lower layer keeps its copy; an erase only whites it out), btrfs (copy-on-write), XFS with a
reflinked copy of a recording (the shared extents stay with the copy), and ext4 mounted
``data=journal`` (the journal holds copies of the data). Someone relying on recd's audit as proof
of secure erasure must not be told the data was overwritten when it was not.

What must hold, end to end through ``recd --once``: the due recordings are still erased (by
unlink); the ``erase.intent`` and ``erase.done`` entries of each say ``method: "unlink"``,
``effective: false`` and the ``ineffective_reason``; the log line says "overwrite not
effective" with the reason; a plain file on XFS and on ext4 is overwritten and says ``effective:
true``; nothing outside the erased files is touched (the overlay's lower copy, the reflink's
original).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.loopfs import Mount, Mounts, run
from tests.e2e.helpers import audit_entries, check_consistent, recd, write_estate, write_recording
from tests.intentshape import per_recording

pytestmark = pytest.mark.root


class Filesystems(Mounts):
    """``Mounts`` with an overlay mount too."""

    def overlay(self, target: Path, lower: Path, work: Path) -> Mount:
        """Overlay ``lower`` (read-only) with an upper layer below ``work``, on ``target``."""
        for d in (target, lower, work / "upper", work / "work"):
            d.mkdir(parents=True, exist_ok=True)
        options = f"lowerdir={lower},upperdir={work / 'upper'},workdir={work / 'work'}"
        run("mount", "-t", "overlay", "overlay", "-o", options, str(target))
        mount = Mount(target)
        self._made.append(mount)
        return mount


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Filesystems]:
    with Filesystems(tmp_path / "mounts") as m:
        yield m


def erasures(base: Path) -> dict[str, list[dict[str, Any]]]:
    """Each erased location's ``erase.intent`` and ``erase.done`` details."""
    found: dict[str, list[dict[str, Any]]] = {}
    for e in per_recording(audit_entries(base)):
        if e["action"] in ("erase.intent", "erase.done"):
            found.setdefault(e["details"]["location"], []).append(e["details"])
    return found


def assert_unlinked(base: Path, stderr: str, path: Path, reason: str) -> None:
    entries = erasures(base)[str(path)]
    assert len(entries) == 2
    for details in entries:
        assert (details["method"], details["effective"]) == ("unlink", False), details
        assert details["ineffective_reason"] == reason
    assert entries[1]["bytes_overwritten"] == 0
    assert f"erased {path} (unlink, overwrite not effective: {reason})\n" in stderr


def assert_overwritten(base: Path, path: Path) -> None:
    entries = erasures(base)[str(path)]
    assert [(d["method"], d["effective"]) for d in entries] == [("overwrite", True)] * 2
    assert all("ineffective_reason" not in d for d in entries)
    assert entries[1]["bytes_overwritten"] == 4096  # write_recording's size


def once(config: Path) -> str:
    result = recd("--once", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize(
    ("fstype", "options", "reason"),
    [
        ("tmpfs", (), "tmpfs (memory may be swapped)"),
        ("btrfs", (), "btrfs copy-on-write"),
        ("ext4", ("data=journal",), "ext4 data=journal"),
    ],
)
def test_overwrite_is_not_claimed_where_it_cannot_reach_the_data(
    tmp_path: Path, mounts: Filesystems, fstype: str, options: tuple[str, ...], reason: str
) -> None:
    rec = tmp_path / "recordings"
    if fstype == "tmpfs":
        mounts.tmpfs(rec, size="4m")
    else:
        rec.mkdir()
        mounts.loop(fstype, options=options, mountpoint=rec)
    config = write_estate(tmp_path)
    due = write_recording(tmp_path, "L1/due.wav", age_days=31)
    young = write_recording(tmp_path, "L1/young.wav", age_days=1)
    stderr = once(config)
    assert not due.exists() and young.exists()
    assert_unlinked(tmp_path, stderr, due, reason)
    check_consistent(tmp_path, ["L1/due.wav", "L1/young.wav"])


def test_overlay_says_the_lower_copy_may_remain(tmp_path: Path, mounts: Filesystems) -> None:
    rec = tmp_path / "recordings"
    lower = tmp_path / "lower"
    (lower / "L1").mkdir(parents=True)
    (lower / "L1" / "shipped.wav").write_bytes(b"in the image" * 100)
    os.utime(lower / "L1" / "shipped.wav", (0, 0))
    mounts.overlay(rec, lower, tmp_path / "layers")
    config = write_estate(tmp_path)
    due = write_recording(tmp_path, "L1/due.wav", age_days=31)
    stderr = once(config)
    assert not due.exists() and not (rec / "L1" / "shipped.wav").exists()
    for path in (due, rec / "L1" / "shipped.wav"):
        assert_unlinked(tmp_path, stderr, path, "overlay filesystem")
    # What the audit warns about: the lower layer still holds the data.
    assert (lower / "L1" / "shipped.wav").read_bytes() == b"in the image" * 100


def test_xfs_reflinked_copy_is_unlinked_and_plain_file_overwritten(
    tmp_path: Path, mounts: Filesystems
) -> None:
    rec = tmp_path / "recordings"
    rec.mkdir()
    mounts.loop("xfs", mkfs_args=("-m", "reflink=1"), mountpoint=rec)
    config = write_estate(tmp_path)
    plain = write_recording(tmp_path, "L1/plain.wav", age_days=31)
    original = write_recording(tmp_path, "L1/original.wav", age_days=1, size=65536)
    data = original.read_bytes()
    copy = rec / "L1" / "copy.wav"
    subprocess.run(["cp", "--reflink=always", str(original), str(copy)], check=True)
    os.utime(copy, (0, 0))
    os.sync()  # the extents are shared on disk, where FIEMAP reports them
    stderr = once(config)
    assert not plain.exists() and not copy.exists()
    assert_unlinked(tmp_path, stderr, copy, "shared extents (reflink)")
    assert_overwritten(tmp_path, plain)
    assert original.read_bytes() == data  # the other owner of the shared blocks is untouched


def test_plain_ext4_is_overwritten_and_says_so(tmp_path: Path, mounts: Filesystems) -> None:
    """The control: the same run on a plain ext4 claims an effective overwrite."""
    rec = tmp_path / "recordings"
    rec.mkdir()
    mounts.loop("ext4", mountpoint=rec)
    config = write_estate(tmp_path)
    due = write_recording(tmp_path, "L1/due.wav", age_days=31)
    stderr = once(config)
    assert f"erased {due} (overwrite)\n" in stderr
    assert_overwritten(tmp_path, due)
