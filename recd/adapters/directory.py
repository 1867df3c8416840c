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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from recd.adapters import _safefs
from recd.core.model import FileFacts

logger = logging.getLogger(__name__)

#: Names recd gives files between overwrite and unlink; never indexed as recordings.
ERASE_PREFIX = ".recd-erase-"
MAX_DEPTH = 64
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

    def scan(self) -> Iterator[FileFacts]:
        """Yield every regular file below the root. Raises OSError if the root cannot be opened."""
        self._report = report = DirScanReport()
        root_fd, root_dev = _safefs.open_root(str(self.root))
        excluded = self._excluded_ids()
        last = time.monotonic()
        try:
            for facts in self._walk(root_fd, root_dev, "", 0, excluded):
                report.files += 1
                if report.files % 4096 == 0 and time.monotonic() - last >= self._progress:
                    last = time.monotonic()
                    logger.info("scan %s: %d files so far", self.name, report.files)
                yield facts
        finally:
            os.close(root_fd)

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
                        st.st_nlink,
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
            if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
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
