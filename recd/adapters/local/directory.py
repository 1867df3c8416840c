"""A Source over a local directory tree: a safe, fd-relative scan yielding file facts.

Invariants: the walk opens every directory relative to its parent with ``O_NOFOLLOW``, never
follows a symlink, never enters another filesystem or another mount of the root's filesystem (a
bind mount: found by mount id, and by the mount points below the root in mountinfo, read once a
scan; a bind-mounted single file is skipped too), never opens a FIFO, socket or device
(entries are classified by ``lstat`` and only directories are opened), skips excluded directories
(the state dir) and recd's own in-flight erase names, and tolerates files and directories that
vanish mid-walk. Directories it cannot read are reported, so the caller does not mistake their
files for missing ones. The root is opened through ``safefs.Root``: resolved once, never
through a symlink afterwards, and refused if it is no longer the directory seen at start.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

from recd.adapters.local import safefs
from recd.core.model import ERASE_PREFIX, FileFacts
from recd.errors import os_reason
from recd.ports.source import DirListing, DirStamp, ScanTotals

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Names recd gives files between overwrite and unlink; never indexed as recordings.
MAX_DEPTH = 64
#: errno values of a path component that is gone, or is a symlink or file where a directory was.
GONE = (errno.ENOENT, errno.ELOOP, errno.ENOTDIR)
PROGRESS_EVERY = 30.0  # seconds between progress lines on long scans
#: A directory changed less than this before a scan started is not stamped: with coarse
#: timestamps (a clock tick, whole seconds on some filesystems) a change in the same tick as
#: the listing would leave its mtime and ctime as stamped.
STAMP_SLACK_NS = 2_000_000_000


@dataclass(frozen=True, slots=True)
class _Walk:
    """What one scan compares each entry with."""

    root: safefs.DirId
    excluded: set[tuple[int, int]]
    mounts: frozenset[str]  # mount points below the root, relative to it (mountinfo)
    known: Callable[[str], DirStamp | None]  # a directory's stored stamp
    mount_dirs: frozenset[str]  # directories something is mounted in: never trusted
    trust_before_ns: int  # a directory changed since may not be trusted next time


@dataclass(slots=True)
class DirScanReport:
    unreadable_dirs: list[str] = field(default_factory=list)
    skipped_mounts: list[str] = field(default_factory=list)
    skipped_special: int = 0
    files: int = 0


def _stamp(
    st: os.stat_result, walk: _Walk, subdirs: list[str], files: list[FileFacts], size: int
) -> DirStamp | None:
    """A listed directory's stamp, or None when it changed too near the scan's start."""
    if max(st.st_mtime_ns, st.st_ctime_ns) >= walk.trust_before_ns:
        return None
    ids = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
    return DirStamp(*ids, tuple(subdirs), len(files), size)


def _unknown(relpath: str) -> None:
    """No stamp: every directory is listed."""
    return None


class DirectorySource:
    """One `type = "directory"` source."""

    def __init__(
        self,
        name: str,
        root: Path,
        *,
        exclude: tuple[Path, ...] = (),
        progress: float = 0,
        pins: safefs.RootPins | None = None,
    ) -> None:
        self.name = name
        self.root = root
        self._root = safefs.Root(root, name=name, pins=pins)
        self._exclude = exclude
        self._progress = progress or PROGRESS_EVERY
        self._report = DirScanReport()

    @property
    def report(self) -> DirScanReport:
        return self._report

    @property
    def last_scan(self) -> ScanTotals | None:
        """Always None: a directory scan counts no objects (``recd.ports.source.Source``)."""
        return None

    def _excluded_ids(self) -> set[tuple[int, int]]:
        ids = set()
        for path in self._exclude:
            try:
                st = os.stat(path)
            except OSError:
                continue
            ids.add((st.st_dev, st.st_ino))
        return ids

    def _start(
        self, under: str
    ) -> tuple[int, str, int, safefs.DirId, set[tuple[int, int]], frozenset[str]] | None:
        """Where a scan of ``under`` starts: its directory's fd (the caller closes it), the
        prefix and depth of its relpaths, the root, the excluded ids and the mounts; None when
        the walk would not enter ``under``."""
        root_fd, root = self._root.open()
        excluded = self._excluded_ids()
        mounts = safefs.mounts_below(self._root.resolved)
        if not under:
            return root_fd, "", 0, root, excluded, mounts
        try:
            parts = safefs.split_relpath(under)
        except ValueError:
            parts = []
        if len(parts) > MAX_DEPTH:
            self._unreadable(under, f"deeper than {MAX_DEPTH} levels")
            parts = []
        try:
            start_fd = self._open_dirs(root_fd, root, parts, mounts) if parts else None
        finally:
            os.close(root_fd)
        if start_fd is None:
            return None
        return start_fd, under + "/", len(parts), root, excluded, mounts

    def scan(self, under: str = "") -> Iterator[FileFacts]:
        """Yield every regular file below the root, or below its subdirectory ``under`` (which
        is entered as the walk would: nothing is yielded if it is gone, a symlink, excluded or
        a mount). Raises OSError if the root cannot be opened, ``RootChanged`` if it is no
        longer the directory checked at start."""
        self._report = report = DirScanReport()
        start = self._start(under)
        if start is None:
            return
        start_fd, prefix, depth, root, excluded, mounts = start
        last = time.monotonic()
        try:
            walk = _Walk(root, excluded, mounts, _unknown, frozenset(), 0)
            for facts in self._walk(start_fd, walk, prefix, depth):
                report.files += 1
                if report.files % 4096 == 0 and time.monotonic() - last >= self._progress:
                    last = time.monotonic()
                    logger.info("scan %s: %d files so far", self.name, report.files)
                yield facts
        finally:
            os.close(start_fd)

    def _walk(self, dir_fd: int, walk: _Walk, prefix: str, depth: int) -> Iterator[FileFacts]:
        report = self._report
        root_dev = walk.root.dev
        subdirs: list[str] = []
        with os.scandir(dir_fd) as entries:
            for entry in entries:
                name = entry.name
                relpath = prefix + name
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # vanished mid-walk
                if st.st_dev != root_dev or (walk.mounts and relpath in walk.mounts):
                    if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
                        self._skip_mount(relpath, st.st_dev != root_dev)
                    else:
                        report.skipped_special += 1
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if (st.st_dev, st.st_ino) not in walk.excluded:
                        subdirs.append(name)
                elif stat.S_ISREG(st.st_mode):
                    if name.startswith(ERASE_PREFIX):
                        continue
                    yield self._facts(relpath, st)
                else:
                    report.skipped_special += 1  # symlinks, FIFOs, sockets, devices
        for name in subdirs:
            yield from self._descend(self._walk, dir_fd, walk, prefix + name, name, depth)

    def scan_dirs(
        self, under: str, known: Callable[[str], DirStamp | None]
    ) -> Iterator[DirListing]:
        """``scan`` a directory at a time; a directory whose device, inode, mtime and ctime
        are those of its stamp (``known``) and below which nothing is mounted is not listed:
        its files are as the stamped listing found them. Its stamped subdirectories are still
        entered one by one with the same checks (no symlink, same device and mount, not
        excluded). A listed directory's stamp is offered only when it had not changed within
        ``STAMP_SLACK_NS`` of the scan's start (coarse timestamps)."""
        self._report = report = DirScanReport()
        trust_before = time.time_ns() - STAMP_SLACK_NS
        start = self._start(under)
        if start is None:
            return
        start_fd, prefix, depth, root, excluded, mounts = start
        last = time.monotonic()
        mount_dirs = frozenset(m.rpartition("/")[0] for m in mounts)
        try:
            walk = _Walk(root, excluded, mounts, known, mount_dirs, trust_before)
            for listing in self._walk_dirs(start_fd, walk, prefix, depth):
                counted = report.files
                if listing.files is not None:
                    report.files += len(listing.files)
                elif listing.stamp is not None:
                    report.files += listing.stamp.files
                crossed = report.files // 4096 != counted // 4096
                if crossed and time.monotonic() - last >= self._progress:
                    last = time.monotonic()
                    logger.info("scan %s: %d files so far", self.name, report.files)
                yield listing
        finally:
            os.close(start_fd)

    def _walk_dirs(self, dir_fd: int, walk: _Walk, prefix: str, depth: int) -> Iterator[DirListing]:
        relpath = prefix[:-1]
        st = os.fstat(dir_fd)  # before listing: a change after it changes mtime or ctime
        if depth and (st.st_dev, st.st_ino) in walk.excluded:
            return
        old = walk.known(relpath)
        if (
            old is not None
            and (old.dev, old.ino, old.mtime_ns, old.ctime_ns)
            == (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
            and relpath not in walk.mount_dirs
        ):
            yield DirListing(relpath, None, old)
            for name in old.subdirs:
                if walk.mounts and prefix + name in walk.mounts:
                    self._skip_mount(prefix + name, False)
                    continue
                yield from self._descend(self._walk_dirs, dir_fd, walk, prefix + name, name, depth)
            return
        listing, subdirs = self._list(dir_fd, walk, prefix, st)
        yield listing
        for name in subdirs:
            yield from self._descend(self._walk_dirs, dir_fd, walk, prefix + name, name, depth)

    def _list(
        self, dir_fd: int, walk: _Walk, prefix: str, st: os.stat_result
    ) -> tuple[DirListing, list[str]]:
        """List one directory (``st``: its ``fstat`` before): its files, with a stamp when it
        may be trusted next time, and the subdirectories to enter. ``_walk`` sorts entries the
        same way but streams each file as it is stat-ed (``scan``: a file removed mid-walk is
        passed over); a change to which entries are taken belongs in both."""
        report = self._report
        root_dev = walk.root.dev
        files: list[FileFacts] = []
        subdirs: list[str] = []
        every_dir: list[str] = []  # mounts and excluded too: entered (and checked) when trusted
        size = 0
        with os.scandir(dir_fd) as entries:
            for entry in entries:
                name = entry.name
                child = prefix + name
                try:
                    est = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # vanished mid-walk
                if stat.S_ISDIR(est.st_mode):
                    every_dir.append(name)
                if est.st_dev != root_dev or (walk.mounts and child in walk.mounts):
                    if stat.S_ISDIR(est.st_mode) or stat.S_ISREG(est.st_mode):
                        self._skip_mount(child, est.st_dev != root_dev)
                    else:
                        report.skipped_special += 1
                    continue
                if stat.S_ISDIR(est.st_mode):
                    if (est.st_dev, est.st_ino) not in walk.excluded:
                        subdirs.append(name)
                elif stat.S_ISREG(est.st_mode):
                    if name.startswith(ERASE_PREFIX):
                        continue
                    files.append(self._facts(child, est))
                    size += est.st_size
                else:
                    report.skipped_special += 1  # symlinks, FIFOs, sockets, devices
        return DirListing(prefix[:-1], files, _stamp(st, walk, every_dir, files, size)), subdirs

    def _skip_mount(self, relpath: str, other_fs: bool) -> None:
        self._report.skipped_mounts.append(relpath)
        what = "another filesystem" if other_fs else "a bind mount of this filesystem"
        logger.warning("scan %s: not entering %s: %s is mounted there", self.name, relpath, what)

    def _descend(
        self,
        step: Callable[[int, _Walk, str, int], Iterator[T]],
        dir_fd: int,
        walk: _Walk,
        relpath: str,
        name: str,
        depth: int,
    ) -> Iterator[T]:
        """Enter subdirectory ``name`` and walk it with ``step`` (``_walk`` or ``_walk_dirs``)."""
        if depth + 1 > MAX_DEPTH:
            self._unreadable(relpath, f"deeper than {MAX_DEPTH} levels")
            return
        try:
            sub_fd = safefs.open_subdir(dir_fd, name, walk.root, relpath)
        except safefs.CrossesMount as exc:
            # mounted since it was listed (a mount seen in the listing is skipped there)
            self._skip_mount(relpath, "another filesystem" in (exc.strerror or ""))
            return
        except OSError as exc:
            if exc.errno in GONE:
                return  # vanished, or swapped for a symlink or file since listed
            self._unreadable(relpath, os_reason(exc))
            return
        try:
            yield from step(sub_fd, walk, relpath + "/", depth + 1)
        except OSError as exc:
            self._unreadable(relpath, os_reason(exc))
        finally:
            os.close(sub_fd)

    def _unreadable(self, relpath: str, why: str) -> None:
        self._report.unreadable_dirs.append(relpath)
        logger.warning("scan %s: cannot read %s: %s", self.name, relpath, why)

    def facts(self, relpath: str) -> FileFacts | None:
        """The facts of the file at ``relpath`` if a scan would yield it now, else None.

        None when the path is unsafe (absolute, empty, '.' or '..' components), deeper than a
        scan goes, an erase temp name, gone, a symlink or anything but a regular file, or reached
        through a symlink, another filesystem or an excluded directory. The final component is
        only ``lstat``-ed, never opened, so a FIFO or device costs nothing. Raises ``OSError``
        when the root or a directory on the way cannot be read: that is not the same as gone.
        """
        try:
            parts = safefs.split_relpath(relpath)
        except ValueError:
            return None
        if parts[-1].startswith(ERASE_PREFIX) or len(parts) - 1 > MAX_DEPTH:
            return None
        root_fd, root = self._root.open()
        try:
            dir_fd = self._open_dirs(root_fd, root, parts[:-1])
        finally:
            os.close(root_fd)
        if dir_fd is None:
            return None
        try:
            st = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
            # a file bind-mounted over the name: the same device, another mount id
            sx = safefs.statx(dir_fd, parts[-1]) if stat.S_ISREG(st.st_mode) else None
        except FileNotFoundError:
            return None
        finally:
            os.close(dir_fd)
        mounted = sx is not None and not safefs.DirId(sx.dev, sx.ino, sx.mnt_id).same_mount(root)
        if not stat.S_ISREG(st.st_mode) or st.st_dev != root.dev or mounted:
            return None
        return self._facts(relpath, st)

    def _facts(self, relpath: str, st: os.stat_result) -> FileFacts:
        """What the index keeps of a regular file, from its ``lstat``."""
        return FileFacts(
            self.name,
            relpath,
            st.st_dev,
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_nlink,
            ctime_ns=st.st_ctime_ns,
        )

    def _open_dirs(
        self,
        root_fd: int,
        root: safefs.DirId,
        names: list[str],
        mounts: frozenset[str] = frozenset(),
    ) -> int | None:
        """Open ``names`` one below the other from the root as the walk would enter them.

        Returns the last directory's fd (a new one; the caller closes it), or None where the walk
        would not go: gone, a symlink, a mount (by mount id, or one of ``mounts``), an excluded
        directory.
        """
        excluded = self._excluded_ids() if names else set()
        fd = os.dup(root_fd)
        try:
            for depth, name in enumerate(names, 1):
                relpath = "/".join(names[:depth])
                if relpath in mounts:
                    os.close(fd)
                    return None
                sub_fd = safefs.open_subdir(fd, name, root, relpath)
                os.close(fd)
                fd = sub_fd
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) in excluded:
                    os.close(fd)
                    return None
        except safefs.CrossesMount:
            os.close(fd)
            return None
        except OSError as exc:
            os.close(fd)
            if exc.errno in GONE:
                return None
            raise
        return fd

    def open_read(self, relpath: str, dev: int, ino: int) -> IO[bytes]:
        """Open an indexed file read-only, fd-relative, without following symlinks."""
        root_fd, root = self._root.open()
        try:
            parent, name = safefs.open_parent(root_fd, root, relpath)
        finally:
            os.close(root_fd)
        try:
            fd = os.open(
                name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent
            )
        finally:
            os.close(parent)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (dev, ino):
            os.close(fd)
            raise FileNotFoundError(errno.ENOENT, "no longer the indexed file", relpath)
        try:
            safefs.check_mount(fd, root, relpath)
        except BaseException:
            os.close(fd)
            raise
        return os.fdopen(fd, "rb")

    def metadata(self, relpath: str) -> Mapping[str, str]:
        """Files carry no S3 metadata (``metadata = true`` is for S3 sources only)."""
        return {}
