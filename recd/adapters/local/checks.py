"""Open a file to erase safely and check it is the one indexed, unchanged (SPEC section 4).

``open_dir`` walks from the source root to the file's directory one component at a time
(``safefs``): a symlink, a mount or a non-directory anywhere on the way is ``Refused``, a
missing component ``Gone``. ``open_path`` opens the final name with ``O_PATH|O_NOFOLLOW``, so a
FIFO, socket or device is never opened for I/O and a symlink is held as itself; ``reopen`` then
gives a descriptor for I/O on exactly the inode held. ``check_identity`` and ``check_mount`` say
whether the held inode is the regular file indexed (device, inode, size, times) on the root's
mount; ``recheck`` whether nothing changed since and the name still leads to it.

Invariants: no path below the root is resolved by the kernel in one go (only fd-relative
steps); every check only reads; a descriptor opened here is closed on every failure path.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from recd.adapters._closing import Closing
from recd.adapters.local import safefs
from recd.core.model import Stamps
from recd.ports.eraser import Changed, Gone, Refused


class Held(Protocol):
    """A checked file's descriptors: its directory and the file itself (``O_PATH``)."""

    @property
    def dir_fd(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def path_fd(self) -> int: ...

    @property
    def st(self) -> os.stat_result: ...


_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), f"file type {stat.S_IFMT(mode):#o}")


def is_inode(dir_fd: int, name: str, dev: int, ino: int) -> bool:
    """Whether ``name`` in ``dir_fd`` (not followed if a symlink) is the inode ``(dev, ino)``."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def check_name(name: str) -> None:
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"unsafe temporary name {name!r}")


@dataclass(frozen=True, slots=True)
class Handle:
    """The descriptors of a checked file: its directory, and the file itself (``O_PATH``)."""

    dir_fd: int
    name: str
    path_fd: int
    st: os.stat_result


def birth_time(path_fd: int, stamps: Stamps | None) -> int | None:
    """The held file's birth time, when it is to be compared and the filesystem keeps one."""
    if stamps is None or stamps.btime_ns is None:
        return None
    sx = safefs.statx(path_fd)
    return None if sx is None else sx.btime_ns


def check_mount(path_fd: int, root: safefs.DirId) -> None:
    """The file held is on the root's mount: not a file bind-mounted over the name."""
    try:
        safefs.check_mount(path_fd, root, "")
    except safefs.CrossesMount as exc:
        raise Refused(str(exc.strerror)) from None


def check_identity(
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


def open_dir(root_dir: safefs.Root, relpath: str) -> tuple[int, str, safefs.DirId]:
    """Open the directory holding ``relpath``, one checked component at a time (each on
    the root's device and mount id). Returns ``(dir_fd, final name, root identity)``.
    Raises ``RootChanged`` (an ``OSError``) when the root is no longer the directory
    checked at start.
    """
    try:
        parts = safefs.split_relpath(relpath)
    except ValueError as exc:
        raise Refused(str(exc)) from None
    root_fd, root = root_dir.open()
    fd = root_fd
    try:
        for i, part in enumerate(parts[:-1]):
            where = "/".join(parts[: i + 1])
            new_fd = _open_subdir(fd, part, root, where)
            os.close(fd)
            fd = new_fd
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1], root


class SharedDir(Closing):
    """``open_dir`` for the files of one batch: the directory opened for a ``relpath`` is
    kept for the next in the same directory (a sweep batch is one directory), and each call
    gets its own ``dup`` of it. That spares re-walking the root's path and the components,
    each checked, for every file (a tenth of an unlink sweep's time); what is opened is the
    same checked directory, held for the few milliseconds of the batch's checks, no longer
    than each file's own descriptors are held until its erase. Every per-file check (name,
    type, mount, identity) still runs on every file."""

    def __init__(self, root_dir: safefs.Root) -> None:
        self._root_dir = root_dir
        self._held: tuple[str, int, safefs.DirId] | None = None

    def open(self, relpath: str) -> tuple[int, str, safefs.DirId]:
        """As ``open_dir``; the caller closes the descriptor returned."""
        head, _, name = relpath.rpartition("/")
        if self._held is not None and self._held[0] == head:
            if name in ("", ".", ".."):
                raise Refused(f"unsafe relative path {relpath!r}")
            return os.dup(self._held[1]), name, self._held[2]
        self.close()
        fd, name, root = open_dir(self._root_dir, relpath)
        try:
            self._held = (head, os.dup(fd), root)
        except BaseException:
            os.close(fd)
            raise
        return fd, name, root

    def close(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            os.close(held[1])


def _open_subdir(fd: int, part: str, root: safefs.DirId, where: str) -> int:
    try:
        return safefs.open_subdir(fd, part, root, where)
    except safefs.CrossesMount as exc:
        raise Refused(f"{where} {exc.strerror}") from None
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


def open_path(dir_fd: int, name: str) -> int:
    try:
        # O_PATH opens nothing for I/O: a FIFO does not block, a device is not touched,
        # and with O_NOFOLLOW a symlink is opened as itself.
        return os.open(name, safefs.PATH_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        raise Gone("no longer exists") from None


def reopen(p: Held, flags: int, fd_dir: Path | None) -> int:
    """A descriptor for I/O on exactly the inode ``p`` holds (through ``fd_dir``, the
    procfs ``self/fd``, when there is one)."""
    if fd_dir is not None:
        # The magic link leads to the held inode itself; no name is resolved again.
        # O_NONBLOCK: a lease another process holds on the file fails the open (EAGAIN)
        # instead of stalling recd for lease-break-time; on a regular file it does
        # nothing else.
        return os.open(fd_dir / str(p.path_fd), flags | os.O_CLOEXEC | os.O_NONBLOCK)
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


def recheck(p: Held) -> None:
    """Nothing about the file changed since ``prepare``; its name still leads to it."""
    st = os.fstat(p.path_fd)
    if st.st_nlink == 0:
        raise Gone("removed since it was checked")
    if st.st_nlink > 1:
        raise Refused(f"has {st.st_nlink} hard links")
    if (st.st_size, st.st_mtime_ns) != (p.st.st_size, p.st.st_mtime_ns):
        raise Refused("changed since it was checked")
    if not is_inode(p.dir_fd, p.name, p.st.st_dev, p.st.st_ino):
        raise Refused("replaced since it was checked")
