"""Reading the audit chain by offset across its files: every closed segment, then the live log
(``recd.adapters.auditlog.log`` only).

An offset counts bytes in the whole chain: each segment's (uncompressed) bytes, then the live
log's. Where each segment starts comes from its first entry (``audit.rotated``; 0 for the first
segment); where the live log starts, from the log (``Live.live``), asked again at each chunk, so
a reader follows a rotation that happens while it reads: the bytes it had not yet read of the
old live file are then read from the segment it became.

Every entry is checked as it is read: its own hash and form (``parse_sealed``) and its link to
the entry before (seq and prev). A file that does not continue the one before it is reported at
its first entry: a gap when entries are missing between them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from recd.adapters.auditlog import files
from recd.core.audit import GENESIS, AuditEntry, link_problem, parse_sealed
from recd.core.auditsegments import Gap
from recd.errors import AuditCorrupt

#: (start, end, next, path) of a closed segment in the chain; ``end`` -1 when unknown.
Row = tuple[int, int, int, Path]


class Live(Protocol):
    """The live log as the reader needs it."""

    path: Path

    def live(self) -> tuple[int, int, int, int | None]:
        """(read descriptor, where the live file starts in the chain, its bytes, its first
        entry's seq or None when it is empty)."""


class _Span:
    """One closed segment being read: where it lies in the chain, and a reader of its bytes."""

    def __init__(self, row: Row, pos: int) -> None:
        self.start, self.stop, self.following, self.where = row
        self._reader = files.lines_of(self.where, pos - self.start)

    @classmethod
    def at(cls, table: Sequence[Row], pos: int, directory: Path) -> _Span:
        """The segment of ``table`` holding chain offset ``pos``."""
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
        if not chunk:  # its real length: a reader that began past its end read nothing
            size = sum(len(part) for part in files.lines_of(self.where, 0))
            raise AuditCorrupt(
                f"{self.where}: ends at byte {size}, before the "
                f"{self.stop - self.start} bytes the next file says it holds "
                "(changed by another program?)"
            )
        return chunk[: self.stop - pos]


def _table(log: Live) -> list[Row]:
    """A row for each closed segment on disk: ``end`` is where the next file starts (``next``)
    if it continues the segment's sequence numbers, else unknown (-1: the segment is read to
    its end, and the reader goes on at ``next``)."""
    _, base, _, live_first = log.live()
    found = files.list_segments(log.path)
    starts = [files.chain_offset(log.path.with_name(s.name), s) for s in found]
    table = []
    for i, segment in enumerate(found):
        after = found[i + 1].first if i + 1 < len(found) else live_first
        following = starts[i + 1] if i + 1 < len(found) else base
        end = following if after == segment.last + 1 else -1
        table.append((starts[i], end, following, log.path.with_name(segment.name)))
    return table


def _live_chunk(log: Live, pos: int) -> bytes:
    """Bytes of the live log from chain offset ``pos`` (b"" at its end)."""
    fd, base, size, _ = log.live()
    local = pos - base
    if local >= size:
        return b""
    chunk = os.pread(fd, min(files.CHUNK, size - local), local)
    if not chunk:
        raise AuditCorrupt(
            f"{log.path}: ends at byte {local}, before the {size} bytes recd wrote "
            "(changed by another program?)"
        )
    return chunk


def chunks(log: Live, pos: int) -> Iterator[tuple[Path, int, int, bytes]]:
    """(file, where the file starts in the chain, where the bytes start, bytes) from chain
    offset ``pos`` to the end; the file is looked up again at each chunk."""
    table: list[Row] | None = None
    span: _Span | None = None
    while True:
        base = log.live()[1]
        if pos >= base:
            chunk = _live_chunk(log, pos)
            if not chunk:
                return
            yield log.path, base, pos, chunk
            pos += len(chunk)
            continue
        if span is None:
            table = _table(log) if table is None or pos >= table[-1][2] else table
            span = _Span.at(table, pos, log.path.parent)
        chunk = span.read(pos)
        if chunk:
            yield span.where, span.start, pos, chunk
            pos += len(chunk)
        else:  # the segment's end (a gap after it: the next file's first entry shows it)
            pos = span.following
        if pos in (span.stop, span.following):
            span = None


def entries(
    log: Live, offset: int, *, after: int = 0, genesis: bool = False, lenient: bool = False
) -> Iterator[AuditEntry]:
    """The entries from chain offset ``offset`` (the start of one) on, those after seq
    ``after`` yielded; with ``genesis`` the first must be the start of the chain. With
    ``lenient`` a line that does not parse is left out and links are not checked."""
    pending = b""
    current: Path | None = None
    current_start = 0
    line_at = offset  # in the chain
    before: AuditEntry | None = None
    for where, start, at, chunk in chunks(log, offset):
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
                if lenient:
                    line_at += len(line) + 1
                    continue
                raise AuditCorrupt(f"{where}: entry at byte {line_at - start}: {exc}") from None
            problem = None if lenient else _follows(entry, before, genesis, first=line_at == start)
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


def _follows(
    entry: AuditEntry, before: AuditEntry | None, genesis: bool, *, first: bool
) -> str | None:
    """Why ``entry`` does not follow ``before`` (the start of the chain when ``genesis``)."""
    if before is None:
        return link_problem(entry, 0, GENESIS) if genesis else None
    if first and entry.seq > before.seq + 1:
        return str(Gap(before.seq + 1, entry.seq - 1))
    return link_problem(entry, before.seq, before.hash)
