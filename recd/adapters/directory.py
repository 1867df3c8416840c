"""A Source over a local directory tree: a safe, fd-relative scan yielding file facts.

Invariants: the walk opens every directory relative to its parent with ``O_NOFOLLOW``, never
follows a symlink, never enters another filesystem (a mount below the root), never opens a FIFO,
socket or device (entries are classified by ``lstat`` and only directories are opened), skips
excluded directories (the state dir) and recd's own in-flight erase names, and tolerates files
and directories that vanish mid-walk. Directories it cannot read are reported, so the caller
does not mistake their files for missing ones.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from recd.adapters import _safefs
from recd.core.model import ERASE_PREFIX, FileFacts

logger = logging.getLogger(__name__)

#: Names recd gives files between overwrite and unlink; never indexed as recordings.
MAX_DEPTH = 64
#: errno values of a path component that is gone, or is a symlink or file where a directory was.
GONE = (errno.ENOENT, errno.ELOOP, errno.ENOTDIR)
PROGRESS_EVERY = 30.0  # seconds between progress lines on long scans


@dataclass(slots=True)
class DirScanReport:
    unreadable_dirs: list[str] = field(default_factory=list)
    skipped_mounts: list[str] = field(default_factory=list)
    skipped_special: int = 0
    files: int = 0


class DirectorySource:
    """One `type = "directory"` source."""

    def __init__(
        self, name: str, root: Path, *, exclude: tuple[Path, ...] = (), progress: float = 0
    ) -> None:
        self.name = name
        self.root = root
        self._exclude = exclude
        self._progress = progress or PROGRESS_EVERY
        self._report = DirScanReport()

    @property
    def report(self) -> DirScanReport:
        return self._report

    def _excluded_ids(self) -> set[tuple[int, int]]:
        ids = set()
        for path in self._exclude:
            try:
                st = os.stat(path)
            except OSError:
                continue
            ids.add((st.st_dev, st.st_ino))
        return ids

    def scan(self, under: str = "") -> Iterator[FileFacts]:
        """Yield every regular file below the root, or below its subdirectory ``under`` (which
        is entered as the walk would: nothing is yielded if it is gone, a symlink, excluded or
        on another filesystem). Raises OSError if the root cannot be opened."""
        self._report = report = DirScanReport()
        root_fd, root_dev = _safefs.open_root(str(self.root))
        excluded = self._excluded_ids()
        start_fd: int | None = root_fd
        prefix, depth = "", 0
        if under:
            try:
                parts = _safefs.split_relpath(under)
            except ValueError:
                parts = []
            if len(parts) > MAX_DEPTH:
                self._unreadable(under, f"deeper than {MAX_DEPTH} levels")
                parts = []
            try:
                start_fd = self._open_dirs(root_fd, root_dev, parts) if parts else None
            finally:
                os.close(root_fd)
            prefix, depth = under + "/", len(parts)
        if start_fd is None:
            return
        last = time.monotonic()
        try:
            for facts in self._walk(start_fd, root_dev, prefix, depth, excluded):
                report.files += 1
                if report.files % 4096 == 0 and time.monotonic() - last >= self._progress:
                    last = time.monotonic()
                    logger.info("scan %s: %d files so far", self.name, report.files)
                yield facts
        finally:
            os.close(start_fd)

    def _walk(
        self, dir_fd: int, root_dev: int, prefix: str, depth: int, excluded: set[tuple[int, int]]
    ) -> Iterator[FileFacts]:
        report = self._report
        subdirs: list[str] = []
        with os.scandir(dir_fd) as entries:
            for entry in entries:
                name = entry.name
                relpath = prefix + name
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # vanished mid-walk
                if stat.S_ISDIR(st.st_mode):
                    if st.st_dev != root_dev:
                        report.skipped_mounts.append(relpath)
                        logger.warning(
                            "scan %s: not entering %s: another filesystem is mounted there",
                            self.name,
                            relpath,
                        )
                    elif (st.st_dev, st.st_ino) not in excluded:
                        subdirs.append(name)
                elif stat.S_ISREG(st.st_mode):
                    if name.startswith(ERASE_PREFIX):
                        continue
                    yield FileFacts(
                        self.name, relpath, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                        st.st_nlink, ctime_ns=st.st_ctime_ns,
                    )  # fmt: skip
                else:
                    report.skipped_special += 1  # symlinks, FIFOs, sockets, devices
        for name in subdirs:
            yield from self._descend(dir_fd, root_dev, prefix + name, name, depth, excluded)

    def _descend(
        self,
        dir_fd: int,
        root_dev: int,
        relpath: str,
        name: str,
        depth: int,
        excluded: set[tuple[int, int]],
    ) -> Iterator[FileFacts]:
        if depth + 1 > MAX_DEPTH:
            self._unreadable(relpath, f"deeper than {MAX_DEPTH} levels")
            return
        try:
            sub_fd = _safefs.open_subdir(dir_fd, name, root_dev, relpath)
        except _safefs.CrossesMount:
            self._report.skipped_mounts.append(relpath)
            return
        except OSError as exc:
            if exc.errno in GONE:
                return  # vanished, or swapped for a symlink or file since listed
            self._unreadable(relpath, os.strerror(exc.errno or 0))
            return
        try:
            yield from self._walk(sub_fd, root_dev, relpath + "/", depth + 1, excluded)
        except OSError as exc:
            self._unreadable(relpath, os.strerror(exc.errno or 0))
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
            parts = _safefs.split_relpath(relpath)
        except ValueError:
            return None
        if parts[-1].startswith(ERASE_PREFIX) or len(parts) - 1 > MAX_DEPTH:
            return None
        root_fd, root_dev = _safefs.open_root(str(self.root))
        try:
            dir_fd = self._open_dirs(root_fd, root_dev, parts[:-1])
        finally:
            os.close(root_fd)
        if dir_fd is None:
            return None
        try:
            st = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        finally:
            os.close(dir_fd)
        if not stat.S_ISREG(st.st_mode) or st.st_dev != root_dev:
            return None
        return FileFacts(
            self.name, relpath, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_nlink,
            ctime_ns=st.st_ctime_ns,
        )  # fmt: skip

    def _open_dirs(self, root_fd: int, root_dev: int, names: list[str]) -> int | None:
        """Open ``names`` one below the other from the root as the walk would enter them.

        Returns the last directory's fd (a new one; the caller closes it), or None where the walk
        would not go: gone, a symlink, another filesystem, an excluded directory.
        """
        excluded = self._excluded_ids() if names else set()
        fd = os.dup(root_fd)
        try:
            for depth, name in enumerate(names, 1):
                sub_fd = _safefs.open_subdir(fd, name, root_dev, "/".join(names[:depth]))
                os.close(fd)
                fd = sub_fd
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) in excluded:
                    os.close(fd)
                    return None
        except _safefs.CrossesMount:
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
        root_fd, root_dev = _safefs.open_root(str(self.root))
        try:
            parent, name = _safefs.open_parent(root_fd, root_dev, relpath)
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
        return os.fdopen(fd, "rb")

    def metadata(self, relpath: str) -> Mapping[str, str]:
        """Files carry no S3 metadata (``metadata = true`` is for S3 sources only)."""
        return {}
