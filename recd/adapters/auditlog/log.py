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
- ``open`` reads only the first and the last line (from the end, so in time independent of the
  log's size); checking the chain is ``recctl audit verify``'s job and, from a checkpoint,
  recd's at start (``recd.service.logcheck``). A complete last line that is damaged is left in
  place and the chain goes on from the last intact entry before it; the check at start
  reports it.
- Rotation (``audit.rotate_size``, SPEC section 8) keeps one chain and never leaves the name
  ``audit.log`` missing or unlocked: after an append that takes the log past the size, a new
  file is prepared under a temporary name holding the ``audit.rotated`` entry that continues
  the chain, ``fsync``ed and locked; the live file is hard-linked to its segment name
  ``audit.log.<first>-<last>``; the new file is renamed over ``audit.log``. A crash before the
  rename is undone by the next ``open`` (the link and the temporary file go), one after it left
  a finished rotation. A rotation that fails is logged and tried again at the next append; the
  append it followed stands.
- Offsets (``end_offset``, ``read_from``) count bytes in the whole chain, every segment's bytes
  (uncompressed) before the live log's, so an offset stored before a rotation (an erase intent,
  a request run) still finds its entries after it. The ``audit.rotated`` entry records where
  the log it begins starts in the chain.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from recd.adapters._closing import Closing
from recd.adapters.auditlog import chain, files
from recd.config.types import AuditSettings
from recd.core.audit import GENESIS, AuditDraft, AuditEntry, parse_sealed, seal_line
from recd.core.auditsegments import NEW, ROTATED, Gap, segment_name
from recd.core.segcheck import Stat
from recd.errors import AuditCorrupt, StateError, os_reason
from recd.ports.audit import AuditExtent

logger = logging.getLogger(__name__)

_MODE = files.MODE
_OPEN_TRIES = 3  # a rotation by another process between open and lock is retried


def _last_intact(path: Path, rfd: int, end: int) -> AuditEntry:
    """The last complete entry that is intact, looking back from ``end`` past damaged ones.

    A damaged complete line is left where it is (evidence; ``recctl audit verify`` and the
    chain check at start report it, and erasing pauses until an administrator acknowledges
    it); the chain goes on from the last intact entry. Raises ``StateError`` when no line is
    intact: there is nothing to chain to.
    """
    first: str | None = None
    while end:
        start = files.line_start(rfd, end - 1)
        try:
            return parse_sealed(files.pread_exact(rfd, start, end))
        except ValueError as exc:
            first = first or str(exc)
        end = start
    raise StateError(
        f"{path}: no entry is intact (the last: {first}); "
        f"run `recctl audit verify --file {path}` to find the first bad entry"
    )


def _now_live(path: Path, fds: Sequence[int]) -> bool:
    """Whether the prepared file (``fds[0]``) is already ``path``: an interrupt that came
    after the rotation's rename took effect must not unlink the segment's name, by then the
    only name of the closed entries."""
    try:
        return bool(fds) and os.path.samestat(os.fstat(fds[0]), os.stat(path))
    except OSError:
        return False


class FileAuditLog(Closing):
    """The hash-chained audit log of one state directory; see the module docstring."""

    def __init__(
        self,
        path: Path,
        wfd: int,
        rfd: int,
        end: int,
        last: AuditEntry | None,
        settings: AuditSettings | None = None,
    ) -> None:
        """Use ``FileAuditLog.open``; this takes over two open, locked descriptors."""
        self.path = path
        self._wfd = wfd
        self._rfd = rfd
        self._end = end  # bytes of the live file
        self._last = last
        self._broken: str | None = None
        self.failure: OSError | None = None  # why the last append failed; None once one succeeds
        self._settings = settings or AuditSettings()
        self._base = 0  # where the live file starts in the whole chain
        self._first: AuditEntry | None = None  # the live file's first entry
        self._segments = 0  # closed segments beside it
        self._rotate_failed = False
        self._first_damaged = False  # the live log's first line does not parse: no rotation

    @classmethod
    def open(cls, path: Path, now: datetime, settings: AuditSettings | None = None) -> FileAuditLog:
        """Open (creating) and lock the log, repairing a torn last line as of ``now`` (UTC),
        and settle a rotation or compression a crash interrupted.

        Raises ``StateError`` if the log cannot be opened, is in use by another recd process,
        holds no intact entry, or is missing beside its segments. (A damaged
        first entry is left for ``recctl audit verify`` to report; the log is not rotated.)
        """
        try:
            return cls._open(path, now, settings or AuditSettings())
        except OSError as exc:
            raise StateError(f"{path}: cannot open the audit log: {os_reason(exc)}") from exc

    @classmethod
    def _open(cls, path: Path, now: datetime, settings: AuditSettings) -> FileAuditLog:
        for _ in range(_OPEN_TRIES):
            wfd, rfd = files.lock(path)
            if wfd >= 0:  # pragma: no branch (race: replaced between its open and lock)
                break
        else:  # pragma: no cover (race)
            raise StateError(f"{path}: replaced while it was being opened")
        try:
            for done in files.settle(path, wfd):
                logger.warning("audit log: %s", done)
            log = cls._recover(path, wfd, rfd, now, settings)
        except BaseException:
            os.close(wfd)
            os.close(rfd)
            raise
        if settings.compress == "gzip":
            for segment in files.list_segments(path):
                if not segment.compressed:
                    log._compress(path.with_name(segment.name))
        return log

    @classmethod
    def _recover(
        cls, path: Path, wfd: int, rfd: int, now: datetime, settings: AuditSettings
    ) -> FileAuditLog:
        size = os.fstat(rfd).st_size
        end = size
        if size and files.pread_exact(rfd, size - 1, size) != b"\n":
            end = files.line_start(rfd, size)
        last = first = None
        if end:
            last = _last_intact(path, rfd, end)
            with contextlib.suppress(ValueError):  # verify's to report; rotation waits
                first = parse_sealed(files.first_line(rfd, end))
        log = cls(path, wfd, rfd, end, last, settings)
        log._first = first
        log._first_damaged = bool(end) and first is None
        log._segments, log._base = cls._place(path, first, damaged=log._first_damaged)
        if end < size:
            torn = {
                "offset": end,
                "torn_bytes": size - end,
                "torn_sha256": files.sha256(rfd, end, size),
            }
            os.ftruncate(wfd, end)
            os.fsync(wfd)
            log.append([AuditDraft("audit.recovered", str(path), torn)], now)
        return log

    @staticmethod
    def _place(path: Path, first: AuditEntry | None, *, damaged: bool) -> tuple[int, int]:
        """The segments beside the live log, and where it starts in the chain."""
        found = files.list_segments(path)
        offset = None if first is None else first.details.get("offset")
        if first is not None and first.action == ROTATED and type(offset) is int:
            return len(found), offset
        if found and damaged:
            raise StateError(
                f"{path}: the first entry is damaged, so where the log continues its segments "
                f"is unknown; run `recctl audit verify --file {path.parent}` to find the first "
                "bad entry"
            )
        if found:
            tail = found[-1]
            held = "holds no entry" if first is None else f"begins at seq {first.seq}"
            raise StateError(
                f"{path}: {held} without the {ROTATED} entry that follows a segment, yet "
                f"segment {tail.name} holds entries up to seq {tail.last}: the live log was "
                "removed or replaced; restore it from a backup, or move the segments away to "
                "start a new chain"
            )
        return 0, 0

    def append(self, drafts: Sequence[AuditDraft], now: datetime) -> list[AuditEntry]:
        """Seal ``drafts`` at ``now`` (UTC) and append them; on stable storage when this returns.

        Raises the ``OSError`` of a failed write or ``fsync``, after cutting the file back to
        where the batch began; ``ValueError``/``TypeError`` for details JSON cannot hold (nothing
        is written); ``StateError`` once a failed batch could not be cut back. Past
        ``audit.rotate_size`` the log is then rotated (a failure there is logged, not raised).
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
        data = b"".join(lines)
        try:
            files.write_all(self._wfd, data)
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
        self._first = self._first or entries[0]
        self.failure = None
        if self._end >= self._settings.rotate_size and not self._first_damaged:
            self._rotate(now)
        return entries

    def _cut_back(self) -> None:
        """Remove a batch that did not complete, so no unacknowledged entry stays."""
        try:
            os.ftruncate(self._wfd, self._end)
            os.fsync(self._wfd)
        except OSError as exc:
            self.failure = self.failure or exc  # the append's own error says more
            self._broken = (
                f"{self.path}: an append failed and could not be undone ({os_reason(exc)}); "
                "restart recd to repair the log"
            )
        else:
            self._broken = None

    # -- rotation -----------------------------------------------------------------------------

    def _rotate(self, now: datetime) -> None:
        """Close the live file into a segment; a new live file continues the chain."""
        assert self._first is not None and self._last is not None
        first, last = self._first.seq, self._last.seq
        name = segment_name(self.path.name, first, last)
        segment = self.path.with_name(name)
        base = self._base + self._end
        details = {"segment": name, "first": first, "last": last, "offset": base}
        entry, line = seal_line(
            AuditDraft("audit.rotated", name, details), seq=last + 1, prev=self._last.hash, time=now
        )
        prepared = self.path.with_name(self.path.name + NEW)
        fds: list[int] = []
        linked = False
        try:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            fds.append(os.open(prepared, flags, _MODE))
            fcntl.flock(fds[0], fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.fchmod(fds[0], _MODE)
            fds.append(os.open(prepared, os.O_RDONLY | os.O_CLOEXEC))
            files.write_all(fds[0], line)
            os.fsync(fds[0])
            os.link(self.path, segment)
            linked = True
            files.fsync_dir(self.path.parent)
            os.rename(prepared, self.path)
        except BaseException as exc:
            if not _now_live(self.path, fds):  # before the rename took effect: undo the link
                for leftover in (segment,) * linked + (prepared,):
                    with contextlib.suppress(OSError):
                        os.unlink(leftover)
            for fd in fds:
                os.close(fd)
            if not isinstance(exc, OSError):
                raise
            if not self._rotate_failed:
                logger.warning(
                    "cannot rotate the audit log %s into %s: %s; trying again after the next "
                    "append",
                    self.path,
                    name,
                    os_reason(exc),
                )
            self._rotate_failed = True
            return
        old = (self._wfd, self._rfd)
        self._wfd, self._rfd = fds
        self._base, self._end, self._first, self._last = base, len(line), entry, entry
        self._segments += 1
        self._rotate_failed = False
        for fd in old:
            os.close(fd)
        try:
            files.fsync_dir(self.path.parent)
        except OSError as exc:
            logger.warning("audit log rotated, but %s: %s", self.path.parent, os_reason(exc))
        logger.info("audit log rotated: entries %d-%d closed into %s", first, last, segment)
        if self._settings.compress == "gzip":
            self._compress(segment)

    def _compress(self, segment: Path) -> None:
        try:
            packed = files.compress(segment)
        except OSError as exc:
            logger.warning(
                "cannot compress audit log segment %s: %s; it stays uncompressed until recd "
                "starts again",
                segment,
                os_reason(exc),
            )
            return
        logger.info("audit log segment %s compressed into %s", segment, packed.name)

    # -- reading ------------------------------------------------------------------------------

    def end_offset(self) -> int:
        """The offset in the whole chain (every segment's bytes, then the live log's) at which
        the next entry will be written."""
        return self._base + self._end

    def extent(self) -> AuditExtent:
        """The live log's size and the closed segments beside it (safe from any thread)."""
        return AuditExtent(self._end, self._segments)

    def segment_files(self) -> list[Stat]:
        """The closed segments in chain order, as ``stat`` sees them now."""
        found = []
        for segment in files.list_segments(self.path):
            st = os.stat(self.path.with_name(segment.name))
            found.append(
                Stat(
                    segment.name, segment.first, segment.last, st.st_ino, st.st_size, st.st_ctime_ns
                )
            )
        return found

    def read_segment(self, name: str) -> Iterator[tuple[AuditEntry, int]]:
        """The entries of closed segment ``name`` alone, each with the bytes read through it."""
        return files.segment_entries(self.path.with_name(name))

    def live_start(self) -> int:
        """Where the live log starts in the chain (0 before the first rotation)."""
        return self._base

    def digests(self, ends: Sequence[int]) -> list[str]:
        """The SHA-256 (hex) of the live log's bytes from ``live_start()`` to each chain offset
        of ``ends`` (ascending, none outside the live log), in one pass over the file."""
        digest = hashlib.sha256()
        found: list[str] = []
        pos = 0
        for end in ends:
            local = end - self._base
            if not pos <= local <= self._end:
                raise ValueError(
                    f"offset {end} is outside the live audit log "
                    f"({self._base + pos} to {self._base + self._end})"
                )
            for begin in range(pos, local, files.CHUNK):
                digest.update(files.pread_exact(self._rfd, begin, min(local, begin + files.CHUNK)))
            pos = local
            found.append(digest.copy().hexdigest())
        return found

    def read_from(self, offset: int, *, skip_damaged: bool = False) -> Iterator[AuditEntry]:
        """Entries from ``offset`` (an earlier ``end_offset()``) to the current end, through
        segments closed since.

        Streams with bounded memory (one chunk and one line). Raises ``ValueError`` at once for
        an offset that is not the start of an entry; the iterator raises ``AuditCorrupt`` for an
        entry that does not parse or check, or does not follow the one before; with
        ``skip_damaged`` it leaves out lines that do not parse and checks no links (a replay
        past damage; the chain check at start reports it).
        """
        self._check_open()
        end = self.end_offset()
        if not 0 <= offset <= end:
            raise ValueError(f"offset {offset} is outside the audit log (0 to {end})")
        if offset > self._base:
            before = files.pread_exact(self._rfd, offset - self._base - 1, offset - self._base)
        elif 0 < offset < self._base:
            before = next(chain.chunks(self, offset - 1), (self.path, 0, 0, b""))[3][:1]
        else:
            before = b"\n"
        if before != b"\n":
            raise ValueError(f"offset {offset} is not the start of an audit entry")
        return chain.entries(self, offset, lenient=skip_damaged)

    def read_since(self, seq: int) -> Iterator[AuditEntry]:
        """Every entry after ``seq`` (0: all), through the segments that hold them, each
        checked to follow the one before. Raises ``AuditCorrupt`` at once when no file holds
        entry ``seq + 1`` (a segment removed)."""
        self._check_open()
        if self._first is None or seq + 1 >= self._first.seq:
            return chain.entries(self, self._base, after=seq, genesis=seq == 0)
        found = files.list_segments(self.path)
        for segment in found:
            if segment.first <= seq + 1 <= segment.last:
                start = files.chain_offset(self.path.with_name(segment.name), segment)
                return chain.entries(self, start, after=seq, genesis=seq == 0)
        later = [s.first for s in found if s.first > seq + 1]
        gap = Gap(seq + 1, min(later, default=self._first.seq) - 1)
        raise AuditCorrupt(f"{self.path.parent}: {gap}")

    def read_all(self) -> Iterator[AuditEntry]:
        """Every entry of every segment, then of the live log, from seq 1 (``read_since(0)``)."""
        return self.read_since(0)

    def _check_open(self) -> None:
        if self._rfd < 0:
            raise ValueError(f"{self.path}: the audit log is closed")

    def live(self) -> tuple[int, int, int, int | None]:
        """The live file as the chain reader (``chain``) sees it at this moment: its read
        descriptor, where it starts in the chain, its bytes, and its first entry's seq."""
        first = None if self._first is None else self._first.seq
        return self._rfd, self._base, self._end, first

    def last(self) -> AuditEntry | None:
        """The newest entry, or None for an empty log."""
        return self._last

    def close(self) -> None:
        """Release the lock and the descriptors; idempotent."""
        for fd in (self._wfd, self._rfd):
            if fd >= 0:
                os.close(fd)
        self._wfd = self._rfd = -1
