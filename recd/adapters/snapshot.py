"""The daemon's half of ``recctl backup``: a consistent snapshot of the state directory, handed
over as read-only file descriptors (issue 14, point 4).

recd writes nothing outside its state directory for a backup: it makes the snapshot in a private
directory there (``.backup-XXXXXXXX``, mode 0700), opens every file of it read-only, removes the
names, and the admin socket passes the descriptors to recctl, which writes the backup with its
caller's own rights. What the snapshot holds:

- ``catalog.db``: the catalogue's online backup (``CatalogueCopier.backup_to``), taken first;
- the closed audit segments (``audit.log.<first>-<last>[.gz]``), opened where they are: they
  never change once closed;
- ``audit.log``: a copy of the live log up to its last whole entry as the loop sees it, after
  the catalogue was copied (that entry is the backup's head). The live file itself is never
  handed out: a descriptor of it would let its holder ``flock`` it and keep recd from
  starting again.

``cut`` runs on the daemon's loop (the only writer of the log), so the segments listed and the
length taken belong together and end at a whole entry; the rest runs on an admin thread.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from recd.core.audit import AuditEntry, parse_sealed
from recd.core.backup import CATALOGUE, LIVE_LOG, audit_order, segment_range

PREFIX = ".backup-"
RETRIES = 3
_CHUNK = 1024 * 1024
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class Handed:
    """One file of the snapshot: its name in the backup, an open read-only descriptor, its size."""

    name: str
    fd: int
    size: int


@dataclass(frozen=True, slots=True)
class Cut:
    """The audit log as the loop saw it: the closed segments (open), the live log (open) and
    how much of it is whole entries, and the last of those entries."""

    segments: tuple[Handed, ...]
    live: int  # descriptor of the live log
    end: int
    last: AuditEntry | None


def close_all(fds: list[int] | tuple[int, ...]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _open_regular(dirfd: int, name: str) -> Handed:
    fd = os.open(name, _READ, dir_fd=dirfd)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise OSError(f"{name} is not a regular file")
    return Handed(name, fd, st.st_size)


class Snapshot:
    """A private directory in ``state_dir`` for one backup; ``remove`` when done with it."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        for stale in state_dir.glob(f"{PREFIX}*"):  # left by a recd killed mid-backup
            shutil.rmtree(stale, ignore_errors=True)
        self.path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=state_dir))

    @property
    def catalogue(self) -> Path:
        """Where the catalogue's copy goes."""
        return self.path / CATALOGUE

    def cut(self) -> Cut:
        """On the loop (the log's only writer): open the closed segments and the live log, and
        find its last whole entry. A segment gone between listing and opening (compressed
        meanwhile) is listed again. Raises OSError, ``ValueError`` for a damaged last entry."""
        for _ in range(RETRIES - 1):
            try:
                return self._cut()
            except FileNotFoundError:
                continue
        return self._cut()

    def _cut(self) -> Cut:
        dirfd = os.open(self.state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        opened: list[Handed] = []
        try:
            names = [n for n in os.listdir(dirfd) if segment_range(n) is not None]
            for name in [*audit_order(names), LIVE_LOG]:
                opened.append(_open_regular(dirfd, name))
            end, last = _last_entry(opened[-1].fd, opened[-1].size)
            live = opened.pop()
        except BaseException:
            close_all([h.fd for h in opened])
            raise
        finally:
            os.close(dirfd)
        return Cut(tuple(opened), live.fd, end, last)

    def hand_over(self, cut: Cut) -> list[Handed]:
        """The snapshot's files in backup order: the catalogue's copy, the segments, the live
        log's first ``cut.end`` bytes. Their names are gone once ``remove`` is called; the
        caller owns the descriptors returned. Takes over ``cut``'s descriptors (all are closed
        if this raises)."""
        mine: list[int] = []
        dirfd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            catalogue = _open_regular(dirfd, CATALOGUE)
            mine.append(catalogue.fd)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            out = os.open(LIVE_LOG, flags, 0o600, dir_fd=dirfd)
            try:
                _copy_prefix(cut.live, out, cut.end)
            finally:
                os.close(out)
            live = _open_regular(dirfd, LIVE_LOG)
        except BaseException:
            close_all([*mine, *(h.fd for h in cut.segments)])
            raise
        finally:
            os.close(dirfd)
            os.close(cut.live)
        return [catalogue, *cut.segments, live]

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _last_entry(fd: int, size: int) -> tuple[int, AuditEntry | None]:
    """The end of the last whole line of the first ``size`` bytes of ``fd``, and its entry."""
    end = _line_start(fd, size)
    if end == 0:
        return 0, None
    start = _line_start(fd, end - 1)
    return end, parse_sealed(os.pread(fd, end - start, start))


def _line_start(fd: int, pos: int) -> int:
    """The offset just after the last newline before ``pos`` (0 if there is none)."""
    while pos > 0:
        begin = max(0, pos - _CHUNK)
        found = os.pread(fd, pos - begin, begin).rfind(b"\n")
        if found >= 0:
            return begin + found + 1
        pos = begin
    return 0


def _copy_prefix(src: int, dst: int, end: int) -> None:
    pos = 0
    while pos < end:
        chunk = os.pread(src, min(_CHUNK, end - pos), pos)
        if not chunk:
            raise OSError(f"the audit log ends at byte {pos}, before the {end} bytes recd wrote")
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view) :]
        pos += len(chunk)
