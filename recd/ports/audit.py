"""The audit log port: hash-chained entries appended durably, read back checked.

``AuditLog`` is the file of one state directory and the closed segments rotated beside it
(``recd.adapters.auditlog``). ``append`` returns only once the entries are on stable storage;
every read checks each entry's seal and, unless told, its link to the one before. Offsets are
bytes in the whole chain (closed segments included); times are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from recd.core.audit import AuditDraft, AuditEntry
from recd.core.segcheck import Stat


@dataclass(frozen=True, slots=True)
class AuditExtent:
    """How large the audit log is: the live file, and the closed segments beside it."""

    live_bytes: int
    segments: int


class AuditLog(Protocol):
    """The hash-chained audit log of one state directory (SPEC section 7)."""

    @property
    def failure(self) -> OSError | None:
        """Why the last append failed (the log cannot be written: erasing pauses); None once
        one succeeds."""

    def append(self, drafts: Sequence[AuditDraft], now: datetime) -> list[AuditEntry]:
        """Seal and append entries; they are on stable storage (fsync) when this returns."""

    def end_offset(self) -> int:
        """The offset in the whole chain (closed segments included) of the next entry."""

    def read_from(self, offset: int, *, skip_damaged: bool = False) -> Iterator[AuditEntry]:
        """Entries from ``offset`` (an earlier ``end_offset()``) to the end, across rotations,
        each checked to follow the one before; a damaged one raises ``AuditCorrupt``, or with
        ``skip_damaged`` is left out (and links are not checked: the caller does)."""

    def read_since(self, seq: int) -> Iterator[AuditEntry]:
        """Every entry after ``seq``, through every segment that holds one, each checked to
        follow the one before (``AuditCorrupt`` otherwise, or for a missing segment)."""

    def read_all(self) -> Iterator[AuditEntry]:
        """The whole chain from seq 1 (``read_since(0)``): every segment, then the live log."""

    def extent(self) -> AuditExtent:
        """The live log's bytes and the closed segments; safe to call from any thread."""

    def segment_files(self) -> list[Stat]:
        """The closed segments beside the live log, in chain order, each as ``stat`` sees it
        now (inode, size, ctime)."""

    def read_segment(self, name: str) -> Iterator[tuple[AuditEntry, int]]:
        """The entries of closed segment ``name`` alone (uncompressed), each with the bytes
        read through its line; each parsed and sealed right (``AuditCorrupt`` otherwise), its
        links left to the caller."""

    def live_start(self) -> int:
        """Where the live log starts in the chain (0 before the first rotation)."""

    def digests(self, ends: Sequence[int]) -> list[str]:
        """SHA-256 (hex) of the live log's bytes from ``live_start()`` to each chain offset of
        ``ends`` (ascending, none before ``live_start()``), in one pass."""

    def last(self) -> AuditEntry | None:
        """The newest entry, or None for an empty log."""

    def close(self) -> None:
        """Release the log's lock and descriptors; idempotent."""
