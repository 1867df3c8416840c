"""Early-deletion requests as the audit log records them (SPEC 6 and 8).

``replay_requests`` reads the ``request.*`` entries (and the ``erase.*`` entries of a request's
runs, ``reason: request:<id>``) into the requests they describe: the verified document and its
digest, who registered, approved, signed or rejected each and when, its runs, each recording's
outcome and the certificate the last run wrote. ``replay_decisions`` replays the breakers
(``recd.core.replaybreakers``) in the same reading of the log.

It starts from ``known``: what a catalogue already holds (empty for a full rebuild), so that
the entries after a catalogue's mark can be replayed onto it. An entry a request already
reflects (its seq at or below the request's last step) changes nothing, so replaying a log in
one go or in slices, or twice, gives the same.

When the log is unclear, the replay keeps more, never less, and never lets a request run that
the log does not show verified: an entry written by an older recd without the request's
document gives a request marked ``document_missing`` (it runs only once its file is registered
again, checked against the audited digest); a ``verified`` registration without the signature
that verified it, or an approval without the approver's uid, leaves the request ``received``.
Each such case is reported in ``problems``.

Pure: given the entries; no I/O, no clock reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from recd.core.audit import AuditEntry, canonical_json
from recd.core.replaybreakers import BreakerRecord, ReplayedBreakers, breaker_entry
from recd.core.requestinfo import CertificateRef, Rejection, RequestInfo, Step
from recd.core.requeststate import ItemOutcome, RequestItem, RequestState
from recd.core.signatures import SignedBy
from recd.core.times import parse_time

REGISTERED = "request.registered"
APPROVED = "request.approved"
REJECTED = "request.rejected"
STARTED = "request.started"
EXECUTED = "request.executed"
CERTIFICATE = "request.certificate"
DOCUMENT = "request.document"  # the document of a request rebuilt without it, given again
ERASES = ("erase.done", "erase.failed", "erase.skipped")

#: A recording a run found kept by a hold, as ``request.executed``'s ``held_by`` lists them.
HELD_NOTE = "kept by a legal hold"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A request as the catalogue stores it (``ports.records.StoredRequest``) with its items."""

    id: str
    licence: str
    state: RequestState
    document: Mapping[str, Any]
    digest: str
    info: RequestInfo
    updated: datetime
    items: Mapping[str, RequestItem] = field(default_factory=dict)

    @property
    def last_step(self) -> int:
        """The seq of the last step (registered ... executed, certificate) this reflects."""
        return self.info.last_step


@dataclass(frozen=True, slots=True)
class ReplayedRequests:
    requests: Mapping[str, RequestRecord]
    problems: tuple[str, ...] = ()

    def count(self, state: RequestState) -> int:
        return sum(1 for r in self.requests.values() if r.state is state)


def document_digest(document: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a request document's canonical JSON (``ErasureRequest.digest``)."""
    return hashlib.sha256(canonical_json(document)).hexdigest()


# --- requests ------------------------------------------------------------------------------


def replay_requests(
    entries: Iterable[AuditEntry], known: Mapping[str, RequestRecord]
) -> ReplayedRequests:
    """The requests ``known`` becomes with ``entries`` (in log order) applied."""
    requests = dict(known)
    problems: list[str] = []
    for entry in entries:
        _request_entry(requests, entry, problems)
    return ReplayedRequests(requests, tuple(problems))


def replay_decisions(
    entries: Iterable[AuditEntry],
    requests: Mapping[str, RequestRecord],
    breakers: Mapping[str, BreakerRecord],
) -> tuple[ReplayedRequests, ReplayedBreakers]:
    """``replay_requests`` and ``replay_breakers`` in one reading of ``entries``."""
    now_requests, now_breakers = dict(requests), dict(breakers)
    request_problems: list[str] = []
    breaker_problems: list[str] = []
    for entry in entries:
        _request_entry(now_requests, entry, request_problems)
        breaker_entry(now_breakers, entry, breaker_problems)
    return (
        ReplayedRequests(now_requests, tuple(request_problems)),
        ReplayedBreakers(now_breakers, tuple(breaker_problems)),
    )


def _request_entry(
    requests: dict[str, RequestRecord], entry: AuditEntry, problems: list[str]
) -> None:
    if entry.action in ERASES:
        _erase(requests, entry)
    elif entry.action == REGISTERED:
        if entry.subject not in requests:
            record = _registered(entry, problems)
            if record is not None:
                requests[record.id] = record
    elif entry.action in _STEPS:
        _apply(requests, entry, problems)


def _apply(requests: dict[str, RequestRecord], entry: AuditEntry, problems: list[str]) -> None:
    """One step of a registered request; a step it already reflects changes nothing."""
    record = requests.get(entry.subject)
    if record is None:
        problems.append(
            f"seq {entry.seq}: {entry.action} of request {entry.subject}, never "
            "registered in this log; ignored"
        )
    elif entry.seq > record.last_step:
        requests[record.id] = _STEPS[entry.action](record, entry, problems)


def _registered(entry: AuditEntry, problems: list[str]) -> RequestRecord | None:
    d = entry.details
    rid, licence, digest = entry.subject, d.get("licence"), d.get("digest")
    if not rid or not isinstance(licence, str) or not licence or not isinstance(digest, str):
        problems.append(
            f"seq {entry.seq}: request.registered names no request, licence or digest; ignored"
        )
        return None
    where = f"seq {entry.seq}: request {rid}"
    uid = d.get("uid") if isinstance(d.get("uid"), int) else None
    info = RequestInfo(
        _text(d.get("verification")) or "two-person",
        Step(entry.actor, uid, entry.time, entry.seq),
        signed_by=_signed_by(d.get("signed_by")),
    )
    document = d.get("document")
    if isinstance(document, Mapping) and _whole(document, rid, licence, digest):
        document = dict(document)
    else:
        if document is None:
            problems.append(
                f"{where}: the entry holds no request document (an older recd wrote it); "
                "rebuilt without its reason and signature: it runs only once its file is "
                "registered again (recctl request add --file)"
            )
        else:
            problems.append(
                f"{where}: the document in the entry does not match its digest "
                "(or its id and licence); kept the entry's fields only"
            )
        document = _partial(d, rid, licence)
        info = replace(info, document_missing=True)
    state = _registered_state(_text(d.get("state")) or RequestState.RECEIVED, info, where, problems)
    return RequestRecord(rid, licence, state, document, digest, info, parse_time(entry.time))


def _registered_state(
    text: str, info: RequestInfo, where: str, problems: list[str]
) -> RequestState:
    """Received, or verified when the entry names the signature that verified it."""
    state = _state(text)
    if state is RequestState.VERIFIED and not _verified_by_signature(info):
        problems.append(
            f"{where}: registered as verified, but the entry names no signature "
            "that verified it; rebuilt as received (it needs an approval)"
        )
        return RequestState.RECEIVED
    if state is not RequestState.RECEIVED and state is not RequestState.VERIFIED:
        problems.append(f"{where}: registered in state {text!r}; rebuilt as received")
        return RequestState.RECEIVED
    return state


def _whole(document: Mapping[str, Any], rid: str, licence: str, digest: str) -> bool:
    try:
        same = document_digest(document) == digest
    except (TypeError, ValueError):
        return False
    return same and document.get("request_id") == rid and document.get("licence") == licence


def _partial(d: Mapping[str, Any], rid: str, licence: str) -> dict[str, Any]:
    """What an older ``request.registered`` entry kept of the document."""
    document: dict[str, Any] = {"request_id": rid, "licence": licence}
    for key in ("requested_by", "received", "evidence", "scope"):
        if key in d:
            document[key] = d[key]
    return document


def _signed_by(signed: object) -> SignedBy | None:
    """The agent a ``request.registered`` entry names as the signer, if it names one."""
    if not isinstance(signed, Mapping):
        return None
    return SignedBy(*(_text(signed.get(k)) for k in ("name", "email", "key")))


def _verified_by_signature(info: RequestInfo) -> bool:
    return info.signed_by is not None and bool(info.signed_by.key)


def _approved(record: RequestRecord, entry: AuditEntry, problems: list[str]) -> RequestRecord:
    uid = entry.details.get("uid")
    where = f"seq {entry.seq}: request {record.id}"
    if record.state is not RequestState.RECEIVED:
        problems.append(f"{where}: approved while {record.state}; ignored")
        return record
    if not isinstance(uid, int) or not entry.actor:
        problems.append(
            f"{where}: the approval names no approver uid; the request stays "
            "received (it needs an approval)"
        )
        return record
    if uid == record.info.registered.uid:
        problems.append(
            f"{where}: approved by the uid that registered it; it stays received "
            "(two-person verification needs a second administrator)"
        )
        return record
    approved = Step(entry.actor, uid, entry.time, entry.seq)
    return _step(record, entry, RequestState.VERIFIED, replace(record.info, approved=approved))


def _rejected(record: RequestRecord, entry: AuditEntry, problems: list[str]) -> RequestRecord:
    uid = entry.details.get("uid")
    reason = _text(entry.details.get("reason"))
    rejection = Rejection(
        entry.actor, uid if isinstance(uid, int) else None, entry.time, reason, entry.seq
    )
    return _step(record, entry, RequestState.REJECTED, replace(record.info, rejected=rejection))


def _started(record: RequestRecord, entry: AuditEntry, problems: list[str]) -> RequestRecord:
    run = entry.details.get("run")
    runs = record.info.runs or 0
    runs = run if isinstance(run, int) and run > runs else runs + 1
    info = replace(record.info, runs=runs, started_seq=entry.seq)
    if record.state not in _VERIFIED_OR_LATER:
        problems.append(
            f"seq {entry.seq}: request {record.id}: a run started while "
            f"{record.state}; its outcomes are kept, its state is not"
        )
        return _step(record, entry, record.state, info)
    return _step(record, entry, RequestState.EXECUTING, info)


def _executed(record: RequestRecord, entry: AuditEntry, problems: list[str]) -> RequestRecord:
    d = entry.details
    text = _text(d.get("state"))
    state = _state(text)
    if state is not RequestState.COMPLETED and state is not RequestState.PARTIAL:
        problems.append(
            f"seq {entry.seq}: request {record.id}: executed in state {text!r}; rebuilt as partial"
        )
        state = RequestState.PARTIAL
    if record.state not in _VERIFIED_OR_LATER:
        state = record.state  # a run the log never showed verified: keep what it was
    items = dict(record.items)
    held = d.get("held_by")
    for rid, holds in held.items() if isinstance(held, Mapping) else ():
        old = items.get(rid) or RequestItem(rid, ItemOutcome.HELD)
        hold_ids = tuple(h for h in holds if isinstance(h, str)) if isinstance(holds, list) else ()
        items[rid] = replace(old, outcome=ItemOutcome.HELD, holds=hold_ids, note=HELD_NOTE)
    for outcome in (ItemOutcome.GONE, ItemOutcome.FAILED):
        listed = d.get(f"{outcome}_items")
        for rid, note in listed.items() if isinstance(listed, Mapping) else ():
            known = items.get(rid)
            if known is None or known.audit_seq is None:  # an audited failure says more
                items[rid] = replace(
                    known or RequestItem(rid, outcome), outcome=outcome, note=_text(note) or None
                )
    record = replace(record, items=items)
    info = replace(record.info, executed_at=entry.time, executed_seq=entry.seq)
    return _step(record, entry, state, info)


def _certificate(record: RequestRecord, entry: AuditEntry, problems: list[str]) -> RequestRecord:
    d = entry.details
    sha256, path = d.get("sha256"), d.get("path")
    if not isinstance(sha256, str) or not isinstance(path, str):
        problems.append(
            f"seq {entry.seq}: request {record.id}: the certificate entry has no "
            "sha256 or path; ignored"
        )
        return record
    cert = CertificateRef(path, sha256, entry.seq)
    return _step(record, entry, record.state, replace(record.info, certificate=cert))


def _document(record: RequestRecord, entry: AuditEntry, problems: list[str]) -> RequestRecord:
    """The document of a request rebuilt without it, registered again (``request.document``)."""
    document = entry.details.get("document")
    if not record.info.document_missing:
        return record
    if not isinstance(document, Mapping) or not _whole(
        document, record.id, record.licence, record.digest
    ):
        problems.append(
            f"seq {entry.seq}: request {record.id}: the document given again does "
            "not match the audited digest; ignored"
        )
        return record
    info = replace(record.info, document_missing=False)
    return replace(record, document=dict(document), info=info, updated=parse_time(entry.time))


#: The states of a request the log showed verified: a run may start (or finish) from these.
_VERIFIED_OR_LATER = frozenset(
    (RequestState.VERIFIED, RequestState.EXECUTING, RequestState.COMPLETED, RequestState.PARTIAL)
)

_STEPS = {
    DOCUMENT: _document,
    APPROVED: _approved,
    REJECTED: _rejected,
    STARTED: _started,
    EXECUTED: _executed,
    CERTIFICATE: _certificate,
}


def _step(
    record: RequestRecord, entry: AuditEntry, state: RequestState, info: RequestInfo
) -> RequestRecord:
    return replace(record, state=state, info=info, updated=parse_time(entry.time))


def _erase(requests: dict[str, RequestRecord], entry: AuditEntry) -> None:
    """An erase of a request's run settles that recording's item (erased or failed)."""
    d = entry.details
    reason = d.get("reason")
    if not isinstance(reason, str) or not reason.startswith("request:"):
        return
    record = requests.get(reason.removeprefix("request:"))
    if record is None or not entry.subject or entry.seq <= record.last_step:
        return  # not this log's request, or a run the request already reflects
    old = record.items.get(entry.subject)
    if old is not None and old.audit_seq is not None and old.audit_seq >= entry.seq:
        return  # already reflected
    if old is not None and old.outcome is ItemOutcome.ERASED:
        return  # erased once: a later entry cannot undo it
    base = old or RequestItem(entry.subject, ItemOutcome.PENDING)
    base = replace(
        base,
        location=_location(d) or base.location,
        licence=d.get("licence") if isinstance(d.get("licence"), str) else base.licence,
        size=d.get("size") if isinstance(d.get("size"), int) else base.size,
    )
    if entry.action == "erase.done":
        item = replace(
            base,
            outcome=ItemOutcome.ERASED,
            sha256=_text(d.get("sha256")) or None,
            method=_text(d.get("method")) or None,
            effective=d.get("effective") if isinstance(d.get("effective"), bool) else None,
            ineffective_reason=_text(d.get("ineffective_reason")) or None,
            time=parse_time(entry.time),
            audit_seq=entry.seq,
            holds=(),
            note=None,
            s3=object_part(d),
        )
    elif entry.action == "erase.failed":
        item = replace(
            base,
            outcome=ItemOutcome.FAILED,
            audit_seq=entry.seq,
            note=f"erase failed: {_text(d.get('error'))}",
        )
    else:
        item = replace(
            base, outcome=ItemOutcome.FAILED, note=f"not erased: {_text(d.get('skipped'))}"
        )
    requests[record.id] = replace(record, items={**record.items, entry.subject: item})


#: What an S3 erase's audit entries add, kept in the certificate: the bucket and key, every
#: version and delete marker deleted (data versions with their SHA-256), the counts, and the
#: confirmation listing's result.
OBJECT_DETAILS = (
    "bucket",
    "key",
    "versions",
    "deleted_versions",
    "deleted_delete_markers",
    "confirmed",
)


def object_part(d: Mapping[str, Any]) -> dict[str, Any] | None:
    """The S3 part of an ``erase.done`` entry's details; None for a file."""
    if "bucket" not in d:
        return None
    return {k: d[k] for k in OBJECT_DETAILS if k in d}


def _location(d: Mapping[str, Any]) -> str | None:
    """The path ``location_details`` recorded (exact, from ``location_bytes`` when given)."""
    raw = d.get("location_bytes")
    if isinstance(raw, str):
        try:
            return bytes.fromhex(raw).decode("utf-8", "surrogateescape")
        except ValueError:
            pass
    location = d.get("location")
    return location if isinstance(location, str) else None


def _state(text: str) -> RequestState | None:
    """The state an entry names; None when it names none recd knows."""
    try:
        return RequestState(text)
    except ValueError:
        return None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
