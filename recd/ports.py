"""What the service needs from the world, as narrow Protocols.

Every implementation of a port passes the one contract suite for it in ``tests/contracts``.
Times are timezone-aware UTC datetimes unless a docstring says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import IO, Protocol

from recd.core.audit import AuditDraft, AuditEntry
from recd.core.model import FileFacts


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall-clock time, timezone-aware UTC."""

    def monotonic(self) -> float:
        """Monotonic seconds, for measuring intervals and detecting wall-clock jumps."""


class ScanReport(Protocol):
    """What a finished scan could not see; files below these directories are not 'missing'."""

    unreadable_dirs: Sequence[str]  # relpaths of directories that could not be listed


class Source(Protocol):
    """A local directory tree, walked without following symlinks or crossing filesystems."""

    name: str

    def scan(self) -> Iterator[FileFacts]:
        """Yield every regular file below the root; after exhaustion ``report`` is final."""

    @property
    def report(self) -> ScanReport:
        """Problems met by the last ``scan`` (unreadable directories)."""

    def open_read(self, relpath: str, dev: int, ino: int) -> IO[bytes]:
        """Open the indexed file read-only without following symlinks.

        Raises ``FileNotFoundError`` if the file is gone or is no longer the same inode.
        """


class TagReader(Protocol):
    def read(self, fileobj: IO[bytes], name: str) -> Mapping[str, str]:
        """Audio tags and stream facts of an open file: lower-cased tag names to text values.

        Stream facts use the keys ``duration`` (seconds, as text) and ``format`` (e.g. ``wav``).
        An unreadable or untagged file gives an empty mapping, never an exception.
        """


class AuditLog(Protocol):
    def append(self, drafts: Sequence[AuditDraft], now: datetime) -> list[AuditEntry]:
        """Seal and append entries; they are on stable storage (fsync) when this returns."""

    def end_offset(self) -> int:
        """The byte offset at which the next entry will be written."""

    def read_from(self, offset: int) -> Iterator[AuditEntry]:
        """Entries from byte ``offset`` (an earlier ``end_offset()``) to the end."""

    def last(self) -> AuditEntry | None:
        """The newest entry, or None for an empty log."""
