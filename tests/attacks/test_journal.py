"""Data journalling hidden from the mount table (issue 13, point 5; root only).

An ext3/ext4 filesystem whose DEFAULT is data journalling (``tune2fs -o journal_data``) does not
say ``data=journal`` in ``/proc/self/mountinfo``, yet every block written goes through the
journal first, so an in-place overwrite leaves copies of the recording there. recd reads the
options in force (``/proc/fs/ext4/<device>/options``) and claims an overwrite effective only
when it knows there is no data journalling; when it cannot read them it claims nothing.
Variants: ext4 and ext3 journalled by default, by mount option and not at all, ext2 and ext4
without a journal, the block device found without sysfs, the options unreadable or missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from recd.adapters.local.erase import EraseResult, LocalEraser
from recd.core.erasure import Action, Decision, EraseSettings, decide
from recd.core.model import EraseMethod, ErasePattern
from tests import tools
from tests.adapters.local.helpers import LATER, TEMP, erase_as_decided, ident, marker, touch
from tests.adapters.loopfs import LoopFs, Mounts, run
from tests.e2e.helpers import audit_entries, recd, write_estate, write_recording

pytestmark = pytest.mark.root

JOURNALLED = "ext4 data=journal"


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    with Mounts(tmp_path / "mounts") as m:
        yield m


def journalled_by_default(
    mounts: Mounts, fstype: str = "ext4", mountpoint: Path | None = None
) -> LoopFs:
    """A filesystem made with data journalling as its default, mounted without options."""
    tune2fs = tools.need("tune2fs")
    fs = mounts.loop(fstype, size_mb=16, options=("nodiscard",), mountpoint=mountpoint)
    fs.unmount()
    run(tune2fs, "-o", "journal_data", str(fs.image))
    run("mount", "-t", fstype, "-o", "nodiscard", fs.device, str(fs.mountpoint))
    fs.mounted = True
    return fs


def mount_options(fs: LoopFs) -> list[str]:
    """The mount's options as /proc/self/mountinfo shows them (per-mount and superblock)."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(fs.mountpoint):
            return fields[5].split(",") + fields[fields.index("-") + 3].split(",")
    raise AssertionError(f"{fs.mountpoint} is not in /proc/self/mountinfo")


def facts_of(e: LocalEraser, path: Path, relpath: str) -> tuple[str, bool | None]:
    with e.prepare(relpath, *ident(path.stat())) as p:
        return p.facts.fs_type, p.facts.data_journal


# -- the attack: a default the mount table does not show -------------------------------------


def test_journal_data_by_default_is_not_claimed_effective(mounts: Mounts) -> None:
    fs = journalled_by_default(mounts)
    assert not any(o.startswith("data=") for o in mount_options(fs))  # what recd used to read
    secret = marker("journalled")
    st = touch(fs.mountpoint / "a.wav", secret * 1000)
    os.sync()
    with LocalEraser(fs.mountpoint) as e:
        decision, result = erase_as_decided(e, "a.wav", st, EraseSettings())
    assert decision == Decision(Action.ERASE, EraseMethod.UNLINK, False, JOURNALLED)
    assert result == EraseResult(EraseMethod.UNLINK, False, JOURNALLED, 0)
    assert os.listdir(fs.mountpoint) == ["lost+found"]


def test_an_overwrite_there_leaves_the_data_in_the_journal(mounts: Mounts) -> None:
    """Why the claim matters: an in-place overwrite, forced, still leaves the recording."""
    fs = journalled_by_default(mounts)
    secret = marker("journalled")
    st = touch(fs.mountpoint / "a.wav", secret * 1000)
    os.sync()
    forced = Decision(Action.ERASE, EraseMethod.OVERWRITE, True)
    with LocalEraser(fs.mountpoint) as e, e.prepare("a.wav", *ident(st)) as p:
        e.erase(p, forced, pattern=ErasePattern.ZEROS, verify=True, temp_name=TEMP)
        e.sync()
    fs.unmount()
    assert fs.image_contains(secret)


@pytest.mark.parametrize("fstype", ["ext4", "ext3"])
def test_audit_of_once_says_not_effective_and_why(
    mounts: Mounts, tmp_path: Path, fstype: str
) -> None:
    config = write_estate(tmp_path)
    journalled_by_default(mounts, fstype, mountpoint=tmp_path / "recordings")
    old = write_recording(tmp_path, "L1/old.wav", age_days=31)
    result = recd("--once", "--config", str(config))
    assert (result.returncode, result.stdout) == (0, "L1: 1 recording, 1 due, 1 erased\n")
    assert not old.exists()
    [done] = [e for e in audit_entries(tmp_path) if e["action"] == "erase.done"]
    assert done["details"]["method"] == "unlink"
    assert done["details"]["effective"] is False
    assert done["details"]["ineffective_reason"] == f"{fstype} data=journal"


def test_audit_of_once_on_ordered_ext4_says_effective(mounts: Mounts, tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    mounts.loop("ext4", size_mb=16, mountpoint=tmp_path / "recordings")
    old = write_recording(tmp_path, "L1/old.wav", age_days=31)
    result = recd("--once", "--config", str(config))
    assert (result.returncode, result.stdout) == (0, "L1: 1 recording, 1 due, 1 erased\n")
    assert not old.exists()
    [done] = [e for e in audit_entries(tmp_path) if e["action"] == "erase.done"]
    assert (done["details"]["method"], done["details"]["effective"]) == ("overwrite", True)
    assert "ineffective_reason" not in done["details"]


# -- the ext family: what each one is found to do -------------------------------------------


@pytest.mark.parametrize(
    ("fstype", "mkfs_args", "options", "expected"),
    [
        ("ext4", (), (), ("ext4", False)),  # data=ordered
        ("ext4", (), ("data=writeback",), ("ext4", False)),
        ("ext4", (), ("data=journal",), ("ext4", True)),
        ("ext4", ("-O", "^has_journal"), (), ("ext4", False)),  # nothing to journal into
        ("ext3", (), (), ("ext3", False)),
        ("ext3", (), ("data=journal",), ("ext3", True)),
        ("ext2", (), (), ("ext2", False)),
    ],
)
def test_ext_family_data_journalling(
    mounts: Mounts,
    fstype: str,
    mkfs_args: tuple[str, ...],
    options: tuple[str, ...],
    expected: tuple[str, bool],
) -> None:
    fs = mounts.loop(fstype, size_mb=16, mkfs_args=mkfs_args, options=options)
    touch(fs.mountpoint / "a.wav")
    with LocalEraser(fs.mountpoint) as e:
        assert facts_of(e, fs.mountpoint / "a.wav", "a.wav") == expected


def test_ext3_journalled_by_default(mounts: Mounts) -> None:
    fs = journalled_by_default(mounts, "ext3")
    touch(fs.mountpoint / "a.wav")
    with LocalEraser(fs.mountpoint) as e:
        assert facts_of(e, fs.mountpoint / "a.wav", "a.wav") == ("ext3", True)


def test_device_found_from_the_mount_source_without_sysfs(mounts: Mounts, tmp_path: Path) -> None:
    fs = journalled_by_default(mounts)
    touch(fs.mountpoint / "a.wav")
    with LocalEraser(fs.mountpoint, sysfs=tmp_path / "no-sysfs") as e:
        assert facts_of(e, fs.mountpoint / "a.wav", "a.wav") == ("ext4", True)


# -- when recd cannot tell, it claims nothing ------------------------------------------------


def fake_proc(tmp_path: Path, fs: LoopFs, options: str | None) -> Path:
    """A procfs with the real mount table and jbd2 list and ``options`` as the options in
    force of ``fs`` (None: no options file, as for a device ext4 does not know)."""
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    shutil.copy("/proc/self/mountinfo", proc / "self" / "mountinfo")
    (proc / "fs" / "jbd2").mkdir(parents=True)
    for journal in os.listdir("/proc/fs/jbd2"):
        (proc / "fs" / "jbd2" / journal).mkdir()
    entry = proc / "fs" / "ext4" / Path(fs.device).name
    entry.mkdir(parents=True)
    if options == "unreadable":
        (entry / "options").mkdir()  # reading it fails (EISDIR), even as root
    elif options is not None:
        (entry / "options").write_text(options)
    return proc


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ("unreadable", "ext4 data journalling unknown"),
        (None, "ext4 data journalling unknown"),
        ("rw\ncommit=5\n", "ext4 data journalling unknown"),  # a journal, yet no data= line
        ("rw\ndata=ordered\n", None),  # the same fake tree can say "effective"
    ],
)
def test_options_that_cannot_be_read_are_not_claimed_effective(
    mounts: Mounts, tmp_path: Path, options: str | None, reason: str | None
) -> None:
    fs = mounts.loop("ext4", size_mb=16)
    st = touch(fs.mountpoint / "a.wav")
    proc = fake_proc(tmp_path, fs, options)
    with LocalEraser(fs.mountpoint, proc=proc) as e, e.prepare("a.wav", *ident(st)) as p:
        decision = decide(p.facts, EraseSettings(), LATER)
    if reason is None:
        assert decision == Decision(Action.ERASE, EraseMethod.OVERWRITE, True)
    else:
        assert decision == Decision(Action.ERASE, EraseMethod.UNLINK, False, reason)
