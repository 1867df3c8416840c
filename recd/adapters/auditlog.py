"""The audit log as an append-only file, ``<state_dir>/audit.log`` (ports.AuditLog, SPEC section 8).

Invariants:

- One writer: ``open`` takes an exclusive ``flock`` for the life of the object, so two recd
  processes can never write one log.
- Durable on return: ``append`` writes a whole batch with one ``write`` (looping only on short
  writes) on an ``O_APPEND`` descriptor, then ``fsync``s, before it returns.
- The chain on disk stays valid: if a write or its ``fsync`` fails, the file is cut back to where
  the batch began and the in-memory sequence and hash do not advance. If even that cut fails, the
  object refuses further appends until a later append manages the cut (or the next ``open``
  repairs the tail). ``failure`` is the error of the last append while appends fail (a full or
  failing disk), so the daemon can pause erasing and retry; one that succeeds clears it.
- A batch torn by power loss was never acknowledged: ``open`` cuts an incomplete last line off
  and records that with an ``audit.recovered`` entry (length and SHA-256 of the bytes removed).
  Complete lines of a torn batch stay; they are valid entries of what was about to happen.
- ``open`` reads only the last line (from the end, so in time independent of the log's size);
  checking the chain is ``recctl audit verify``'s job and, from a checkpoint, recd's at start
  (``recd.service.logcheck``). A complete last line that is damaged is left in place and the
  chain goes on from the last intact entry before it; the check at start reports it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from recd.adapters._closing import Closing
from recd.core.audit import GENESIS, AuditDraft, AuditEntry, parse_sealed, seal_line
from recd.errors import AuditCorrupt, StateError

_CHUNK = 64 * 1024
_MODE = 0o640  # group recd-admin may read it (recctl audit verify, ls)


def _pread_exact(fd: int, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of ``fd``; short if the file ends sooner."""
    parts: list[bytes] = []
    while start < end:
        chunk = os.pread(fd, min(_CHUNK, end - start), start)
        if not chunk:
            break
        parts.append(chunk)
        start += len(chunk)
    return b"".join(parts)


def _line_start(fd: int, pos: int) -> int:
    """The offset just after the last newline before ``pos`` (0 if there is none)."""
    while pos > 0:
        begin = max(0, pos - _CHUNK)
        found = _pread_exact(fd, begin, pos).rfind(b"\n")
        if found >= 0:
            return begin + found + 1
        pos = begin
    return 0


def _sha256(fd: int, start: int, end: int) -> str:
    digest = hashlib.sha256()
    for begin in range(start, end, _CHUNK):
        digest.update(_pread_exact(fd, begin, min(end, begin + _CHUNK)))
    return digest.hexdigest()


def _open_append(path: Path) -> tuple[int, bool]:
    """The append descriptor, and whether this call created the file."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
    try:
        return os.open(path, flags | os.O_CREAT | os.O_EXCL, _MODE), True
    except FileExistsError:
        return os.open(path, flags), False


def _settle_new(fd: int, path: Path) -> None:
    """Give a new log its mode whatever the umask, and make its name durable."""
    os.fchmod(fd, _MODE)
    dirfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def _last_intact(path: Path, rfd: int, end: int) -> AuditEntry:
    """The last complete entry that is intact, looking back from ``end`` past damaged ones.

    A damaged complete line is left where it is (evidence; ``recctl audit verify`` and the
    chain check at start report it, and erasing pauses until an administrator acknowledges
    it); the chain goes on from the last intact entry. Raises ``StateError`` when no line is
    intact: there is nothing to chain to.
    """
    first: str | None = None
    while end:
        start = _line_start(rfd, end - 1)
        try:
            return parse_sealed(_pread_exact(rfd, start, end))
        except ValueError as exc:
            first = first or str(exc)
        end = start
    raise StateError(
        f"{path}: no entry is intact (the last: {first}); "
        f"run `recctl audit verify --file {path}` to find the first bad entry"
    )


class FileAuditLog(Closing):
    """The hash-chained audit log of one state directory; see the module docstring."""

    def __init__(self, path: Path, wfd: int, rfd: int, end: int, last: AuditEntry | None) -> None:
        """Use ``FileAuditLog.open``; this takes over two open, locked descriptors."""
        self.path = path
        self._wfd = wfd
        self._rfd = rfd
        self._end = end
        self._last = last
        self._broken: str | None = None
        self.failure: OSError | None = None  # why the last append failed; None once one succeeds

    @classmethod
    def open(cls, path: Path, now: datetime) -> FileAuditLog:
        """Open (creating) and lock the log, repairing a torn last line as of ``now`` (UTC).

        Raises ``StateError`` if the log cannot be opened, is in use by another recd process,
        or its last complete entry is damaged.
        """
        try:
            return cls._open(path, now)
        except OSError as exc:
            raise StateError(f"{path}: cannot open the audit log: {exc.strerror}") from exc

    @classmethod
    def _open(cls, path: Path, now: datetime) -> FileAuditLog:
        wfd, created = _open_append(path)
        rfd = -1
        try:
            if created:
                _settle_new(wfd, path)
            try:
                fcntl.flock(wfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StateError(f"{path}: in use by another recd process") from None
            rfd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            if not os.path.samestat(os.fstat(wfd), os.fstat(rfd)):  # pragma: no cover (race)
                raise StateError(f"{path}: replaced while it was being opened")
            return cls._recover(path, wfd, rfd, now)
        except BaseException:
            os.close(wfd)
            if rfd >= 0:
                os.close(rfd)
            raise

    @classmethod
    def _recover(cls, path: Path, wfd: int, rfd: int, now: datetime) -> FileAuditLog:
        size = os.fstat(rfd).st_size
        end = size
        if size and _pread_exact(rfd, size - 1, size) != b"\n":
            end = _line_start(rfd, size)
        last = _last_intact(path, rfd, end) if end else None
        log = cls(path, wfd, rfd, end, last)
        if end < size:
            torn = {"offset": end, "torn_bytes": size - end, "torn_sha256": _sha256(rfd, end, size)}
            os.ftruncate(wfd, end)
            os.fsync(wfd)
            log.append([AuditDraft("audit.recovered", str(path), torn)], now)
        return log

    def append(self, drafts: Sequence[AuditDraft], now: datetime) -> list[AuditEntry]:
        """Seal ``drafts`` at ``now`` (UTC) and append them; on stable storage when this returns.

        Raises the ``OSError`` of a failed write or ``fsync``, after cutting the file back to
        where the batch began; ``ValueError``/``TypeError`` for details JSON cannot hold (nothing
        is written); ``StateError`` once a failed batch could not be cut back.
        """
        if self._broken is not None:
            self._cut_back()  # the disk may have recovered: the cut comes before any new line
            if self._broken is not None:
                raise StateError(self._broken)
        if self._wfd < 0:
            raise ValueError(f"{self.path}: the audit log is closed")
        entries: list[AuditEntry] = []
        lines: list[bytes] = []
        seq, prev = (0, GENESIS) if self._last is None else (self._last.seq, self._last.hash)
        for draft in drafts:
            entry, line = seal_line(draft, seq=seq + 1, prev=prev, time=now)
            entries.append(entry)
            lines.append(line)
            seq, prev = entry.seq, entry.hash
        if not entries:
            return entries
        data = memoryview(b"".join(lines))
        try:
            written = 0
            while written < len(data):
                written += os.write(self._wfd, data[written:])
            os.fsync(self._wfd)
        except OSError as exc:
            self.failure = exc
            self._cut_back()
            raise
        except BaseException:
            self._cut_back()
            raise
        self._end += len(data)
        self._last = entries[-1]
        self.failure = None
        return entries

    def _cut_back(self) -> None:
        """Remove a batch that did not complete, so no unacknowledged entry stays."""
        try:
            os.ftruncate(self._wfd, self._end)
            os.fsync(self._wfd)
        except OSError as exc:
            self.failure = self.failure or exc  # the append's own error says more
            self._broken = (
                f"{self.path}: an append failed and could not be undone ({exc.strerror}); "
                "restart recd to repair the log"
            )
        else:
            self._broken = None

    def digests(self, ends: Sequence[int]) -> list[str]:
        """The SHA-256 (hex) of the log's bytes from the start to each of ``ends``
        (ascending, none past ``end_offset()``), in one pass over the file."""
        digest = hashlib.sha256()
        found: list[str] = []
        pos = 0
        for end in ends:
            if not pos <= end <= self._end:
                raise ValueError(f"offset {end} is outside the audit log ({pos} to {self._end})")
            for begin in range(pos, end, _CHUNK):
                digest.update(_pread_exact(self._rfd, begin, min(end, begin + _CHUNK)))
            pos = end
            found.append(digest.copy().hexdigest())
        return found

    def end_offset(self) -> int:
        """The byte offset at which the next entry will be written."""
        return self._end

    def read_from(self, offset: int, *, skip_damaged: bool = False) -> Iterator[AuditEntry]:
        """Entries from byte ``offset`` (an earlier ``end_offset()``) to the current end.

        Streams with bounded memory (one chunk and one line). Raises ``ValueError`` at once for
        an offset that is not the start of an entry; the iterator raises ``AuditCorrupt`` for an
        entry that does not parse or check, or with ``skip_damaged`` leaves it out and goes on
        (a replay past damage; the chain check reports it).
        """
        if self._rfd < 0:
            raise ValueError(f"{self.path}: the audit log is closed")
        if not 0 <= offset <= self._end:
            raise ValueError(f"offset {offset} is outside the audit log (0 to {self._end})")
        if offset and _pread_exact(self._rfd, offset - 1, offset) != b"\n":
            raise ValueError(f"offset {offset} is not the start of an audit entry")
        return self._entries(offset, skip_damaged)

    def _entries(self, offset: int, skip_damaged: bool = False) -> Iterator[AuditEntry]:
        pending = b""
        line_at = pos = offset
        while pos < self._end:
            chunk = os.pread(self._rfd, min(_CHUNK, self._end - pos), pos)
            if not chunk:
                raise AuditCorrupt(
                    f"{self.path}: ends at byte {pos}, before the {self._end} bytes recd wrote "
                    "(changed by another program?)"
                )
            pos += len(chunk)
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                try:
                    entry = parse_sealed(line + b"\n")
                except ValueError as exc:
                    if not skip_damaged:
                        raise AuditCorrupt(f"{self.path}: entry at byte {line_at}: {exc}") from None
                    line_at += len(line) + 1
                    continue
                line_at += len(line) + 1
                yield entry
        if pending:
            raise AuditCorrupt(
                f"{self.path}: entry at byte {line_at}: no newline where recd wrote one "
                "(changed by another program?)"
            )

    def last(self) -> AuditEntry | None:
        """The newest entry, or None for an empty log."""
        return self._last

    def close(self) -> None:
        """Release the lock and the descriptors; idempotent."""
        for fd in (self._wfd, self._rfd):
            if fd >= 0:
                os.close(fd)
        self._wfd = self._rfd = -1
