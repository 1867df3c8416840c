"""Erase files of one local source root so that their data cannot be recovered (SPEC section 4).

``LocalEraser.prepare`` opens the indexed file with ``O_PATH|O_NOFOLLOW`` below a root walked
one directory at a time (``safefs``), so a symlink or a mount anywhere on the way, or at the
name, is refused (every directory and the file itself must have the root's device and mount id:
a bind mount of the root's own filesystem is refused too, before a byte is written) and a FIFO,
socket or device is never opened for I/O. The root itself is opened without following symlinks
and must still be the directory checked at start (``safefs.Root``). It checks the file is the
regular file that was indexed (device, inode, size) and gathers the ``TargetFacts`` that
``recd.core.erasure.decide`` needs: the filesystem type (``fstatfs``), ext data journalling
(the options in force from ``/proc/fs/ext4/<device>/options``, which include a filesystem
default set by ``tune2fs -o journal_data`` that ``/proc/self/mountinfo`` does not show, and the
inode's ``j`` attribute; unknown when either cannot be read), shared extents
(FIEMAP) and whether any process has the file open for writing (a read-lease probe). It changes
nothing.

``LocalEraser.erase`` is the irreversible step. An overwrite re-checks the identity, takes a
write lease on the file (refused while another process has it open), writes every byte in
fixed-size chunks (memory stays flat whatever the file size), flushes, optionally drops the
cache and reads back, truncates, renames the file to the intent's temporary name in the same
directory (never replacing an existing entry), checks the entry renamed is still the inode, and
unlinks it; once another process opens the file meanwhile (the lease is broken) it stops and
leaves the file at its name, partly overwritten. ``sync`` then flushes every directory touched,
once per batch. An unlink re-checks that the name still holds the inode before removing it. Any
failure raises ``EraseError`` with a one-line reason and never reports the erase as done.

Crash recovery: ``locate`` tells whether the indexed inode is at its name, at the temporary name
recorded in the intent, or gone. An erase found at the temporary name is finished by preparing
that name (``prepare(<dir>/<temp_name>, dev, ino, None)``: ``None`` skips the size check, as
the file may already be truncated) and calling ``erase`` with the same ``temp_name``; the rename
is then skipped.

Invariants: no path below the root is resolved by the kernel in one go (only fd-relative steps);
only the inode held open since ``prepare`` is ever written; nothing outside the root, no symlink
target and nothing on another filesystem is touched; every descriptor is closed on every path.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import logging
import os
import re
import signal
import stat
import struct
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

from recd.adapters._closing import Closing
from recd.adapters.local import safefs as _safefs
from recd.core.erasure import Action, Decision, TargetFacts
from recd.core.model import EraseMethod, ErasePattern, Stamps
from recd.errors import os_reason
from recd.ports import (
    Changed,
    EraseError,
    EraseJob,
    EraseOutcome,
    EraseTarget,
    Gone,
    PreparedErase,
    Refused,
)

__all__ = [
    "EraseError",
    "EraseResult",
    "Gone",
    "LocalEraser",
    "Prepared",
    "Refused",
    "filesystem_name",
]

logger = logging.getLogger(__name__)

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
RENAME_NOREPLACE = 1
# A lease break sends the holder SIGIO by default, whose default action kills the process; a
# writer opening the file in the moment the probe holds its lease must not kill the daemon.
LEASE_BREAK_SIGNAL = signal.SIGURG  # default action: ignore

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


class _StatFs(ctypes.Structure):
    # Only f_type is read; it is the first member, a C long, on the 64-bit and 32-bit ABIs
    # recd targets. The tail is generous room for the rest of struct statfs.
    _fields_ = (("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 256))


_libc = ctypes.CDLL(None, use_errno=True)
_libc.fstatfs.argtypes = (ctypes.c_int, ctypes.POINTER(_StatFs))
_libc.fstatfs.restype = ctypes.c_int
_libc.renameat2.argtypes = (
    ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint,
)  # fmt: skip
_libc.renameat2.restype = ctypes.c_int


def _fstatfs_magic(fd: int) -> int:
    buf = _StatFs()
    if _libc.fstatfs(fd, ctypes.byref(buf)) != 0:  # pragma: no cover (fstatfs of an open fd)
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(buf.f_type) & 0xFFFFFFFF


def _rename_noreplace(dir_fd: int, old: str, new: str) -> None:
    """``renameat2(RENAME_NOREPLACE)``: fails with EEXIST instead of replacing ``new``."""
    rc = _libc.renameat2(dir_fd, os.fsencode(old), dir_fd, os.fsencode(new), RENAME_NOREPLACE)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), new)


def filesystem_name(magic: int) -> str:
    """The name of a statfs ``f_type``, or ``unknown-0x...``."""
    return FS_MAGIC.get(magic, f"unknown-{magic:#x}")


@contextlib.contextmanager
def _step(what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise EraseError(f"{what} failed: {os_reason(exc)}") from exc


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), f"file type {stat.S_IFMT(mode):#o}")


def _is_inode(dir_fd: int, name: str, dev: int, ino: int) -> bool:
    """Whether ``name`` in ``dir_fd`` (not followed if a symlink) is the inode ``(dev, ino)``."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def _check_name(name: str) -> None:
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"unsafe temporary name {name!r}")


@dataclass(slots=True)
class EraseResult:
    """What an erase did (``ports.EraseOutcome``).

    Not frozen: the port declares plain attributes, which a frozen dataclass does not satisfy.
    """

    method: EraseMethod
    effective: bool
    ineffective_reason: str | None
    bytes_overwritten: int
    details: Mapping[str, Any] = field(default_factory=dict)  # nothing more for files


@dataclass(frozen=True, slots=True)
class _Handle:
    """The descriptors of a checked file: its directory, and the file itself (``O_PATH``)."""

    dir_fd: int
    name: str
    path_fd: int
    st: os.stat_result


class Prepared(Closing):
    """A file opened (``O_PATH``) and checked for erasure; ``close`` releases its descriptors."""

    __slots__ = ("_closed", "dir_fd", "facts", "name", "path_fd", "relpath", "st")

    def __init__(self, relpath: str, handle: _Handle, facts: TargetFacts) -> None:
        self.relpath = relpath
        self.name = handle.name  # the final component, in dir_fd
        self.dir_fd = handle.dir_fd
        self.path_fd = handle.path_fd
        self.st = handle.st  # as checked by prepare; erase insists nothing changed since
        self.facts = facts
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def details(self) -> Mapping[str, Any]:
        return {}

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self.path_fd)
            os.close(self.dir_fd)


class LocalEraser(Closing):
    """Erases files below one directory source root (``ports.Eraser``).

    ``proc`` is the procfs mount: ``<proc>/self/fd`` reopens the ``O_PATH`` descriptor for I/O,
    ``<proc>/self/mountinfo`` gives the ext type and mount source and ``<proc>/fs/ext4`` the
    options in force. ``sysfs`` names the block device (``<sysfs>/dev/block/MAJ:MIN/uevent``).
    Without procfs, files are reopened with ``openat(O_NOFOLLOW|O_NONBLOCK)`` and the inode
    compared, and ext data journalling counts as unknown (so an ext overwrite is not claimed
    effective).
    """

    def __init__(
        self,
        root: Path,
        *,
        chunk_size: int = 4 * 1024 * 1024,
        proc: Path = Path("/proc"),
        pins: _safefs.RootPins | None = None,
        sysfs: Path = Path("/sys"),
    ) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self.root = root
        self._root = _safefs.Root(root, pins=pins)
        self.chunk_size = chunk_size
        self._proc = proc
        self._sysfs = sysfs
        self._fd_dir = proc / "self" / "fd"
        self._reopen_via_proc = self._fd_dir.is_dir()
        self._mounts: dict[int, tuple[str, bool | None]] = {}  # st_dev -> _ext_facts
        self._lease_warned: set[str] = set()  # why no write lease could be had, said once
        self._dirty: dict[tuple[int, int], int] = {}  # directory (dev, ino) -> fd to fsync

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Release directories not yet synced, without flushing them (nothing was claimed)."""
        dirty, self._dirty = self._dirty, {}
        for fd in dirty.values():
            os.close(fd)

    # -- prepare -----------------------------------------------------------------------------

    def prepare(
        self, relpath: str, dev: int, ino: int, size: int | None, stamps: Stamps | None = None
    ) -> Prepared:
        """Open the indexed file safely and gather the facts ``decide`` needs.

        Raises ``Gone`` when it is no longer there, ``Refused`` when it must not be touched
        (symlink or mount on the path or at the name, not a regular file, another inode, another
        size), ``OSError`` for anything else (e.g. the root cannot be opened). ``size`` None
        skips the size check (recovery of an erase that had already truncated the file).
        Changes nothing.
        """
        dir_fd, name, root = self._open_dir(relpath)
        try:
            path_fd = self._open_path(dir_fd, name)
        except BaseException:
            os.close(dir_fd)
            raise
        try:
            st = os.fstat(path_fd)
            _check_mount(path_fd, root)
            _check_identity(st, root.dev, dev, ino, size, stamps, _birth_time(path_fd, stamps))
            handle = _Handle(dir_fd, name, path_fd, st)
            return Prepared(relpath, handle, self._facts(handle))
        except BaseException:
            os.close(path_fd)
            os.close(dir_fd)
            raise

    def prepare_many(
        self, targets: Sequence[EraseTarget]
    ) -> list[PreparedErase | EraseError | OSError]:
        """``prepare`` each target in turn; a failure takes the target's place in the list."""
        out: list[PreparedErase | EraseError | OSError] = []
        for t in targets:
            try:
                out.append(self.prepare(t.relpath, t.dev, t.ino, t.size, t.stamps))
            except (EraseError, OSError) as exc:
                out.append(exc)
            except Exception as exc:  # one file must never stop the batch
                out.append(_unexpected("prepare", t.relpath, exc))
        return out

    def _open_dir(self, relpath: str) -> tuple[int, str, _safefs.DirId]:
        """Open the directory holding ``relpath``, one checked component at a time (each on
        the root's device and mount id). Returns ``(dir_fd, final name, root identity)``.
        Raises ``RootChanged`` (an ``OSError``) when the root is no longer the directory
        checked at start.
        """
        try:
            parts = _safefs.split_relpath(relpath)
        except ValueError as exc:
            raise Refused(str(exc)) from None
        root_fd, root = self._root.open()
        fd = root_fd
        try:
            for i, part in enumerate(parts[:-1]):
                where = "/".join(parts[: i + 1])
                new_fd = self._open_subdir(fd, part, root, where)
                os.close(fd)
                fd = new_fd
        except BaseException:
            os.close(fd)
            raise
        return fd, parts[-1], root

    @staticmethod
    def _open_subdir(fd: int, part: str, root: _safefs.DirId, where: str) -> int:
        try:
            return _safefs.open_subdir(fd, part, root, where)
        except _safefs.CrossesMount as exc:
            raise Refused(f"{where} {os_reason(exc)}") from None
        except FileNotFoundError:
            raise Gone(f"{where} no longer exists") from None
        except OSError as exc:
            if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
        try:
            mode = os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode
        except FileNotFoundError:  # pragma: no cover (race: removed between open and lstat)
            raise Gone(f"{where} no longer exists") from None
        if stat.S_ISLNK(mode):
            raise Refused(f"{where} is a symbolic link")
        raise Refused(f"{where} is not a directory")

    @staticmethod
    def _open_path(dir_fd: int, name: str) -> int:
        try:
            # O_PATH opens nothing for I/O: a FIFO does not block, a device is not touched,
            # and with O_NOFOLLOW a symlink is opened as itself.
            return os.open(name, _safefs.PATH_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            raise Gone("no longer exists") from None

    def _reopen(self, p: _Handle | Prepared, flags: int) -> int:
        """A descriptor for I/O on exactly the inode ``p`` holds."""
        if self._reopen_via_proc:
            # The magic link leads to the held inode itself; no name is resolved again.
            # O_NONBLOCK: a lease another process holds on the file fails the open (EAGAIN)
            # instead of stalling recd for lease-break-time; on a regular file it does
            # nothing else.
            return os.open(self._fd_dir / str(p.path_fd), flags | os.O_CLOEXEC | os.O_NONBLOCK)
        fd = os.open(
            p.name,
            flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
            dir_fd=p.dir_fd,
        )
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (p.st.st_dev, p.st.st_ino):
            os.close(fd)
            raise Refused("replaced since it was checked")
        return fd

    def _facts(self, p: _Handle) -> TargetFacts:
        fs_type = filesystem_name(_fstatfs_magic(p.path_fd))
        data_journal: bool | None = False
        if fs_type in EXT_NAMES:
            fs_type, data_journal = self._ext_facts(p.st.st_dev)
        try:
            fd = self._reopen(p, os.O_RDONLY)
        except BlockingIOError:
            raise BlockingIOError(errno.EAGAIN, "another process holds a lease on it") from None
        try:
            if data_journal is False and fs_type in EXT_NAMES:
                data_journal = _inode_journals_data(fd)
            writer, reader = _openers(fd)
            return TargetFacts(
                fs_type=fs_type,
                data_journal=data_journal,
                shared_extents=_shared_extents(fd),
                nlink=p.st.st_nlink,
                mtime_ns=p.st.st_mtime_ns,
                open_for_write=writer,
                size=p.st.st_size,
                open_by_other=reader,
            )
        finally:
            os.close(fd)

    def _ext_facts(self, dev: int) -> tuple[str, bool | None]:
        """``(ext2|ext3|ext4, data journalling in force)`` of the filesystem on ``dev``, cached.

        Data journalling is on when the mount says ``data=journal`` or when the filesystem
        default says so (``tune2fs -o journal_data``, which the mount options do not show): the
        options in force are read from ``<proc>/fs/ext4/<device name>/options``. None when
        either cannot be read.
        """
        if dev not in self._mounts:
            mount = _read_mountinfo(self._proc / "self" / "mountinfo", dev)
            if mount is None:
                self._mounts[dev] = ("ext4", None)  # statfs cannot tell ext2/3/4 apart
            elif mount.data_journal:
                self._mounts[dev] = (mount.fstype, True)
            else:
                name = _block_device_name(self._sysfs, dev, mount.source)
                in_force = None if name is None else _ext_data_journal(self._proc, name)
                self._mounts[dev] = (mount.fstype, in_force)
        return self._mounts[dev]

    # -- erase -------------------------------------------------------------------------------

    def erase(
        self,
        prepared: PreparedErase,
        decision: Decision,
        *,
        pattern: ErasePattern,
        verify: bool,
        temp_name: str,
    ) -> EraseResult:
        """The irreversible step, as ``decision`` says; never closes ``prepared``.

        Raises ``EraseError`` if it did not complete: ``Gone`` or ``Refused`` when the checks
        before writing found the file removed, linked, changed or replaced (nothing written),
        or when the rename moved another file (moved back); a plain ``EraseError`` when a step
        failed part-way (the file may be partly overwritten; it is never reported erased).
        ``ValueError`` for a caller's mistake (not an ERASE decision, a foreign ``prepared``,
        an unsafe ``temp_name``).
        """
        if not isinstance(prepared, Prepared) or prepared.closed:
            raise ValueError("erase needs an open Prepared from LocalEraser.prepare")
        if decision.action is not Action.ERASE:
            raise ValueError(f"decision is {decision.action}, not erase")
        _check_name(temp_name)
        if decision.method is EraseMethod.UNLINK:
            self._recheck(prepared)
            with _step("unlink"):
                os.unlink(prepared.name, dir_fd=prepared.dir_fd)
            self._touched(prepared.dir_fd)
            return EraseResult(EraseMethod.UNLINK, False, decision.reason, 0)
        if decision.method is not EraseMethod.OVERWRITE:
            raise ValueError(f"erase method {decision.method} does not apply to local files")
        written = self._overwrite(prepared, pattern, verify, temp_name)
        self._touched(prepared.dir_fd)
        reason = None if decision.effective else decision.reason
        return EraseResult(EraseMethod.OVERWRITE, decision.effective, reason, written)

    def erase_many(
        self, jobs: Sequence[EraseJob], *, pattern: ErasePattern, verify: bool
    ) -> list[EraseOutcome | EraseError]:
        """``erase`` each job in turn (files gain nothing from batching but the directory
        flush, which ``sync`` does once); a failure takes the job's place in the list."""
        out: list[EraseOutcome | EraseError] = []
        for job in jobs:
            try:
                out.append(
                    self.erase(
                        job.prepared, job.decision, pattern=pattern, verify=verify,
                        temp_name=job.temp_name,
                    )
                )  # fmt: skip
            except EraseError as exc:
                out.append(exc)
            except OSError as exc:
                out.append(EraseError(os_reason(exc)))
            except Exception as exc:  # one file must never stop the batch
                relpath = getattr(job.prepared, "relpath", "?")
                out.append(_unexpected("erase", relpath, exc))
        return out

    def digest(self, prepared: PreparedErase) -> str:
        """SHA-256 (hex) of the content of exactly the checked inode, read before erasing it
        (for a deletion certificate). ``erase`` then insists the file did not change since."""
        if not isinstance(prepared, Prepared) or prepared.closed:
            raise ValueError("digest needs an open Prepared from LocalEraser.prepare")
        p = prepared
        self._recheck(p)
        try:
            fd = self._reopen(p, os.O_RDONLY)
        except OSError as exc:
            raise EraseError(f"cannot open for reading: {os_reason(exc)}") from exc
        with os.fdopen(fd, "rb") as f, _step("read"):
            return hashlib.file_digest(f, "sha256").hexdigest()

    @staticmethod
    def _id(p: Prepared) -> tuple[int, int]:
        return p.st.st_dev, p.st.st_ino

    def _recheck(self, p: Prepared) -> None:
        """Nothing about the file changed since ``prepare``; its name still leads to it."""
        st = os.fstat(p.path_fd)
        if st.st_nlink == 0:
            raise Gone("removed since it was checked")
        if st.st_nlink > 1:
            raise Refused(f"has {st.st_nlink} hard links")
        if (st.st_size, st.st_mtime_ns) != (p.st.st_size, p.st.st_mtime_ns):
            raise Refused("changed since it was checked")
        if not _is_inode(p.dir_fd, p.name, *self._id(p)):
            raise Refused("replaced since it was checked")

    def _overwrite(self, p: Prepared, pattern: ErasePattern, verify: bool, temp_name: str) -> int:
        """Overwrite, truncate, rename and unlink ``p``, all under a write lease.

        The lease (``_WriteLease``) is taken on the descriptor written through before the first
        byte: the kernel refuses it while any other process has the file open, and breaks it
        when one opens it (making that open wait until the lease is released). It is checked
        between chunks and before the rename and the unlink: once broken, the erase stops, the
        lease is released at once and ``EraseError`` says what was already done to the file,
        which stays in place for a later sweep.
        """
        self._recheck(p)
        try:
            fd = self._reopen(p, os.O_RDWR)
        except OSError as exc:
            raise EraseError(f"cannot open for writing: {os_reason(exc)}") from exc
        try:
            with _WriteLease(fd) as lease:
                if lease.unavailable is not None:
                    self._no_lease(lease.unavailable)
                written = self._overwrite_under(p, fd, lease, pattern, verify, temp_name)
        except BaseException:
            # The file stays. Its modification time is recd's writing, not the recording's:
            # put it back, or the next scan would take the file as changed and, where `started`
            # comes from the mtime, give it a deadline a whole retention period later.
            with contextlib.suppress(OSError):
                os.utime(fd, ns=(p.st.st_atime_ns, p.st.st_mtime_ns))
            raise
        finally:
            os.close(fd)
        return written

    def _overwrite_under(
        self,
        p: Prepared,
        fd: int,
        lease: _WriteLease,
        pattern: ErasePattern,
        verify: bool,
        temp_name: str,
    ) -> int:
        """The overwrite, truncate, rename and unlink, ``lease`` held (``_overwrite``); returns
        the bytes overwritten (the file's data: holes hold none and are not written)."""
        size = p.st.st_size

        def check(done: int) -> None:
            written = f"{done} of {size} bytes overwritten" if done else "nothing written"
            lease.check(written)

        chunks, digests = _overwrite_fd(
            fd, size, pattern, self.chunk_size, keep_digests=verify, check=check
        )
        with _step("flush"):
            os.fdatasync(fd)
            grown = os.fstat(fd).st_size
        if grown != size:  # pragma: no cover (race: a writer appended during the overwrite)
            raise EraseError(f"grew during erasure (size {grown}, overwrote {size})")
        lease.check(f"all {size} bytes overwritten")
        if verify:
            _verify(fd, pattern, chunks, digests)
            lease.check(f"all {size} bytes overwritten")
        with _step("truncate"):
            os.ftruncate(fd, 0)
            os.fsync(fd)
        self._rename_and_unlink(p, temp_name, lease)
        return sum(n for _, n in chunks)

    def _no_lease(self, why: str) -> None:
        """Say once per reason that the check for openers during an erase is not possible."""
        if why not in self._lease_warned:
            self._lease_warned.add(why)
            logger.warning(
                "erasing below %s without a lease (%s): a process that opens a file while it "
                "is being erased is not noticed; erase.settle and the writer check before "
                "each erase still apply",
                self.root,
                why,
            )

    def _rename_and_unlink(self, p: Prepared, temp_name: str, lease: _WriteLease) -> None:
        """Rename to ``temp_name`` (unless already there), check it is ours, unlink it; if the
        lease is broken on the way, the file is put back at its name and left there."""
        done = "overwritten and truncated"
        if p.name != temp_name:
            lease.check(done)
            with _step("rename"):
                _rename_noreplace(p.dir_fd, p.name, temp_name)
            _check_renamed(p.dir_fd, p.name, temp_name, *self._id(p))
            if lease.broken():
                _put_back(p.dir_fd, temp_name, p.name, lease.opened(done))
        lease.check(done)
        with _step("unlink"):
            os.unlink(temp_name, dir_fd=p.dir_fd)

    def _touched(self, dir_fd: int) -> None:
        st = os.fstat(dir_fd)
        key = (st.st_dev, st.st_ino)
        if key not in self._dirty:
            self._dirty[key] = os.dup(dir_fd)

    # -- sync, locate ------------------------------------------------------------------------

    def sync(self) -> None:
        """fsync every directory changed since the last call; raises the first ``OSError``
        after trying them all (every descriptor is released either way)."""
        dirty, self._dirty = self._dirty, {}
        failure: OSError | None = None
        for fd in dirty.values():
            try:
                os.fsync(fd)
            except OSError as exc:
                failure = failure or exc
            finally:
                os.close(fd)
        if failure is not None:
            raise failure

    def locate(
        self, relpath: str, temp_name: str, dev: int, ino: int
    ) -> Literal["original", "temp", "gone"]:
        """Where an interrupted erase left the inode ``(dev, ino)``: still at ``relpath``, at
        ``temp_name`` in the same directory, or neither (the erase completed).

        Raises ``Refused`` when the directory can no longer be reached safely (a symlink or
        mount now on the path) and ``OSError`` when the root cannot be opened: in both cases
        the inode may still exist and must not be reported gone.
        """
        _check_name(temp_name)
        try:
            dir_fd, name, _ = self._open_dir(relpath)
        except Gone:
            return "gone"
        try:
            if _is_inode(dir_fd, name, dev, ino):
                return "original"
            if _is_inode(dir_fd, temp_name, dev, ino):
                return "temp"
            return "gone"
        finally:
            os.close(dir_fd)


def _unexpected(step: str, relpath: str, exc: Exception) -> EraseError:
    """A failure no check foresaw (a bug, not the file): logged with its traceback, and the
    file's erase fails alone with a one-line reason."""
    logger.error("%s of %s failed unexpectedly", step, relpath, exc_info=exc)
    return EraseError(f"{step} failed unexpectedly: {type(exc).__name__}: {exc}")


def _check_renamed(dir_fd: int, name: str, temp_name: str, dev: int, ino: int) -> None:
    """The rename moved our inode; if another file had taken the name, move it back."""
    if _is_inode(dir_fd, temp_name, dev, ino):
        return
    try:
        _rename_noreplace(dir_fd, temp_name, name)
    except OSError as exc:  # pragma: no cover (race: the name was taken yet again)
        raise EraseError(
            f"replaced during erasure; the other file is left at {temp_name}: {os_reason(exc)}"
        ) from exc
    raise Refused("replaced during erasure; the other file was left in place")


def _birth_time(path_fd: int, stamps: Stamps | None) -> int | None:
    """The held file's birth time, when it is to be compared and the filesystem keeps one."""
    if stamps is None or stamps.btime_ns is None:
        return None
    sx = _safefs.statx(path_fd)
    return None if sx is None else sx.btime_ns


def _check_mount(path_fd: int, root: _safefs.DirId) -> None:
    """The file held is on the root's mount: not a file bind-mounted over the name."""
    try:
        _safefs.check_mount(path_fd, root, "")
    except _safefs.CrossesMount as exc:
        raise Refused(os_reason(exc)) from None


def _check_identity(
    st: os.stat_result,
    root_dev: int,
    dev: int,
    ino: int,
    size: int | None,
    stamps: Stamps | None = None,
    btime_ns: int | None = None,
) -> None:
    """The file is the regular file that was indexed, on the root's filesystem, as it was
    indexed: same size and (``stamps``) mtime, ctime and, where both are known, birth time
    (``btime_ns``: the open file's, when the eraser reads it). A difference raises
    ``Changed``: written to since, or a new file that reused the inode number."""
    if stat.S_ISLNK(st.st_mode):
        raise Refused("is a symbolic link")
    if not stat.S_ISREG(st.st_mode):
        raise Refused(f"is not a regular file ({_kind(st.st_mode)})")
    if st.st_dev != root_dev:
        raise Refused("is on another filesystem (a mount below the root)")
    if (st.st_dev, st.st_ino) != (dev, ino):
        raise Refused("replaced since it was indexed")
    if size is not None and st.st_size != size:
        raise Changed(f"changed since it was indexed (size {st.st_size}, indexed {size})")
    if stamps is None:
        return
    born = getattr(st, "st_birthtime_ns", None) if btime_ns is None else btime_ns
    for what, now, indexed in (
        ("mtime", st.st_mtime_ns, stamps.mtime_ns),
        ("ctime", st.st_ctime_ns, stamps.ctime_ns),
        ("birth time", born, stamps.btime_ns),
    ):
        if now is not None and indexed is not None and now != indexed:
            raise Changed(
                f"changed since it was indexed ({what} {_ns_text(now)}, indexed "
                f"{_ns_text(indexed)}): written to, or another file that reused its inode number"
            )


def _ns_text(ns: int) -> str:
    """Nanoseconds since the epoch as UTC text to the nanosecond, for a one-line reason."""
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def _data_chunks(fd: int, size: int, chunk: int) -> Iterator[tuple[int, int]]:
    """``(offset, length)`` of at most ``chunk`` bytes covering every byte of ``[0, size)``
    that holds data, in order: holes (``SEEK_HOLE``) are skipped, since they hold nothing to
    erase and writing them would allocate blocks (a sparse terabyte named .wav would fill the
    filesystem). Where the filesystem cannot tell, the whole file is data."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data after offset
                return
            start, end = offset, size  # SEEK_DATA not supported: all of it
        while start < end:
            n = min(chunk, end - start)
            yield start, n
            start += n
        offset = max(end, offset + 1)


def _overwrite_fd(
    fd: int,
    size: int,
    pattern: ErasePattern,
    chunk: int,
    *,
    keep_digests: bool,
    check: Callable[[int], None] = lambda done: None,
) -> tuple[list[tuple[int, int]], list[bytes]]:
    """Write ``pattern`` over every byte of ``[0, size)`` that holds data (``_data_chunks``).

    Returns the chunks written and, for random data with ``keep_digests``, their digests.
    ``check(file offset reached)`` is called before each chunk and may raise to stop."""
    chunks = list(_data_chunks(fd, size, chunk))
    zeros = memoryview(bytes(min(chunk, size)))
    digests: list[bytes] = []
    for offset, n in chunks:
        check(offset)
        if pattern is ErasePattern.RANDOM:
            data = memoryview(os.urandom(n))
            if keep_digests:
                digests.append(hashlib.blake2b(data, digest_size=16).digest())
        else:
            data = zeros[:n]
        _pwrite_all(fd, data, offset, size)
    return chunks, digests


def _pwrite_all(fd: int, data: memoryview, offset: int, size: int) -> None:
    """pwrite all of ``data`` at ``offset``, continuing after short writes."""
    done = 0
    while done < len(data):
        try:
            n = os.pwrite(fd, data[done:], offset + done)
        except OSError as exc:
            raise EraseError(
                f"write failed: {os_reason(exc)} after {offset + done} of {size} bytes"
            ) from exc
        if n == 0:  # pragma: no cover (pwrite of a regular file returns 0 only for 0 bytes)
            raise EraseError(f"write failed: no progress after {offset + done} of {size} bytes")
        done += n


def _verify(
    fd: int, pattern: ErasePattern, chunks: Sequence[tuple[int, int]], digests: list[bytes]
) -> None:
    """Read the overwritten ``chunks`` back from the device (cache dropped) and compare."""
    with _step("verify"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    for index, (offset, n) in enumerate(chunks):
        with _step("verify read"):
            data = os.pread(fd, n, offset)
        if pattern is ErasePattern.RANDOM:
            bad = _digest_mismatch(data, n, digests[index])
        else:
            bad = _first_nonzero(data, n)
        if bad is not None:
            raise EraseError(f"verify failed at offset {offset + bad}")


def _digest_mismatch(data: bytes, n: int, digest: bytes) -> int | None:
    """0 when a chunk of random data read back differs (a digest cannot say where)."""
    if len(data) == n and hashlib.blake2b(data, digest_size=16).digest() == digest:
        return None
    return 0


def _first_nonzero(data: bytes, n: int) -> int | None:
    """Where a chunk of zeros read back first differs (a short read differs at its end)."""
    rest = data.lstrip(b"\0")
    if rest:
        return len(data) - len(rest)
    return None if len(data) == n else len(data)


def _inode_journals_data(fd: int) -> bool | None:
    """Whether the inode has the ext ``j`` attribute (its data goes through the journal)."""
    buf = bytearray(8)
    try:
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf, True)
    except OSError:  # pragma: no cover (ext always answers FS_IOC_GETFLAGS)
        return None
    # The kernel writes an int, whatever the ioctl number says.
    return bool(int.from_bytes(buf[:4], sys.byteorder) & FS_JOURNAL_DATA_FL)


def _shared_extents(fd: int) -> bool | None:
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
    with _read_lease(fd) as held:
        return None if held is None else not held


def _openers(fd: int) -> tuple[bool | None, bool | None]:
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


@contextlib.contextmanager
def _read_lease(fd: int) -> Iterator[bool | None]:
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
class _ExtMount:
    """An ext mount in mountinfo: its type, its source and whether it says ``data=journal``."""

    fstype: str
    source: str
    data_journal: bool


class _WriteLease(Closing):
    """A write lease on ``fd`` (opened ``O_RDWR``), held until ``close``.

    Taking it fails with ``Refused`` while any other process has the file open (the kernel
    grants a write lease only to the sole opener). Without the right (not the owner and no
    CAP_LEASE: EACCES) or lease support (EINVAL), ``unavailable`` says why and ``check``
    never fails. Once another process opens the file, the kernel breaks the lease: it
    signals ``LEASE_BREAK_SIGNAL`` (ignored, so the daemon cannot be killed by it), makes the
    opener wait (``/proc/sys/fs/lease-break-time``) and ``F_GETLEASE`` no longer says
    ``F_WRLCK``; ``check`` then raises ``EraseError``. The descriptor must be the only one
    this process opens on the file meanwhile: an open by recd itself breaks the lease too.
    """

    __slots__ = ("_fd", "_held", "unavailable")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._held = False
        self.unavailable: str | None = None
        try:
            fcntl.fcntl(fd, fcntl.F_SETSIG, LEASE_BREAK_SIGNAL)
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                raise Refused("open by another process; left in place, nothing written") from None
            self.unavailable = os_reason(exc)
            return
        self._held = True

    @property
    def closed(self) -> bool:
        return not self._held

    def broken(self) -> bool:
        """Whether another process opened the file since the lease was taken."""
        return self._held and fcntl.fcntl(self._fd, fcntl.F_GETLEASE) != fcntl.F_WRLCK

    def opened(self, done: str) -> EraseError:
        """The error for a lease broken when ``done`` had been done to the file."""
        self.close()  # at once: the opener waits until then
        return EraseError(f"opened by another process during erasure; left in place, {done}")

    def check(self, done: str) -> None:
        """Raise ``EraseError`` (releasing the lease) if another process opened the file."""
        if self.broken():
            raise self.opened(done)

    def close(self) -> None:
        if self._held:
            self._held = False
            with contextlib.suppress(OSError):  # released anyway when the descriptor closes
                fcntl.fcntl(self._fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)


def _put_back(dir_fd: int, temp_name: str, name: str, error: EraseError) -> NoReturn:
    """Rename ``temp_name`` back to ``name`` and raise ``error`` (saying where it was left)."""
    try:
        _rename_noreplace(dir_fd, temp_name, name)
    except OSError as exc:  # pragma: no cover (race: the name was taken meanwhile)
        why = str(error).replace("left in place", f"left at {temp_name}")
        raise EraseError(f"{why}: {os_reason(exc)}") from exc
    raise error


def _read_mountinfo(path: Path, dev: int) -> _ExtMount | None:
    """The ext mount of ``dev`` in a mountinfo file; None if there is none or it is unreadable.

    ``data_journal`` reflects the mount options only: a filesystem whose default is data
    journalling (``tune2fs -o journal_data``) does not show it here (``_ext_data_journal``).
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
                return _ExtMount(tail[0], _unescape(tail[1]), "data=journal" in tail[2].split(","))
    except OSError:
        return None
    return None


def _unescape(field: str) -> str:
    """A mountinfo field as it is: the kernel writes space, tab, newline and backslash octal."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def _block_device_name(sysfs: Path, dev: int, source: str) -> str | None:
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


def _ext_data_journal(proc: Path, name: str) -> bool | None:
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
