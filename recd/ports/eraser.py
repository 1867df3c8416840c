"""How recordings are erased: the ``Eraser`` port (a directory root's, or an S3 source's), what
it prepares and returns, and the errors that say why an erase did not happen.

An eraser touches nothing before ``erase``: ``prepare`` opens and checks (a file the catalogue
indexed differently is ``Changed``, one no longer there ``Gone``), ``erase`` is the irreversible
step, ``sync`` makes the directory changes durable. Every method of one eraser runs on the
daemon's single writer thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from recd.core.model import EraseMethod, ErasePattern, Stamps

if TYPE_CHECKING:
    from recd.core.erasure import Decision, TargetFacts
    from recd.core.objects import ObjectFacts

#: Where an interrupted erase left what it was erasing (``Eraser.locate``): still at its
#: original name, at the erase's temp name, or neither (the erase completed).
Whereabouts = Literal["original", "temp", "gone"]


class EraseError(Exception):
    """An erase did not happen or did not complete; ``reason`` says why in one line.

    ``codes`` counts the S3 error codes behind it (``{"AccessDenied": 2}``), for metrics."""

    def __init__(self, reason: str, codes: Mapping[str, int] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.codes: Mapping[str, int] = codes or {}


class Gone(EraseError):
    """The file is no longer there (or no longer reachable below the root)."""


class Refused(EraseError):
    """The file is there but recd will not touch it (symlink, not regular, replaced...)."""


class Changed(Refused):
    """The inode at the name is not the one indexed as it was indexed (another size, mtime,
    ctime or birth time: written to, or a new file that reused the inode number). Nothing was
    touched; the caller re-indexes the file, which then has its own deadline."""


@dataclass(frozen=True, slots=True)
class EraseTarget:
    """A catalogued recording to prepare for erasure (``size`` None: do not check it)."""

    relpath: str
    dev: int
    ino: int
    size: int | None
    stamps: Stamps | None = None  # None: do not check the times (recovery, S3)


@dataclass(frozen=True, slots=True)
class EraseJob:
    """One prepared erase of a batch, as ``Eraser.erase_many`` takes it."""

    prepared: PreparedErase
    decision: Decision
    temp_name: str


class PreparedErase(Protocol):
    """A file opened and checked for erasure (holds descriptors until ``close``), or an S3
    key whose versions were listed."""

    @property
    def facts(self) -> TargetFacts | ObjectFacts:
        """What ``recd.core.erasure.decide`` chooses the method from (file system, links,
        age), or an S3 key's versions."""

    @property
    def details(self) -> Mapping[str, Any]:
        """What the erase entries record besides the common details: for S3 the bucket, key
        and every version and delete marker to delete (after ``digest``, with their SHA-256);
        empty for files."""

    def close(self) -> None:
        """Release the descriptors (files); idempotent."""


class EraseOutcome(Protocol):
    """What one completed erase did, as ``erase.done`` records it."""

    method: EraseMethod
    effective: bool
    ineffective_reason: str | None
    bytes_overwritten: int
    details: Mapping[str, Any]  # recorded in erase.done (S3: the confirmation listing)


class Eraser(Protocol):
    """Erases files of one source root, or keys of one S3 source (SPEC section 4)."""

    @property
    def batch(self) -> int:
        """Recordings per audited sweep batch: a few hundred files (two descriptors each), a
        thousand S3 keys (one listing walk, DeleteObjects requests of 1,000 versions)."""

    @property
    def blocked(self) -> str | None:
        """Why nothing can be erased by this eraser now (a directory root that is read-only
        or not writable to recd, found at start or reload), in a few words; else None. A sweep
        keeps such recordings without trying them."""

    def prepare(
        self, relpath: str, dev: int, ino: int, size: int | None, stamps: Stamps | None = None
    ) -> PreparedErase:
        """Open the indexed file safely and gather the facts ``decide`` needs.

        Raises ``Gone`` or ``Refused`` (``Changed`` when the inode differs from what was
        indexed in size or ``stamps``); touches nothing. ``size`` None skips the size check
        and ``stamps`` None the times (recovery of an erase that had already truncated the
        file).
        """

    def prepare_many(
        self, targets: Sequence[EraseTarget]
    ) -> list[PreparedErase | EraseError | OSError]:
        """``prepare`` for a batch, in order; each failure (``Gone``, ``Refused``, another
        ``EraseError``, or an ``OSError`` such as an unreadable directory) is returned in its
        place. An S3 eraser lists the batch's keys in one walk."""

    def erase(
        self,
        prepared: PreparedErase,
        decision: Decision,
        *,
        pattern: ErasePattern,
        verify: bool,
        temp_name: str,
    ) -> EraseOutcome:
        """The irreversible step. Raises ``EraseError`` when it did not complete."""

    def erase_many(
        self, jobs: Sequence[EraseJob], *, pattern: ErasePattern, verify: bool
    ) -> list[EraseOutcome | EraseError]:
        """``erase`` for a batch, in order; each failure is returned in its place (an
        ``EraseError``; never raises one). An S3 eraser deletes in DeleteObjects requests of
        up to 1,000 versions and confirms with one listing that nothing of the batch is left."""

    def digest(self, prepared: PreparedErase) -> str:
        """SHA-256 (hex) of the prepared file's content, read from the checked inode.

        Raises ``EraseError`` (``Gone``/``Refused``) if it changed since ``prepare``."""

    def sync(self) -> None:
        """Flush every directory changed since the last call."""

    def locate(self, relpath: str, temp_name: str, dev: int, ino: int) -> Whereabouts:
        """Where an interrupted erase left the inode: "original", "temp" or "gone"."""

    def close(self) -> None:
        """Release what the eraser holds (directories not yet synced, without flushing them:
        nothing was claimed of them); idempotent."""
