"""Domain value types shared by the core, the service and the adapters.

Every type here is an immutable value. Times are timezone-aware UTC ``datetime``s; sizes are
bytes; file modification times are integer nanoseconds since the epoch (as ``st_mtime_ns``).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from datetime import datetime


class State(enum.StrEnum):
    """Where a catalogued recording stands."""

    PRESENT = "present"
    ERASED = "erased"
    MISSING = "missing"  # vanished from its source without recd erasing it


class Provenance(enum.StrEnum):
    """Where a classified field came from, highest precedence first (SPEC section 2)."""

    SOURCE = "source"  # the source's fixed `licence`
    PATTERN = "pattern"  # a named group of the source's path pattern
    TAGS = "tags"  # audio tags read with mutagen
    METADATA = "metadata"  # S3 object metadata or tags
    MTIME = "mtime"  # file mtime / S3 LastModified (only for `started`)


class EraseMethod(enum.StrEnum):
    OVERWRITE = "overwrite"
    UNLINK = "unlink"
    S3_DELETE = "s3-delete"


class ErasePattern(enum.StrEnum):
    ZEROS = "zeros"
    RANDOM = "random"


class OnIneffective(enum.StrEnum):
    UNLINK = "unlink"  # unlink and record the erasure as not effective
    REFUSE = "refuse"  # leave the file and record erase.failed


class Mode(enum.StrEnum):
    ENFORCE = "enforce"
    DRY_RUN = "dry-run"


class UnclassifiedPolicy(enum.StrEnum):
    KEEP = "keep"
    DEFAULT = "default"


#: Files are renamed to this prefix plus a random name just before their unlink; sources never
#: index such names, so an erase interrupted between rename and unlink is not a new recording.
ERASE_PREFIX = ".recd-erase-"

#: The fields a classification may carry, in the order `recctl show` prints them.
FIELDS = ("licence", "started", "call_id", "extension", "caller", "callee", "duration", "format")


def recording_id(source: str, location: str) -> str:
    """The stable id of the recording at ``location`` (relative path or key) in ``source``.

    Derived only from where the recording is, so re-indexing finds the same id (SPEC section 2).
    80 bits of SHA-256: a collision among 10 million recordings has odds below 1 in 10^10.
    """
    digest = hashlib.sha256(f"{source}\0{location}".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:20]


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What a scan saw of one regular file, relative to its source root."""

    source: str
    relpath: str  # '/'-separated, no '.', '..' or empty components
    dev: int
    ino: int
    size: int
    mtime_ns: int
    nlink: int = 1
    #: S3: the oldest data version's LastModified (ns), the last resort for ``started``;
    #: None for files (their mtime is used).
    born_ns: int | None = None
    #: Files: the inode's change time and, where the filesystem keeps it, its birth time (ns).
    #: With ``mtime_ns`` they tell a new file that reused an inode number from the one indexed.
    ctime_ns: int | None = None
    btime_ns: int | None = None

    @property
    def stamps(self) -> Stamps:
        return Stamps(self.mtime_ns, self.ctime_ns, self.btime_ns)


@dataclass(frozen=True, slots=True)
class Stamps:
    """The times that identify one life of an inode, as indexed (SPEC section 4).

    ``ctime_ns`` and ``btime_ns`` are None where they were not recorded (rows indexed by an
    older recd, a filesystem without birth times); None is never a difference.
    """

    mtime_ns: int
    ctime_ns: int | None = None
    btime_ns: int | None = None


@dataclass(frozen=True, slots=True)
class Classification:
    """A recording's classified fields and where each came from.

    ``licence`` is None for an unclassified recording. ``started`` is always set (mtime is the
    last resort). ``provenance`` maps each field that is set to its source.
    """

    licence: str | None
    started: datetime
    call_id: str | None = None
    extension: str | None = None
    caller: str | None = None
    callee: str | None = None
    duration: float | None = None
    format: str | None = None
    provenance: dict[str, Provenance] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Recording:
    """One catalogued recording as the catalogue returns it."""

    id: str
    source: str
    relpath: str
    dev: int
    ino: int
    size: int
    mtime_ns: int
    classification: Classification
    deadline: datetime | None  # None: kept until a request or a policy change
    state: State
    first_seen: datetime
    skip_reason: str | None = None  # why the last erase attempt was skipped, if it was
    held: bool = False  # an active legal hold matches it: nothing erases it
    not_before: datetime | None = None  # its last hold's release + holds.release_grace
    ctime_ns: int | None = None  # as indexed; None: not recorded (an older recd, S3)
    btime_ns: int | None = None  # as indexed; None: not recorded or not kept by the filesystem

    @property
    def stamps(self) -> Stamps:
        """The times that identify the indexed life of its inode."""
        return Stamps(self.mtime_ns, self.ctime_ns, self.btime_ns)
