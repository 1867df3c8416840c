"""fd-relative path primitives shared by the directory source and the local eraser.

recd runs privileged in directories other users can write to. Every path below a source root is
opened one component at a time relative to the parent's descriptor, with ``O_NOFOLLOW``, and each
directory is checked to be on the root's mount (same device and same mount id: a bind mount of
the root's own filesystem has the same device but its own mount id), so a symlink or a mount
planted anywhere on the way can never lead outside the root.

The root itself (``Root``) is resolved once, when recd starts or reloads (an operator's root may
be a symlink, e.g. /var/spool/asterisk -> /data/asterisk), and from then on opened from "/" one
component at a time without following any symlink, and checked to be the very directory (device,
inode, mount id) seen then: a root swapped for a symlink, renamed away and replaced, or mounted
over is refused (``RootChanged``).

Mount ids come from ``statx(STATX_MNT_ID)`` (glibc, through ctypes: Python 3.11 has no
``os.statx``), or ``/proc/self/fdinfo`` on kernels without it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from recd.errors import os_reason

logger = logging.getLogger(__name__)

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_WALK_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
STATX_BASIC_STATS = 0x7FF
STATX_BTIME = 0x800
STATX_MNT_ID = 0x1000
# struct statx up to stx_mnt_id (linux/stat.h): mask, blksize, attributes, nlink, uid, gid,
# mode, ino, size, blocks, attributes_mask, atime/btime/ctime/mtime (sec, nsec), rdev, dev, mnt_id
_STATX = struct.Struct("=IIQIIIH2xQQQQ" + "qI4x" * 4 + "IIIIQ")
_STATX_BUF = 256  # the kernel's struct statx


class CrossesMount(OSError):
    """A directory or file below the root is on another filesystem or another mount."""

    def __init__(self, relpath: str, why: str = "another filesystem") -> None:
        super().__init__(errno.EXDEV, f"is on {why} (a mount below the root)", relpath)


class RootChanged(OSError):
    """The source root is no longer the directory recd resolved and checked at start/reload."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(
            errno.ESTALE,
            f"{why}; nothing is scanned or erased in this source until the directory is put "
            "back (or recd is restarted, if it was moved on purpose)",
            path,
        )


@dataclass(frozen=True, slots=True)
class Statx:
    """What recd reads of ``statx``: ``mnt_id``/``btime_ns`` None when not reported."""

    mode: int
    dev: int
    ino: int
    mnt_id: int | None
    btime_ns: int | None


@dataclass(frozen=True, slots=True)
class DirId:
    """The identity of a directory: device, inode and mount id (None if the kernel won't say)."""

    dev: int
    ino: int
    mnt_id: int | None

    def same_mount(self, other: DirId) -> bool:
        if self.dev != other.dev:
            return False
        return self.mnt_id is None or other.mnt_id is None or self.mnt_id == other.mnt_id


_libc = ctypes.CDLL(None, use_errno=True)
_statx = getattr(_libc, "statx", None)
if _statx is not None:
    _statx.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p)
    _statx.restype = ctypes.c_int


def statx(dir_fd: int, name: str = "") -> Statx | None:
    """``statx`` of ``name`` in ``dir_fd`` (not followed if a symlink), or of ``dir_fd`` itself
    when ``name`` is empty; None where glibc has no ``statx``. Raises ``OSError``."""
    if _statx is None:  # pragma: no cover (glibc before 2.28)
        return None
    buf = ctypes.create_string_buffer(_STATX_BUF)
    flags = AT_SYMLINK_NOFOLLOW | (0 if name else AT_EMPTY_PATH)
    mask = STATX_BASIC_STATS | STATX_BTIME | STATX_MNT_ID
    if _statx(dir_fd, os.fsencode(name), flags, mask, buf) != 0:
        err = ctypes.get_errno()
        if err == errno.ENOSYS:  # pragma: no cover (kernel before 4.11, or a seccomp filter)
            return None
        raise OSError(err, os.strerror(err), name or None)
    f = _STATX.unpack_from(buf)
    got = f[0]
    btime = f[13] * 1_000_000_000 + f[14] if got & STATX_BTIME else None
    return Statx(
        mode=f[6],
        dev=os.makedev(f[21], f[22]),
        ino=f[7],
        mnt_id=f[23] if got & STATX_MNT_ID else None,
        btime_ns=btime,
    )


def _fdinfo_mnt_id(fd: int) -> int | None:
    """The ``mnt_id`` line of ``/proc/self/fdinfo/<fd>`` (Linux 3.15+), or None."""
    try:
        with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as f:
            for line in f:
                if line.startswith("mnt_id:"):
                    return int(line.removeprefix("mnt_id:"))
    except (OSError, ValueError):
        return None
    return None


def mount_id(fd: int) -> int | None:
    """The mount id of the inode ``fd`` holds (``statx``, else fdinfo); None if unknown."""
    sx = statx(fd)
    if sx is not None and sx.mnt_id is not None:
        return sx.mnt_id
    return _fdinfo_mnt_id(fd)  # pragma: no cover (kernels before 5.8)


def dir_id(fd: int) -> DirId:
    st = os.fstat(fd)
    return DirId(st.st_dev, st.st_ino, mount_id(fd))


def split_relpath(relpath: str) -> list[str]:
    """The components of a '/'-separated path relative to a root; refuses any way out of it."""
    parts = relpath.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise ValueError(f"unsafe relative path {relpath!r}")
    return parts


class RootPins:
    """What one run of recd (a daemon's life, one ``--once``) knows of its source roots.

    ``resolved``: what each configured root path resolved to when the run first met it; a
    reload keeps it, so a symlink an attacker puts in place later is never resolved, even by a
    reload. ``pinned``: the identity of each resolved root, shared by the scanner and the eraser
    of a root, so both check the same directory even when the first open is a late one.
    ``alerted``: the last refusal logged for each resolved root (``Root.open``).
    ``leaseless``: the resolved roots whose eraser said it can take no lease (once a run).
    """

    def __init__(self) -> None:
        self.resolved: dict[str, str] = {}
        self.pinned: dict[str, DirId] = {}
        self.alerted: dict[str, str] = {}
        self.leaseless: set[str] = set()


class Root:
    """A source root: resolved once, then opened without following symlinks and pinned.

    ``path`` is the operator's (it may be or contain a symlink); ``resolved`` its symlink-free
    form, computed the first time the run (``pins``) meets the path. The identity (``DirId``) is
    pinned by the first successful open, at start or later if the root does not exist yet. Both
    last as long as ``pins``: the daemon keeps one for its life, so a reload re-reads the config
    but neither resolves nor pins a known root again (what the root is now may be an attacker's
    swap); a root that was moved on purpose takes a restart. Without ``pins`` the root has a
    registry of its own.
    """

    def __init__(
        self, path: Path | str, *, name: str | None = None, pins: RootPins | None = None
    ) -> None:
        self.path = str(path)
        self._pins = pins = RootPins() if pins is None else pins
        known = self.path in pins.resolved
        self.resolved = pins.resolved.setdefault(self.path, os.path.realpath(self.path))
        if not known and name is not None and self.resolved != os.path.abspath(self.path):
            logger.info(
                "source %s: root %s resolves to %s; recd uses %s and follows no symlink there",
                name,
                self.path,
                self.resolved,
                self.resolved,
            )
        with contextlib.suppress(OSError):
            os.close(self.open()[0])

    @property
    def pinned(self) -> DirId | None:
        return self._pins.pinned.get(self.resolved)

    def open(self) -> tuple[int, DirId]:
        """Open the root for reading; returns ``(fd, identity)``. Raises ``RootChanged`` when a
        symlink is now on the resolved path or the directory is not the one pinned (logged as
        an error once per change, for the scanner and the eraser of the root together), else
        ``OSError`` (e.g. ``ENOENT`` while it is missing)."""
        try:
            fd, ident = self._open_checked()
        except RootChanged as exc:
            alerted = self._pins.alerted
            reason = os_reason(exc)
            if alerted.get(self.resolved) != reason:
                alerted[self.resolved] = reason
                logger.error("source root %s refused: %s", self.path, reason)
            raise
        if self._pins.alerted.pop(self.resolved, None) is not None:
            logger.warning("source root %s is the directory checked at start again", self.path)
        return fd, ident

    def _open_checked(self) -> tuple[int, DirId]:
        fd = self._open_resolved()
        try:
            ident = dir_id(fd)
            pinned = self._pins.pinned.setdefault(self.resolved, ident)
            if ident != pinned:
                raise RootChanged(
                    self.path,
                    f"{self.resolved} is no longer the directory recd checked at start "
                    f"({_what_changed(pinned, ident)}: it was replaced, renamed or mounted over)",
                )
        except BaseException:
            os.close(fd)
            raise
        return fd, ident

    def _open_resolved(self) -> int:
        fd = os.open("/", _WALK_FLAGS)
        walked = ""
        try:
            for part in self.resolved.split("/"):
                if not part:
                    continue
                walked += "/" + part
                try:
                    new_fd = os.open(part, _WALK_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                        raise self._not_dir(fd, part, walked) from None
                    raise OSError(exc.errno, exc.strerror, walked) from None
                os.close(fd)
                fd = new_fd
            read_fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
        finally:
            os.close(fd)
        return read_fd

    def _not_dir(self, dir_fd: int, name: str, walked: str) -> OSError:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:  # pragma: no cover (race: removed again)
            return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), walked)
        if stat.S_ISLNK(st.st_mode):
            try:
                target = f" to {os.readlink(name, dir_fd=dir_fd)!r}"
            except OSError:  # pragma: no cover (race: removed again)
                target = ""
            what = f"{walked} is now a symbolic link{target}, which recd does not follow"
        else:
            what = f"{walked} is no longer a directory"
        return RootChanged(self.path, what)


def _what_changed(was: DirId, now: DirId) -> str:
    if was.dev != now.dev:
        return "another filesystem"
    if was.mnt_id != now.mnt_id:
        return "another mount"
    return "another inode"


def open_subdir(parent_fd: int, name: str, root: DirId, relpath: str) -> int:
    """Open directory ``name`` in ``parent_fd`` without following a symlink or leaving the
    root's mount (``CrossesMount``)."""
    fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    try:
        check_mount(fd, root, relpath)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_mount(fd: int, root: DirId, relpath: str) -> None:
    """Raise ``CrossesMount`` unless what ``fd`` holds is on the root's device and mount."""
    sx = statx(fd)
    if sx is None:  # pragma: no cover (glibc before 2.28)
        st = os.fstat(fd)
        sx = Statx(st.st_mode, st.st_dev, st.st_ino, _fdinfo_mnt_id(fd), None)
    if sx.dev != root.dev:
        raise CrossesMount(relpath)
    mnt_id = sx.mnt_id if sx.mnt_id is not None else _fdinfo_mnt_id(fd)
    if root.mnt_id is not None and mnt_id is not None and mnt_id != root.mnt_id:
        raise CrossesMount(relpath, "another mount of the same filesystem")


def open_parent(root_fd: int, root: DirId, relpath: str) -> tuple[int, str]:
    """Open the directory holding ``relpath``; returns ``(dir_fd, final name)``.

    The caller closes ``dir_fd``. Raises ``OSError`` (``ELOOP``/``ENOTDIR`` for a symlink on the
    way, ``ENOENT`` when gone) or ``CrossesMount``.
    """
    parts = split_relpath(relpath)
    fd = os.dup(root_fd)
    try:
        walked: list[str] = []
        for part in parts[:-1]:
            walked.append(part)
            new_fd = open_subdir(fd, part, root, "/".join(walked))
            os.close(fd)
            fd = new_fd
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


def _unescape(field: str) -> str:
    """A mountinfo path field: ``\\040`` (space), ``\\011``, ``\\012``, ``\\134`` decoded."""
    if "\\" not in field:
        return field
    out = bytearray()
    raw = os.fsencode(field)
    i = 0
    while i < len(raw):
        digits = raw[i + 1 : i + 4]
        if raw[i] == 0x5C and len(digits) == 3 and digits.isdigit():
            out.append(int(digits, 8) & 0xFF)
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return os.fsdecode(bytes(out))


def mounts_below(root: str, mountinfo: Path = Path("/proc/self/mountinfo")) -> frozenset[str]:
    """The mount points strictly below the directory ``root`` (symlink-free, absolute), as
    paths relative to it, from ``mountinfo`` read once; empty if it cannot be read."""
    prefix = root.rstrip("/") + "/"
    found: set[str] = set()
    try:
        with mountinfo.open(encoding="utf-8", errors="surrogateescape") as lines:
            for line in lines:
                fields = line.split(" ", 5)
                if len(fields) < 5:
                    continue
                point = _unescape(fields[4])
                if point.startswith(prefix) and len(point) > len(prefix):
                    found.add(point[len(prefix) :])
    except OSError:
        return frozenset()
    return frozenset(found)
