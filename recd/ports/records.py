"""The records the ports exchange: frozen dataclasses, no behaviour.

What the catalogue stores and gives back beside ``recd.core.model.Recording`` (intents,
breakers, requests and their items, S3 mirrors, audit marks and checkpoints), and who asked
(``Actor``). Every datetime is timezone-aware UTC. The request's state enums, ``RequestState``
and ``ItemOutcome``, live in ``recd.core.requeststate`` (the pure replay needs them too). This
module imports only ``recd.core``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from recd.core.model import State
from recd.core.requestinfo import RequestInfo
from recd.core.requeststate import RequestState


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
    def audit(self) -> dict[str, int]:
        return {"uid": self.uid}


#: recd itself, for changes it makes on its own (a hold that expires).
RECD = Actor("recd", -1, admin=True)


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
class Mirrored:
    """The S3 legal holds recd set on one recording's versions (``s3.mirror_legal_holds``):
    each version id with whether recd turned its hold ON (False: it was ON already, someone
    else's, and recd never turns it OFF)."""

    recording_id: str
    key: str
    ino: int  # the recording's fingerprint when mirrored: a new version needs mirroring too
    versions: tuple[tuple[str, bool], ...]


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
