"""The results of the daemon's replies as recctl reads them: one ``TypedDict`` per shape that
``recd.protocol`` documents, so the renderers say which fields they read and of what type.

A reply arrives as JSON; ``recd.cli.kit`` checks that its result is an object or an array and
then names it with one of these types, once, where it is decoded. That is a promise about the
daemon, not a check: a field missing or of another type still raises KeyError, TypeError or
ValueError inside ``recd.cli.kit.rendered``, which reports the reply as one this recctl cannot
read. ``NotRequired`` marks the fields an older daemon leaves out. ``tests/cli/test_replies.py``
holds the canned replies of recctl's tests to the real daemon's shapes.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

# --- status, ls, show, policy, scan, breaker ------------------------------------------------------


class ClockGuard(TypedDict):
    paused: bool
    reason: str | None


class AuditLogState(TypedDict):
    writable: bool
    problem: str | None


class AuditCheck(TypedDict):
    paused: bool
    problem: str | None


class CatalogueState(TypedDict):
    reachable: bool
    problem: str | None


class SourceStatus(TypedDict):
    name: str
    type: str
    watch: str
    scanning: bool
    last_scan: str | None
    scan_seconds: float | None
    unwritable: str | None  # why recd cannot write the root; nothing is erased there
    #: served, not-listed (its nodes leave this node out), elsewhere (another node serves it,
    #: one at a time) or unknown (not asked yet); absent from an older daemon's reply
    served: NotRequired[str]


class LicenceStatus(TypedDict):
    licence: str | None
    recordings: int
    bytes: int
    due: int


class Status(TypedDict):
    version: str
    node: NotRequired[str]  # daemon.node; absent from an older daemon's reply
    mode: str
    pid: int
    started: str
    recordings: int
    bytes: int
    unclassified: int
    overdue: int
    next_deadline: str | None
    breaker: list[str]
    clock_guard: ClockGuard
    audit_log: NotRequired[AuditLogState]
    audit_check: NotRequired[AuditCheck]
    catalogue: NotRequired[CatalogueState]  # only while its database cannot be reached
    sources: list[SourceStatus]
    licences: list[LicenceStatus]


class Recording(TypedDict):
    id: str
    source: str
    location: str
    licence: str | None
    started: str | None
    deadline: str | None
    size: int
    held: bool
    state: str
    skip_reason: NotRequired[str | None]
    not_before: NotRequired[str | None]


#: One classified field of ``show``: its value (any JSON: text, a number, a list of parties)
#: and where it came from.
Field = TypedDict("Field", {"value": Any, "from": NotRequired[str]})


class Retention(TypedDict):
    period: str
    rule: str
    deadline: NotRequired[str | None]


class RecordingDetail(Recording):
    fields: NotRequired[dict[str, Field]]
    retention: NotRequired[Retention]
    first_seen: NotRequired[str | None]
    mtime: NotRequired[str | None]
    dev: NotRequired[int | None]
    ino: NotRequired[int | None]


class Policy(TypedDict):
    licence: str | None
    name: str | None
    retention: str
    rule: str
    recordings: int
    breaker: bool


class Scan(TypedDict):
    source: str
    files: int
    new: int
    changed: int
    missing: int
    seconds: float


class Breaker(TypedDict):
    licence: str
    tripped_at: str
    due: int
    total: int
    released_at: str | None
    released_by: str | None


class BreakerReleased(TypedDict):
    licence: str
    due: int


class ClockConfirmed(TypedDict):
    wall: str
    problem: str | None


class AuditAcknowledged(TypedDict):
    seq: int
    problem: str | None


# --- holds and requests --------------------------------------------------------------------------

#: A hold's or request's scope; ``all`` only on a request for a whole licence.
Scope = TypedDict(
    "Scope",
    {
        "recordings": list[str],
        "call_ids": list[str],
        "party": str | None,
        "from": str | None,
        "to": str | None,
        "all": NotRequired[bool],
    },
)


class Hold(TypedDict):
    id: str
    licence: str
    case: str
    reason: str
    scope: Scope
    whole_licence: bool
    state: str
    placed_at: str
    placed_by: str
    until: str | None
    released_at: str | None
    released_by: str | None
    release_reason: str | None
    held: int


class HoldReleased(Hold):
    released: int
    due_from: str | None


class Person(TypedDict):
    name: str
    email: str
    role: NotRequired[str]


class Signer(TypedDict):
    name: str
    email: str
    key: str


class Counts(TypedDict):
    erased: int
    held: int
    failed: int
    gone: int
    pending: int


class Certificate(TypedDict):
    path: str
    sha256: str
    seq: int


class Request(TypedDict):
    id: str
    licence: str
    state: str
    document_missing: NotRequired[bool]
    existing: NotRequired[bool]
    requested_by: Person | None
    received: str | None
    reason: str | None
    evidence: str | None
    scope: Scope
    whole_licence: bool
    verification: str | None
    registered_at: str | None
    registered_by: str | None
    approved_at: str | None
    approved_by: str | None
    signed_by: Signer | None
    rejected_at: str | None
    rejected_by: str | None
    rejected_reason: str | None
    executed_at: str | None
    certificate: Certificate | None
    counts: Counts


class Item(TypedDict):
    id: str
    location: str | None
    licence: str
    size: int | None
    outcome: str
    holds: list[str]
    note: str | None


class RequestDetail(Request):
    items: list[Item]


class Preview(TypedDict):
    request: Request
    items: list[Item]
    erase: int
    bytes: int
    held: int
    gone: int


class Executed(TypedDict):
    request: Request
    items: list[Item]
