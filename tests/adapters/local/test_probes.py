"""The effectiveness and opener probes of a local erase (recd.adapters.local.probes): filesystem
names, FIEMAP walked in batches, writers and readers seen through the lease probe (real
processes), and ext data journalling read from fake mountinfo, procfs and sysfs trees.
Every test here also checks that no file descriptor leaked.
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from recd.adapters.local import probes
from recd.adapters.local.erase import LocalEraser
from recd.adapters.local.probes import filesystem_name
from recd.core.erasure import Action, Decision, EraseSettings, decide
from recd.core.model import EraseMethod
from tests.adapters.local.helpers import (
    ALL_CAPS,
    LATER,
    ONLY_CAP_LEASE,
    ident,
    proc_status,
    touch,
)

pytestmark = pytest.mark.usefixtures("no_fd_leaks")  # every test: no descriptor leaked

FS_IOC_FIEMAP = 0xC020660B  # linux/fs.h: the ioctl that maps a file's extents


def test_filesystem_names() -> None:
    assert filesystem_name(0xEF53) == "ext4"
    assert filesystem_name(0x9123683E) == "btrfs"
    assert filesystem_name(0x1234) == "unknown-0x1234"


def test_fragmented_file_extents_are_walked_in_batches(
    root: Path, eraser: LocalEraser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file of 192 extents is mapped 64 extents per FIEMAP call (bounded memory for a
    fragmented multi-gigabyte file), each call starting where the last extent seen ended."""
    path = root / "a.wav"
    with path.open("wb") as f:
        for i in range(3 * 64):  # a data block every other block: one extent each
            f.seek(i * 8192)
            f.write(b"x" * 4096)
        f.flush()
        os.fsync(f.fileno())
    starts: list[int] = []  # fm_start of each FIEMAP call
    real = fcntl.ioctl

    def ioctl(fd: int, request: int, arg: Any = 0, mutate: bool = True) -> Any:
        if request == FS_IOC_FIEMAP:
            starts.append(struct.unpack_from("=Q", arg)[0])
        return real(fd, request, arg, mutate)

    monkeypatch.setattr(fcntl, "ioctl", ioctl)
    with eraser.prepare("a.wav", *ident(path.stat())) as p:
        shared = p.facts.shared_extents
    if shared is None:
        pytest.skip(f"FIEMAP is not supported on {root}'s filesystem")
    assert shared is False
    assert starts == [0, 63 * 8192 + 4096, 127 * 8192 + 4096]


WRITER = """
import sys, time
f = open(sys.argv[1], "ab")
print("ready", flush=True)
sys.stdin.read()
"""


def test_file_open_for_writing_by_another_process_is_skipped(
    root: Path, eraser: LocalEraser
) -> None:
    st = touch(root / "a.wav")
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root / "a.wav")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline() == "ready\n"
        with eraser.prepare("a.wav", *ident(st)) as p:
            assert p.facts.open_for_write is True
            decision = decide(p.facts, EraseSettings(), LATER)
        assert decision == Decision(
            Action.SKIP, EraseMethod.OVERWRITE, False, "open for writing by another process"
        )
    finally:
        writer.communicate("")
    with eraser.prepare("a.wav", *ident(st)) as p:
        assert p.facts.open_for_write is False


def test_a_writer_opening_during_the_lease_probe_does_not_kill_the_daemon(root: Path) -> None:
    touch(root / "a.wav")
    fd = os.open(root / "a.wav", os.O_RDONLY)
    try:
        with probes.read_lease(fd) as held:
            assert held is True
            writer = subprocess.Popen(
                [sys.executable, "-c", WRITER, str(root / "a.wav")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(0.3)  # its open() breaks our lease: the kernel signals us now
            assert writer.poll() is None  # and blocks it until we release the lease
        assert writer.stdout is not None
        assert writer.stdout.readline() == "ready\n"
        writer.communicate("")
    finally:
        os.close(fd)


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
30 27 7:1 / /mnt/a rw shared:1 - tmpfs tmpfs rw
31 27 7:1 / /mnt/b rw - ext3 /dev/loop1 rw,data=journal
32 27 7:2 / /mnt/c rw - ext4 /dev/loop2 rw,data=ordered,journal_checksum
garbage
33 27 7:3 / /mnt/d rw no-separator
34 27 7:4 / /mnt/e rw - ext2 /dev/disk/by-label/rec\\040tree rw
"""


@pytest.mark.parametrize(
    ("dev", "expected"),
    [
        (os.makedev(254, 0), probes.ExtMount("ext4", "/dev/vda", False)),
        (os.makedev(7, 1), probes.ExtMount("ext3", "/dev/loop1", True)),
        (os.makedev(7, 2), probes.ExtMount("ext4", "/dev/loop2", False)),
        (os.makedev(7, 3), None),
        (os.makedev(7, 4), probes.ExtMount("ext2", "/dev/disk/by-label/rec tree", False)),
        (os.makedev(9, 9), None),
        (os.makedev(0, 21), None),  # not ext
    ],
)
def test_mountinfo_gives_ext_type_source_and_data_journalling(
    tmp_path: Path, dev: int, expected: probes.ExtMount | None
) -> None:
    (tmp_path / "mountinfo").write_text(MOUNTINFO)
    assert probes.read_mountinfo(tmp_path / "mountinfo", dev) == expected
    assert probes.read_mountinfo(tmp_path / "missing", dev) is None


def ext4_proc(proc: Path, name: str, options: str | None, journals: list[str] | None) -> Path:
    """A fake ``<proc>/fs``: ext4's options for device ``name``, jbd2's journal entries."""
    (proc / "fs" / "ext4" / name).mkdir(parents=True)
    if options is not None:
        (proc / "fs" / "ext4" / name / "options").write_text(options.replace(" ", "\n") + "\n")
    if journals is not None:
        (proc / "fs" / "jbd2").mkdir(parents=True)
        for journal in journals:
            (proc / "fs" / "jbd2" / journal).mkdir()
    return proc


@pytest.mark.parametrize(
    ("options", "journals", "expected"),
    [
        ("rw nodelalloc data=journal commit=5", ["loop7-8"], True),
        ("rw delalloc data=ordered commit=5", ["loop7-8"], False),
        ("rw delalloc data=writeback", ["loop7-8"], False),
        ("rw nojournal_checksum commit=5", [], False),  # no journal: ext2, ^has_journal
        ("rw nojournal_checksum", ["loop70-8"], False),  # another device's journal
        ("rw commit=5", ["loop7-8"], None),  # a journal, yet no data= shown
        ("rw commit=5", None, None),  # jbd2 cannot be listed
        ("rw data=journal data=ordered", ["loop7-8"], None),
        (None, ["loop7-8"], None),  # no options file
    ],
)
def test_ext_data_journalling_in_force_is_read_from_procfs(
    tmp_path: Path, options: str | None, journals: list[str] | None, expected: bool | None
) -> None:
    proc = ext4_proc(tmp_path, "loop7", options, journals)
    assert probes.ext_data_journal(proc, "loop7") is expected
    assert probes.ext_data_journal(proc, "loop8") is None  # no such entry


def test_block_device_name_from_sysfs_else_from_the_mount_source(tmp_path: Path) -> None:
    dev = os.makedev(7, 3)
    uevent = tmp_path / "sys" / "dev" / "block" / "7:3" / "uevent"
    uevent.parent.mkdir(parents=True)
    uevent.write_text("MAJOR=7\nMINOR=3\nDEVNAME=loop3\nDEVTYPE=disk\n")
    assert probes.block_device_name(tmp_path / "sys", dev, "/nonexistent") == "loop3"
    uevent.write_text("MAJOR=7\nMINOR=3\n")
    assert probes.block_device_name(tmp_path / "sys", dev, "/nonexistent") is None
    # Without sysfs, a source that is not that block device names nothing.
    assert probes.block_device_name(tmp_path / "none", dev, str(uevent)) is None
    assert probes.block_device_name(tmp_path / "none", dev, "/dev/null") is None
    assert probes.block_device_name(tmp_path / "none", dev, "bad\0name") is None


def test_prepare_tells_a_reader_from_a_writer(root: Path) -> None:
    path = root / "a.wav"
    st = touch(path)
    with LocalEraser(root) as e:
        with e.prepare("a.wav", *ident(st)) as p:
            assert (p.facts.open_for_write, p.facts.open_by_other) == (False, False)
        with path.open("rb"), e.prepare("a.wav", *ident(st)) as p:
            assert (p.facts.open_for_write, p.facts.open_by_other) == (False, True)
        with path.open("ab"), e.prepare("a.wav", *ident(st)) as p:
            assert (p.facts.open_for_write, p.facts.open_by_other) == (True, True)


# -- the right to a lease ---------------------------------------------------------------------


def test_the_right_to_a_lease_is_cap_lease_in_the_effective_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel grants a lease on a file the process does not own only with CAP_LEASE in
    its effective set (bit 28 of CapEff), whoever the process is: root in a unit whose
    CapabilityBoundingSet= drops it is refused too."""
    assert probes.lease_capable(proc_status(tmp_path / "user", ONLY_CAP_LEASE)) is True
    assert probes.lease_capable(proc_status(tmp_path / "root", ALL_CAPS, uid=0)) is True
    assert probes.lease_capable(proc_status(tmp_path / "none", 0)) is False
    bounded = ALL_CAPS & ~ONLY_CAP_LEASE
    assert probes.lease_capable(proc_status(tmp_path / "bounded", bounded, uid=0)) is False
    # No procfs: root is taken to have it, anyone else is unknown (no warning, no guess).
    monkeypatch.setattr(os, "geteuid", lambda: 999)
    assert probes.lease_capable(tmp_path / "absent") is None
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert probes.lease_capable(tmp_path / "absent") is True


@pytest.mark.root
def test_the_right_to_a_lease_of_this_process() -> None:
    assert probes.lease_capable(Path("/proc")) is True  # root, every capability
