"""What the service needs from the world, as narrow Protocols.

Every implementation of a port passes the one contract suite for it in ``tests/contracts``.
Times are timezone-aware UTC datetimes unless a docstring says otherwise.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

from recd.core.audit import AuditDraft, AuditEntry
from recd.core.holds import Hold
from recd.core.model import EraseMethod, ErasePattern, FileFacts, Recording, Stamps, State
from recd.core.requestinfo import RequestInfo
from recd.core.scope import Scope
from recd.core.segcheck import Prints, Stat

if TYPE_CHECKING:
    from recd.core.erasure import Decision, TargetFacts
    from recd.core.objects import BucketState, ObjectFacts


@dataclass(frozen=True, slots=True)
class Known:
    """What the catalogue already knows of a file, to skip re-classifying unchanged ones."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    state: State
    ctime_ns: int | None = None  # None: not recorded (never a difference)
    btime_ns: int | None = None


@dataclass(frozen=True, slots=True)
class Intent:
    """A durable promise to erase: written before the irreversible step, removed after."""

    id: str
    recording_id: str
    audit_offset: int
    temp_name: str
    plan: dict[str, Any]  # what erase.done will record: method, effective, reason, location...
    created: datetime


@dataclass(frozen=True, slots=True)
class Breaker:
    licence: str
    tripped_at: datetime
    due: int
    total: int
    released_at: datetime | None
    released_by: str | None


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked for a change, from the admin socket's peer credentials (audited)."""

    name: str  # the user name, or "uid <n>" when it has none
    uid: int
    admin: bool  # root, recd's own user, or a member of daemon.admin_group

    @property
    def audit(self) -> dict[str, Any]:
        return {"uid": self.uid}


#: recd itself, for changes it makes on its own (a hold that expires).
RECD = Actor("recd", -1, admin=True)


class RequestState(enum.StrEnum):
    """Where an early-deletion request stands (SPEC section 6)."""

    RECEIVED = "received"  # registered; waits for a second administrator (two-person)
    VERIFIED = "verified"  # approved, or signed by an agent of its licence
    REJECTED = "rejected"
    EXECUTING = "executing"  # a run started and has not finished (it resumes)
    COMPLETED = "completed"  # everything in scope erased or already gone
    PARTIAL = "partial"  # a run finished with recordings held or failed; may be run again


class ItemOutcome(enum.StrEnum):
    """What became of one recording in a request's scope."""

    PENDING = "pending"  # to be erased by the run in progress
    ERASED = "erased"
    HELD = "held"  # a legal hold kept it
    FAILED = "failed"
    GONE = "gone"  # already erased, missing, or never indexed


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """A registered early-deletion request: the document as given and what happened to it."""

    id: str
    licence: str
    state: RequestState
    document: dict[str, Any]
    digest: str  # SHA-256 of the document's canonical JSON
    info: RequestInfo  # registered/approved/signed/rejected/executed: who, when, how
    updated: datetime


@dataclass(frozen=True, slots=True)
class RequestItem:
    """One recording in a request's scope and its outcome (one line of the certificate)."""

    recording_id: str
    outcome: ItemOutcome
    location: str | None = None
    licence: str | None = None
    size: int | None = None
    sha256: str | None = None  # of the content, read just before the erase
    method: str | None = None
    effective: bool | None = None
    ineffective_reason: str | None = None
    time: datetime | None = None
    audit_seq: int | None = None  # the erase.done (or erase.failed) entry
    holds: tuple[str, ...] = ()
    note: str | None = None
    s3: Mapping[str, Any] | None = None  # bucket, key, versions (with SHA-256), confirmation


@dataclass(frozen=True, slots=True)
class Mirrored:
    """The S3 legal holds recd set on one recording's versions (``s3.mirror_legal_holds``):
    each version id with whether recd turned its hold ON (False: it was ON already, someone
    else's, and recd never turns it OFF)."""

    recording_id: str
    key: str
    ino: int  # the recording's fingerprint when mirrored: a new version needs mirroring too
    versions: tuple[tuple[str, bool], ...]


WatchKind = Literal["changed", "deleted", "dir", "overflow"]


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """What a watcher saw: a file closed after writing or moved in (``changed``), removed or
    moved away (``deleted``), a directory that appeared or vanished (``dir``: reconcile that
    subtree), or lost events (``overflow``: reconcile the whole source)."""

    source: str
    relpath: str  # relative to the root, '/'-separated; "" for the root / overflow
    kind: WatchKind
    at: float  # time.time() when the event was received (for the indexing-lag metric)


class Watcher(Protocol):
    """Watches one source's tree and hands ``WatchEvent``s to a sink, from its own thread."""

    def start(self) -> bool:
        """True when the whole tree is watched; False when watching is degraded."""

    @property
    def degraded(self) -> str | None:
        """None while watching; else why not (the tree is then scanned periodically)."""

    def stop(self) -> None: ...


class ObjectStore(Protocol):
    """What an S3 source offers beside erasing: its bucket's settings and object legal holds."""

    def bucket_state(self) -> BucketState:
        """Versioning and Object Lock defaults. Raises ``OSError`` (``S3Error``)."""

    def legal_holds(self, key: str) -> list[tuple[str, bool]]:
        """Every data version of exactly ``key`` and whether its S3 legal hold is ON."""

    def set_legal_hold(self, key: str, version_id: str, on: bool) -> None:
        """Put the S3 legal hold of one version ON or OFF. Raises ``OSError``."""


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall-clock time, timezone-aware UTC."""

    def monotonic(self) -> float:
        """Monotonic seconds, for measuring intervals and detecting wall-clock jumps."""


class ScanReport(Protocol):
    """What a finished scan could not see; files below these directories are not 'missing'."""

    @property
    def unreadable_dirs(self) -> Sequence[str]:
        """Relative paths of directories that could not be listed."""


class Source(Protocol):
    """A local directory tree, walked without following symlinks or crossing filesystems, or
    an S3 bucket (and prefix), listed version by version (``relpath`` is then the key)."""

    name: str

    def scan(self, under: str = "") -> Iterator[FileFacts]:
        """Yield every regular file below the root (or below its subdirectory ``under``);
        after exhaustion ``report`` is final.

        The files of one directory are yielded one after another (the indexer reconciles
        each directory against the catalogue as soon as its last file has gone by).
        """

    @property
    def report(self) -> ScanReport:
        """Problems met by the last ``scan`` (unreadable directories)."""

    def facts(self, relpath: str) -> FileFacts | None:
        """The facts of one regular file, or None if it is gone or not one (never follows a
        symlink, never leaves the root's filesystem)."""

    def open_read(self, relpath: str, dev: int, ino: int) -> IO[bytes]:
        """Open the indexed file read-only without following symlinks.

        Raises ``FileNotFoundError`` if the file is gone or is no longer the same inode.
        """

    def metadata(self, relpath: str) -> Mapping[str, str]:
        """S3: the object's ``x-amz-meta-*`` metadata (prefix removed) and object tags, names
        lower-cased, metadata winning a clash; empty for files. Raises ``OSError``."""


class TagReader(Protocol):
    def read(self, fileobj: IO[bytes], name: str) -> Mapping[str, str]:
        """Audio tags and stream facts of an open file: lower-cased tag names to text values.

        Stream facts use the keys ``duration`` (seconds, as text) and ``format`` (e.g. ``wav``).
        An unreadable or untagged file gives an empty mapping, never an exception.
        """


@dataclass(frozen=True, slots=True)
class AuditExtent:
    """How large the audit log is: the live file, and the closed segments beside it."""

    live_bytes: int
    segments: int


class AuditLog(Protocol):
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


@dataclass(frozen=True, slots=True)
class AuditMark:
    """The last audit entry a catalogue reflects; both None for a catalogue an older recd
    kept (it saw its log, but not where it stood)."""

    seq: int | None
    hash: str | None
    offset: int | None = None  # where the entry after it begins in audit.log, when known


@dataclass(frozen=True, slots=True)
class AuditCheckpoint:
    """How far recd has checked the audit log's chain: the last entry checked (``seq``,
    ``hash``), the chain offset just after it (``offset``) and the SHA-256 (``digest``) of the
    live log's bytes from where it starts in the chain (``start``) to ``offset``, so a later
    check hashes those bytes (fast) instead of parsing every entry again, and still finds any
    change to them. After a rotation (the live log starts elsewhere) the entries from
    ``offset`` are parsed instead: at most the rest of one segment."""

    seq: int
    hash: str
    offset: int
    digest: str
    start: int = 0  # where the live log the digest covers starts in the chain


class Catalogue(Protocol):
    """The index of every recording: facts, classification, deadline, state; intents; breakers.

    Writes are transactions that are durable when the call returns.
    """

    def begin_scan(self, source: str, now: datetime, rule: str) -> bool:
        """Start a scan; returns whether the classification rule changed since the last."""

    def in_dir(self, source: str, directory: str) -> dict[str, Known]:
        """Every recording catalogued in one directory of ``source`` ('' is the root)."""

    def dirs(self, source: str, under: str = "") -> list[str]:
        """The directories of ``source`` that hold present recordings; with ``under``, at
        least those at or below that directory (callers filter: siblings may be listed)."""

    def newest_mtime_ns(self, source: str, limit_ns: int) -> int | None:
        """The newest modification time (ns) of a present recording of ``source`` that is not
        after ``limit_ns``; None when there is none."""

    def upsert(self, rows: Sequence[Recording], now: datetime) -> None:
        """Insert or refresh recordings a scan saw; they become present."""

    def mark_missing(self, ids: Sequence[str]) -> None:
        """Present recordings that are no longer where they were become missing."""

    def mark_dirs_missing(self, source: str, directories: Sequence[str]) -> int:
        """Every present recording in these directories becomes missing; returns how many."""

    def finish_scan(self, source: str, now: datetime) -> None: ...

    def licences(self) -> list[str | None]:
        """Every licence with present recordings (None: unclassified)."""

    def policies(self) -> dict[str | None, str]:
        """The retention rule each licence's stored deadlines were computed under."""

    def set_deadlines(
        self, licence: str | None, policy: str, deadline_of: Callable[[datetime], datetime | None]
    ) -> int:
        """Recompute every present deadline of ``licence`` from its start time."""

    def record_policy(self, licence: str | None, policy: str) -> None:
        """Remember the rule for a licence first seen by a scan (if none is stored yet)."""

    def due_dirs(self, now: datetime) -> list[tuple[str, str]]:
        """``(source, directory)`` of every directory holding a recording due at ``now``."""

    def due_in(
        self, source: str, directory: str, now: datetime, limit: int, after: str = ""
    ) -> list[Recording]:
        """Present recordings of one directory due at ``now``, by location, after ``after``."""

    def counts(self, now: datetime) -> dict[str | None, tuple[int, int]]:
        """Per licence: (present recordings, of which due at ``now``)."""

    def next_deadline(self, after: datetime | None = None) -> datetime | None:
        """The earliest deadline of a present recording (strictly after ``after``, if given)."""

    def get(self, recording_id: str) -> Recording | None: ...

    def set_skip_reason(self, recording_id: str, reason: str | None) -> None: ...

    def add_intents(self, intents: Iterable[Intent]) -> set[str]:
        """Record intents, each only if its recording is still present and not held (checked
        in the same transaction: a hold placed after the plan wins); returns the ids recorded."""

    def pending_intents(self) -> list[Intent]: ...

    def resolve_intents(
        self, erased: Sequence[tuple[str, datetime]], dropped: Sequence[str]
    ) -> None:
        """Mark recordings of ``erased`` intents erased and drop all the named intents."""

    def breakers(self) -> dict[str, Breaker]: ...

    def trip_breaker(self, licence: str, now: datetime, due: int, total: int) -> None: ...

    def release_breaker(self, licence: str, now: datetime, actor: str) -> bool:
        """Let the next sweep erase the licence's due recordings; False if none is tripped."""

    def clear_breaker(self, licence: str) -> None: ...

    def restore_breakers(self, breakers: Sequence[Breaker], rearmed: Sequence[str] = ()) -> None:
        """Store breakers as the audit log has them (a rebuild), each replacing the one of its
        licence, and remove those of ``rearmed``, in one transaction."""

    # -- legal holds --

    def holds(self, *, everything: bool = False) -> list[Hold]:
        """Active holds (with ``everything``, released and expired ones too), oldest first."""

    def hold(self, hold_id: str) -> Hold | None: ...

    def place_hold(self, hold: Hold) -> tuple[Hold, int]:
        """Store a hold (its id is given here) and hold every present recording it matches;
        returns the stored hold and how many present recordings it matches."""

    def release_hold(
        self, hold: Hold, *, at: datetime, by: str, reason: str, expired: bool, not_before: datetime
    ) -> int:
        """End an active hold. Recordings no other active hold matches are held no more and
        not due before ``not_before``; returns how many."""

    def restore_holds(self, holds: Sequence[Hold]) -> int:
        """Store holds as they were, ids and states included (a rebuild from the audit log),
        in one transaction: active ones hold what they match; a released one's ``due_from``
        floors the deadline of what it matches, now and when indexed later. Returns how many
        present recordings are held."""

    def held_count(self, scope: Scope) -> int:
        """Present recordings ``scope`` matches."""

    # -- the audit log it reflects --

    def audit_mark(self) -> AuditMark | None:
        """The last audit entry this catalogue reflects; None if it never saw the log."""

    def set_audit_mark(self, mark: AuditMark) -> None: ...

    def audit_checkpoint(self) -> AuditCheckpoint | None:
        """How far the audit log's chain was checked at the last start; None: never."""

    def set_audit_checkpoint(self, checkpoint: AuditCheckpoint) -> None: ...

    def audit_segments(self) -> Prints | None:
        """The closed audit segments checked at the last start that found nothing (or at the
        last acknowledgement); None before the first such check."""

    def set_audit_segments(self, prints: Prints) -> None: ...

    # -- early-deletion requests --

    def request(self, request_id: str) -> StoredRequest | None: ...

    def requests(self, state: RequestState | None = None) -> list[StoredRequest]: ...

    def put_request(self, request: StoredRequest) -> None:
        """Insert or replace a request."""

    def items(self, request_id: str) -> list[RequestItem]: ...

    def put_items(self, request_id: str, items: Sequence[RequestItem]) -> None:
        """Insert or replace the items of a request."""

    def restore_requests(
        self, requests: Sequence[tuple[StoredRequest, Sequence[RequestItem]]]
    ) -> None:
        """Store requests with their items as the audit log has them (a rebuild), in one
        transaction; a request or item already stored under its id is replaced."""

    def matching(self, scope: Scope, limit: int) -> list[Recording]:
        """Recordings ``scope`` matches, in any state (catalogue order)."""

    # -- S3 legal holds mirrored --

    def mirror_work(self, source: str, limit: int) -> tuple[list[Recording], list[Mirrored]]:
        """Up to ``limit`` each: present held recordings of ``source`` not mirrored (or
        mirrored before a version came), and mirrors of recordings no longer held."""

    def mirrored(self, recording_id: str) -> Mirrored | None: ...

    def set_mirrored(self, m: Mirrored | str) -> None:
        """Store a recording's mirror, or forget it (given its recording id)."""


@dataclass(frozen=True, slots=True)
class ListQuery:
    """Which recordings `recctl ls` wants; filters combine with AND."""

    licence: str | None = None
    unclassified: bool = False
    due_before: datetime | None = None
    state: State | None = State.PRESENT  # None: every state
    limit: int = 1000


@dataclass(frozen=True, slots=True)
class Totals:
    """Present recordings of one licence (None: unclassified)."""

    licence: str | None
    recordings: int
    bytes: int


class CatalogueCopier(Protocol):
    """The catalogue's online backup (``recctl backup``), from a thread other than the writer's."""

    def backup_to(self, dest: Path) -> AuditMark | None:
        """Copy the catalogue as committed at one instant into the new file ``dest``, without
        stopping the writer; the copy's audit mark (None: it has none). Raises StateError."""

    def close(self) -> None: ...


class CatalogueReader(Protocol):
    """Read-only queries on the catalogue, safe to run beside the writer (admin, metrics).

    Every query is bounded by an index or a limit: none counts the whole catalogue.
    """

    def totals(self) -> list[Totals]: ...

    def due_counts(self, now: datetime) -> dict[str | None, int]:
        """Per licence, present recordings whose deadline is at or before ``now``."""

    def overdue(self, before: datetime) -> int:
        """Present recordings whose deadline is before ``before``."""

    def next_deadline(self, after: datetime) -> datetime | None: ...

    def recordings(self, query: ListQuery) -> list[Recording]:
        """Up to ``query.limit`` recordings, soonest deadline first (none last)."""

    def get(self, recording_id: str) -> Recording | None: ...

    def match(self, prefix: str, limit: int = 2) -> list[Recording]:
        """Up to ``limit`` recordings whose id starts with ``prefix``."""

    def breakers(self) -> dict[str, Breaker]: ...

    def scans(self) -> dict[str, tuple[datetime, datetime | None]]:
        """Per source: when its last scan started and finished (None while running)."""

    def held(self) -> int:
        """Present recordings an active hold keeps."""

    def holds(self, *, everything: bool = False) -> list[Hold]: ...

    def hold(self, hold_id: str) -> Hold | None: ...

    def held_count(self, scope: Scope) -> int: ...

    def requests(self, state: RequestState | None = None) -> list[StoredRequest]: ...

    def request(self, request_id: str) -> StoredRequest | None: ...

    def items(self, request_id: str) -> list[RequestItem]: ...

    def close(self) -> None: ...


class Telemetry(Protocol):
    """Events counted where they happen (metrics); the no-op default is ``NO_TELEMETRY``."""

    def erased(self, reason: str, result: str, size: int, lag: float | None) -> None:
        """One erasure: ``reason`` retention|request, ``result`` done|failed|skipped|dry-run;
        ``lag`` is seconds from the deadline to the erasure (None when unknown)."""

    def indexed(self, lag: float) -> None:
        """A recording indexed ``lag`` seconds after it was last written."""

    def watch_overflow(self, source: str) -> None:
        """Events of ``source`` may have been lost; a full reconciliation follows."""

    def object_error(self, source: str, code: str) -> None:
        """An S3 store refused to delete one version (``code``: AccessDenied, SlowDown...)."""

    def index_error(self, source: str) -> None:
        """One file of ``source`` could not be classified or stored; it was skipped."""


class _NoTelemetry:
    def erased(self, reason: str, result: str, size: int, lag: float | None) -> None:
        pass

    def indexed(self, lag: float) -> None:
        pass

    def watch_overflow(self, source: str) -> None:
        pass

    def object_error(self, source: str, code: str) -> None:
        pass

    def index_error(self, source: str) -> None:
        pass


NO_TELEMETRY: Telemetry = _NoTelemetry()


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
    def facts(self) -> TargetFacts | ObjectFacts: ...

    @property
    def details(self) -> Mapping[str, Any]:
        """What the erase entries record besides the common details: for S3 the bucket, key
        and every version and delete marker to delete (after ``digest``, with their SHA-256);
        empty for files."""

    def close(self) -> None: ...


class EraseOutcome(Protocol):
    method: EraseMethod
    effective: bool
    ineffective_reason: str | None
    bytes_overwritten: int
    details: Mapping[str, Any]  # recorded in erase.done (S3: the confirmation listing)


class Eraser(Protocol):
    """Erases files of one source root (SPEC section 4)."""

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

    def locate(self, relpath: str, temp_name: str, dev: int, ino: int) -> str:
        """Where an interrupted erase left the inode: "original", "temp" or "gone"."""
