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
  log's size); checking the whole chain is ``recctl audit verify``'s job.
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

from recd.adapters import _auditfiles as files
from recd.adapters._closing import Closing
from recd.configtypes import AuditSettings
from recd.core.audit import GENESIS, AuditDraft, AuditEntry, link_problem, parse_sealed, seal_line
from recd.core.auditsegments import NEW, ROTATED, Segment, first_gap, segment_name
from recd.errors import AuditCorrupt, StateError
from recd.ports import AuditExtent

logger = logging.getLogger(__name__)

_CHUNK = files.CHUNK
_MODE = files.MODE
_OPEN_TRIES = 3  # a rotation by another process between open and lock is retried


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
    files.fsync_dir(path.parent)


def _lock(path: Path) -> tuple[int, int]:
    """The append and read descriptors of ``path``, locked; (-1, -1) if a rotation replaced
    the file between its open and its lock (try again)."""
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
    except BaseException:
        os.close(wfd)
        if rfd >= 0:
            os.close(rfd)
        raise
    if not os.path.samestat(os.fstat(wfd), os.fstat(rfd)):  # pragma: no cover (race)
        os.close(wfd)
        os.close(rfd)
        return -1, -1
    return wfd, rfd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    written = 0
    while written < len(view):
        written += os.write(fd, view[written:])


def _first_line(fd: int, end: int) -> bytes:
    """The first line of the first ``end`` bytes (``end`` is at a line's end)."""
    parts: list[bytes] = []
    pos = 0
    while pos < end:
        chunk = _pread_exact(fd, pos, min(end, pos + _CHUNK))
        cut = chunk.find(b"\n")
        if cut >= 0:
            parts.append(chunk[: cut + 1])
            break
        parts.append(chunk)
        pos += len(chunk)
    return b"".join(parts)


class _Span:
    """One closed segment being read: where it lies in the chain, and a reader of its bytes."""

    def __init__(self, row: tuple[int, int, int, Path], pos: int) -> None:
        self.start, self.stop, self.following, self.where = row
        self._reader = files.lines_of(self.where, pos - self.start)

    @classmethod
    def at(cls, table: Sequence[tuple[int, int, int, Path]], pos: int, directory: Path) -> _Span:
        """The segment of ``table`` (``FileAuditLog._table``) holding chain offset ``pos``."""
        for row in table:
            if row[0] <= pos < row[2]:
                return cls(row, pos)
        raise AuditCorrupt(
            f"{directory}: no segment holds byte {pos} of the audit chain (a segment removed?)"
        )

    def read(self, pos: int) -> bytes:
        """The next bytes, up to where the next file starts; b"" at the end of a segment whose
        end is unknown (``stop`` -1)."""
        chunk = next(self._reader, b"")
        if self.stop < 0:
            return chunk
        if not chunk:
            raise AuditCorrupt(
                f"{self.where}: ends at byte {pos - self.start}, before the "
                f"{self.stop - self.start} bytes the next file says it holds "
                "(changed by another program?)"
            )
        return chunk[: self.stop - pos]


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
        its last complete entry is damaged, or it is missing beside its segments. (A damaged
        first entry is left for ``recctl audit verify`` to report; the log is not rotated.)
        """
        try:
            return cls._open(path, now, settings or AuditSettings())
        except OSError as exc:
            raise StateError(f"{path}: cannot open the audit log: {exc.strerror}") from exc

    @classmethod
    def _open(cls, path: Path, now: datetime, settings: AuditSettings) -> FileAuditLog:
        for _ in range(_OPEN_TRIES):
            wfd, rfd = _lock(path)
            if wfd >= 0:
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
        if size and _pread_exact(rfd, size - 1, size) != b"\n":
            end = _line_start(rfd, size)
        last = first = None
        if end:
            try:
                last = parse_sealed(_pread_exact(rfd, _line_start(rfd, end - 1), end))
            except ValueError as exc:
                raise StateError(
                    f"{path}: the last entry is damaged ({exc}); "
                    f"run `recctl audit verify --file {path}` to find the first bad entry"
                ) from None
            with contextlib.suppress(ValueError):  # verify's to report; rotation waits
                first = parse_sealed(_first_line(rfd, end))
        log = cls(path, wfd, rfd, end, last, settings)
        log._first = first
        log._first_damaged = bool(end) and first is None
        log._segments, log._base = cls._place(path, first)
        if end < size:
            torn = {"offset": end, "torn_bytes": size - end, "torn_sha256": _sha256(rfd, end, size)}
            os.ftruncate(wfd, end)
            os.fsync(wfd)
            log.append([AuditDraft("audit.recovered", str(path), torn)], now)
        return log

    @staticmethod
    def _place(path: Path, first: AuditEntry | None) -> tuple[int, int]:
        """The segments beside the live log, and where it starts in the chain."""
        found = files.list_segments(path)
        offset = None if first is None else first.details.get("offset")
        if first is not None and first.action == ROTATED and type(offset) is int:
            return len(found), offset
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
            _write_all(self._wfd, data)
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
                f"{self.path}: an append failed and could not be undone ({exc.strerror}); "
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
        linked = renamed = False
        try:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            fds.append(os.open(prepared, flags, _MODE))
            fcntl.flock(fds[0], fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.fchmod(fds[0], _MODE)
            fds.append(os.open(prepared, os.O_RDONLY | os.O_CLOEXEC))
            _write_all(fds[0], line)
            os.fsync(fds[0])
            os.link(self.path, segment)
            linked = True
            files.fsync_dir(self.path.parent)
            os.rename(prepared, self.path)
            renamed = True
        except BaseException as exc:
            if not renamed:
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
                    "append", self.path, name, exc.strerror or exc,
                )  # fmt: skip
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
            logger.warning("audit log rotated, but %s: %s", self.path.parent, exc.strerror)
        logger.info("audit log rotated: entries %d-%d closed into %s", first, last, segment)
        if self._settings.compress == "gzip":
            self._compress(segment)

    def _compress(self, segment: Path) -> None:
        try:
            packed = files.compress(segment)
        except OSError as exc:
            logger.warning(
                "cannot compress audit log segment %s: %s; it stays uncompressed until recd "
                "starts again", segment, exc.strerror or exc,
            )  # fmt: skip
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

    def read_from(self, offset: int) -> Iterator[AuditEntry]:
        """Entries from ``offset`` (an earlier ``end_offset()``) to the current end, through
        segments closed since.

        Streams with bounded memory (one chunk and one line). Raises ``ValueError`` at once for
        an offset that is not the start of an entry; the iterator raises ``AuditCorrupt`` for an
        entry that does not parse or check, or does not follow the one before.
        """
        self._check_open()
        end = self.end_offset()
        if not 0 <= offset <= end:
            raise ValueError(f"offset {offset} is outside the audit log (0 to {end})")
        if offset > self._base:
            before = _pread_exact(self._rfd, offset - self._base - 1, offset - self._base)
        elif 0 < offset < self._base:
            before = next(self._chunks(offset - 1), (self.path, 0, 0, b""))[3][:1]
        else:
            before = b"\n"
        if before != b"\n":
            raise ValueError(f"offset {offset} is not the start of an audit entry")
        return self._entries(offset)

    def read_since(self, seq: int) -> Iterator[AuditEntry]:
        """Every entry after ``seq`` (0: all), through the segments that hold them, each
        checked to follow the one before. Raises ``AuditCorrupt`` at once when no file holds
        entry ``seq + 1`` (a segment removed)."""
        self._check_open()
        if self._first is None or seq + 1 >= self._first.seq:
            return self._entries(self._base, after=seq, genesis=seq == 0)
        found = files.list_segments(self.path)
        for segment in found:
            if segment.first <= seq + 1 <= segment.last:
                start = files.chain_offset(self.path.with_name(segment.name), segment)
                return self._entries(start, after=seq, genesis=seq == 0)
        later = [s.first for s in found if s.first > seq + 1]
        missing = min(later, default=self._first.seq) - 1
        gap = first_gap([Segment(missing + 1, missing + 1, "")], seq + 1)
        raise AuditCorrupt(f"{self.path.parent}: {gap}")

    def read_all(self) -> Iterator[AuditEntry]:
        """Every entry of every segment, then of the live log, from seq 1 (``read_since(0)``)."""
        return self.read_since(0)

    def _check_open(self) -> None:
        if self._rfd < 0:
            raise ValueError(f"{self.path}: the audit log is closed")

    def _table(self) -> list[tuple[int, int, int, Path]]:
        """(start, end, next, path) in the chain of each closed segment on disk: ``end`` is
        where the next file starts (``next``) if it continues the segment's sequence numbers,
        else unknown (-1: the segment is read to its end, and the reader goes on at ``next``)."""
        found = files.list_segments(self.path)
        starts = [files.chain_offset(self.path.with_name(s.name), s) for s in found]
        table = []
        for i, segment in enumerate(found):
            after = found[i + 1].first if i + 1 < len(found) else self._first_seq()
            following = starts[i + 1] if i + 1 < len(found) else self._base
            end = following if after == segment.last + 1 else -1
            table.append((starts[i], end, following, self.path.with_name(segment.name)))
        return table

    def _first_seq(self) -> int | None:
        return None if self._first is None else self._first.seq

    def _live_chunk(self, pos: int) -> bytes:
        """Bytes of the live log from chain offset ``pos`` (b"" at its end)."""
        local = pos - self._base
        if local >= self._end:
            return b""
        chunk = os.pread(self._rfd, min(_CHUNK, self._end - local), local)
        if not chunk:
            raise AuditCorrupt(
                f"{self.path}: ends at byte {local}, before the {self._end} bytes recd "
                "wrote (changed by another program?)"
            )
        return chunk

    def _chunks(self, pos: int) -> Iterator[tuple[Path, int, int, bytes]]:
        """(file, where the file starts in the chain, where the bytes start, bytes) from chain
        offset ``pos`` to the end; the file is looked up again at each chunk, so a rotation
        meanwhile is followed."""
        table: list[tuple[int, int, int, Path]] | None = None
        span: _Span | None = None
        while True:
            if pos >= self._base:
                chunk = self._live_chunk(pos)
                if not chunk:
                    return
                yield self.path, self._base, pos, chunk
                pos += len(chunk)
                continue
            if span is None:
                table = self._table() if table is None or pos >= table[-1][2] else table
                span = _Span.at(table, pos, self.path.parent)
            chunk = span.read(pos)
            if chunk:
                yield span.where, span.start, pos, chunk
                pos += len(chunk)
            else:  # the segment's end (a gap after it: the next file's first entry shows it)
                pos = span.following
            if pos in (span.stop, span.following):
                span = None

    def _entries(
        self, offset: int, *, after: int = 0, genesis: bool = False
    ) -> Iterator[AuditEntry]:
        pending = b""
        current: Path | None = None
        current_start = 0
        line_at = offset  # in the chain
        before: AuditEntry | None = None
        for where, start, at, chunk in self._chunks(offset):
            if where != current:
                if pending:
                    raise AuditCorrupt(
                        f"{current}: entry at byte {line_at - current_start}: no newline at "
                        "the end of the file (changed by another program?)"
                    )
                current, current_start, line_at = where, start, at
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                try:
                    entry = parse_sealed(line + b"\n")
                except ValueError as exc:
                    raise AuditCorrupt(f"{where}: entry at byte {line_at - start}: {exc}") from None
                problem = self._follows(entry, before, genesis, first=line_at == start)
                if problem is not None:
                    raise AuditCorrupt(f"{where}: entry at byte {line_at - start}: {problem}")
                line_at += len(line) + 1
                before = entry
                if entry.seq > after:
                    yield entry
        if pending:
            raise AuditCorrupt(
                f"{current}: entry at byte {line_at - current_start}: no newline where recd wrote "
                "one (changed by another program?)"
            )

    @staticmethod
    def _follows(
        entry: AuditEntry, before: AuditEntry | None, genesis: bool, *, first: bool
    ) -> str | None:
        """Why ``entry`` does not follow ``before`` (the start of the chain when ``genesis``)."""
        if before is None:
            return link_problem(entry, 0, GENESIS) if genesis else None
        if first and entry.seq > before.seq + 1:
            gap = first_gap([Segment(entry.seq, entry.seq, "")], before.seq + 1)
            return str(gap)
        return link_problem(entry, before.seq, before.hash)

    def last(self) -> AuditEntry | None:
        """The newest entry, or None for an empty log."""
        return self._last

    def close(self) -> None:
        """Release the lock and the descriptors; idempotent."""
        for fd in (self._wfd, self._rfd):
            if fd >= 0:
                os.close(fd)
        self._wfd = self._rfd = -1
