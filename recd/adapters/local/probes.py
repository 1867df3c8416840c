"""Probes of how effective an overwrite can be, and of who else has a file open (SPEC 4).

The filesystem's kind (``fstatfs`` magic, ``filesystem_name``); for ext, the type and whether
data journalling is in force (``ExtFilesystems``: the mount in ``<proc>/self/mountinfo``, then
the options in force in ``<proc>/fs/ext4/<device>/options``, which include a filesystem default
set by ``tune2fs -o journal_data`` that mountinfo does not show) and the inode's ``j``
attribute; shared extents (FIEMAP, copy-on-write clones); and whether another process has the
file open for writing or at all (a read, then a write lease tried and released at once), and
whether the process may take leases on files it does not own (``lease_capable``).

Invariants: every probe only reads (a lease taken to ask is released before it returns) and
answers None, never a guess, where the kernel will not say.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import re
import signal
import stat
import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

#: statfs ``f_type`` magic numbers (linux/magic.h and the filesystems' own headers).
FS_MAGIC = {
    0xEF53: "ext4",  # also ext2/ext3; mountinfo tells them apart
    0x9123683E: "btrfs",
    0x58465342: "xfs",
    0x01021994: "tmpfs",
    0x858458F6: "ramfs",
    0x6969: "nfs",
    0xFF534D42: "cifs",
    0xFE534D42: "smb2",
    0x517B: "smb",
    0x00C36400: "ceph",
    0x01021997: "9p",
    0x5346414F: "afs",
    0x794C7630: "overlay",
    0x65735546: "fuse",
    0x2FC12FC1: "zfs",
    0xCA451A4E: "bcachefs",
    0x4D44: "vfat",
    0x2011BAB0: "exfat",
    0xF2F52010: "f2fs",
    0x3434: "nilfs2",
    0xF15F: "ecryptfs",
    0x73717368: "squashfs",
    0xE0F5E1E2: "erofs",
    0x5346544E: "ntfs",
    0x52654973: "reiserfs",
    0x3153464A: "jfs",
    0x01161970: "gfs2",
    0x7461636F: "ocfs2",
}
EXT_NAMES = frozenset({"ext2", "ext3", "ext4"})

FS_IOC_GETFLAGS = 0x80086601
FS_JOURNAL_DATA_FL = 0x00004000
FS_IOC_FIEMAP = 0xC020660B
FIEMAP_HEADER = struct.Struct("=QQIIII")  # fm_start, fm_length, flags, mapped, count, reserved
FIEMAP_EXTENT = struct.Struct("=QQQ16xI12x")  # fe_logical, fe_physical, fe_length, fe_flags
FIEMAP_EXTENT_LAST = 0x1
FIEMAP_EXTENT_SHARED = 0x2000
FIEMAP_BATCH = 64  # extents per ioctl: bounded memory for fragmented multi-gigabyte files


# A lease break sends the holder SIGIO by default, whose default action kills the process; a
# writer opening the file in the moment the probe holds its lease must not kill the daemon.
LEASE_BREAK_SIGNAL = signal.SIGURG  # default action: ignore
CAP_LEASE = 28  # linux/capability.h


class _StatFs(ctypes.Structure):
    # Only f_type is read; it is the first member, a C long, on the 64-bit and 32-bit ABIs
    # recd targets. The tail is generous room for the rest of struct statfs.
    _fields_ = (("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 256))


_libc = ctypes.CDLL(None, use_errno=True)
_libc.fstatfs.argtypes = (ctypes.c_int, ctypes.POINTER(_StatFs))
_libc.fstatfs.restype = ctypes.c_int


def fstatfs_magic(fd: int) -> int:
    buf = _StatFs()
    if _libc.fstatfs(fd, ctypes.byref(buf)) != 0:  # pragma: no cover (fstatfs of an open fd)
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(buf.f_type) & 0xFFFFFFFF


def filesystem_name(magic: int) -> str:
    """The name of a statfs ``f_type``, or ``unknown-0x...``."""
    return FS_MAGIC.get(magic, f"unknown-{magic:#x}")


def inode_journals_data(fd: int) -> bool | None:
    """Whether the inode has the ext ``j`` attribute (its data goes through the journal)."""
    buf = bytearray(8)
    try:
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf, True)
    except OSError:  # pragma: no cover (ext always answers FS_IOC_GETFLAGS)
        return None
    # The kernel writes an int, whatever the ioctl number says.
    return bool(int.from_bytes(buf[:4], sys.byteorder) & FS_JOURNAL_DATA_FL)


def shared_extents(fd: int) -> bool | None:
    """Whether FIEMAP reports any extent of the file as shared; None if it cannot tell."""
    buf = bytearray(FIEMAP_HEADER.size + FIEMAP_EXTENT.size * FIEMAP_BATCH)
    start = 0
    while True:
        FIEMAP_HEADER.pack_into(buf, 0, start, 2**64 - 1 - start, 0, 0, FIEMAP_BATCH, 0)
        try:
            fcntl.ioctl(fd, FS_IOC_FIEMAP, buf, True)
        except OSError:
            return None
        mapped = FIEMAP_HEADER.unpack_from(buf, 0)[3]
        if mapped == 0:
            return False
        for i in range(mapped):
            logical, _physical, length, flags = FIEMAP_EXTENT.unpack_from(
                buf, FIEMAP_HEADER.size + i * FIEMAP_EXTENT.size
            )
            if flags & FIEMAP_EXTENT_SHARED:
                return True
            if flags & FIEMAP_EXTENT_LAST:
                return False
        start = logical + length


def _open_for_write(fd: int) -> bool | None:
    """Whether any process has the file open for writing, by trying to take a read lease.

    The kernel refuses a read lease (EAGAIN) while the file is open for writing. It also
    refuses leases to a process that neither owns the file nor has CAP_LEASE (EACCES), and on
    filesystems without lease support (EINVAL): then None, and ``erase.settle`` alone guards
    against erasing a recording that is still being written.
    """
    with read_lease(fd) as held:
        return None if held is None else not held


def openers(fd: int) -> tuple[bool | None, bool | None]:
    """``(open for writing, open at all)`` by other processes, None where the kernel will not
    say. The second is a write lease tried on ``fd`` (read-only): refused (EAGAIN) while any
    other descriptor is open on the file (``O_PATH`` ones do not count)."""
    writer = _open_for_write(fd)
    if writer is not False:
        return writer, writer
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
    except OSError as exc:
        return False, (True if exc.errno == errno.EAGAIN else None)
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    return False, False


def lease_capable(proc: Path) -> bool | None:
    """Whether this process may take a lease on a file it does not own: ``CAP_LEASE`` in its
    effective set (bit 28 of ``CapEff`` in ``<proc>/self/status``; root without it, as a
    unit's ``CapabilityBoundingSet=`` may leave it, is refused too). When the set cannot be
    read, True for root, else None."""
    try:
        with (proc / "self" / "status").open(encoding="ascii") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key == "CapEff":
                    return bool(int(value, 16) >> CAP_LEASE & 1)
    except (OSError, ValueError):
        pass
    return True if os.geteuid() == 0 else None


#: ``unwritable``'s reason for a root on a read-only mount (under systemd, a unit's
#: ``ProtectSystem=strict`` makes every path so but its ``ReadWritePaths=``).
READ_ONLY = "it is mounted read-only"


def unwritable(fd: int, statvfs: Callable[[int], os.statvfs_result] = os.fstatvfs) -> str | None:
    """Why this process cannot rename or unlink in the directory ``fd`` (a root opened without
    following symlinks): on a read-only mount (``ST_RDONLY`` of the mount, per-mount flags
    included), or not writable to the effective user (``faccessat(AT_EACCESS)``, relative to
    ``fd``: ACLs count, nothing is written). None when it can, or when the kernel will not say."""
    try:
        if statvfs(fd).f_flag & os.ST_RDONLY:
            return READ_ONLY
        if not os.access(".", os.W_OK | os.X_OK, dir_fd=fd, effective_ids=True):
            return "recd's user may not write it (permission denied)"
    except OSError:
        return None
    return None


@contextlib.contextmanager
def read_lease(fd: int) -> Iterator[bool | None]:
    """Hold a read lease on ``fd`` (opened read-only) for the ``with`` block.

    Yields True while held, False when some process has the file open for writing, None when
    the kernel will not say.
    """
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, LEASE_BREAK_SIGNAL)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        yield False if exc.errno == errno.EAGAIN else None
        return
    try:
        yield True
    finally:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)


@dataclass(frozen=True, slots=True)
class ExtMount:
    """An ext mount in mountinfo: its type, its source and whether it says ``data=journal``."""

    fstype: str
    source: str
    data_journal: bool


def read_mountinfo(path: Path, dev: int) -> ExtMount | None:
    """The ext mount of ``dev`` in a mountinfo file; None if there is none or it is unreadable.

    ``data_journal`` reflects the mount options only: a filesystem whose default is data
    journalling (``tune2fs -o journal_data``) does not show it here (``ext_data_journal``).
    """
    want = f"{os.major(dev)}:{os.minor(dev)}"
    try:
        with path.open(encoding="utf-8", errors="surrogateescape") as lines:
            for line in lines:
                fields = line.split()
                if len(fields) < 3 or fields[2] != want or "-" not in fields:
                    continue
                tail = fields[fields.index("-") + 1 :]
                if len(tail) < 3 or tail[0] not in EXT_NAMES:
                    continue
                return ExtMount(tail[0], _unescape(tail[1]), "data=journal" in tail[2].split(","))
    except OSError:
        return None
    return None


def _unescape(field: str) -> str:
    """A mountinfo field as it is: the kernel writes space, tab, newline and backslash octal."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def block_device_name(sysfs: Path, dev: int, source: str) -> str | None:
    """The kernel's name of block device ``dev`` (``loop0``, ``sda1``, ``dm-0``); None if unknown.

    From ``<sysfs>/dev/block/MAJ:MIN/uevent``, else from the mount's source when it is that
    very device (``/dev/mapper/vg-rec`` resolves to ``/dev/dm-0``).
    """
    uevent = sysfs / "dev" / "block" / f"{os.major(dev)}:{os.minor(dev)}" / "uevent"
    try:
        for line in uevent.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition("=")
            if key == "DEVNAME" and value:
                return value
    except OSError:
        pass
    try:
        st = os.stat(source)
    except (OSError, ValueError):
        return None
    if stat.S_ISBLK(st.st_mode) and st.st_rdev == dev:
        return os.path.basename(os.path.realpath(source))
    return None


def ext_data_journal(proc: Path, name: str) -> bool | None:
    """Whether data journalling is in force on ext device ``name``; None when it cannot tell.

    ``<proc>/fs/ext4/<name>/options`` lists every option in force, defaults included, with
    ``data=journal``, ``data=ordered`` or ``data=writeback`` when the filesystem has a
    journal and no ``data=`` at all when it has none (ext2, ext4 without ``has_journal``);
    a filesystem without one is confirmed by the absence of its ``<proc>/fs/jbd2/<name>-*``.
    """
    try:
        options = (proc / "fs" / "ext4" / name / "options").read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError):
        return None
    modes = {o for o in options if o.startswith("data=")}
    if modes == {"data=journal"}:
        return True
    if modes in ({"data=ordered"}, {"data=writeback"}):
        return False
    if modes:
        return None
    try:
        journals = os.listdir(proc / "fs" / "jbd2")
    except OSError:
        return None
    return None if any(j.startswith(f"{name}-") for j in journals) else False


class ExtFilesystems:
    """The ext type and data journalling in force per device, read once per device.

    ``proc`` is the procfs mount (``self/mountinfo``, ``fs/ext4``), ``sysfs`` names the block
    device (``dev/block/MAJ:MIN/uevent``).
    """

    def __init__(self, proc: Path, sysfs: Path) -> None:
        self._proc = proc
        self._sysfs = sysfs
        self._mounts: dict[int, tuple[str, bool | None]] = {}  # st_dev -> facts

    def facts(self, dev: int) -> tuple[str, bool | None]:
        """``(ext2|ext3|ext4, data journalling in force)`` of the filesystem on ``dev``.

        Data journalling is on when the mount says ``data=journal`` or when the filesystem
        default says so (``tune2fs -o journal_data``, which the mount options do not show): the
        options in force are read from ``<proc>/fs/ext4/<device name>/options``. None when
        either cannot be read.
        """
        if dev not in self._mounts:
            mount = read_mountinfo(self._proc / "self" / "mountinfo", dev)
            if mount is None:
                self._mounts[dev] = ("ext4", None)  # statfs cannot tell ext2/3/4 apart
            elif mount.data_journal:
                self._mounts[dev] = (mount.fstype, True)
            else:
                name = block_device_name(self._sysfs, dev, mount.source)
                in_force = None if name is None else ext_data_journal(self._proc, name)
                self._mounts[dev] = (mount.fstype, in_force)
        return self._mounts[dev]
