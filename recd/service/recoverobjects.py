"""Interrupted S3 erases finished together (``Recovery``'s, a chunk of intents at a time).

Each key is finished as one interrupted erase is: what is left of its planned versions and
delete markers is deleted and the key confirmed empty (``erase.done``, ``recovered: true``); a
key with nothing left had completed (``erase.done`` without a deletion); a version the plan
did not list was written after the erase began, so the key is a new recording and nothing is
deleted (``erase.failed``; the next poll indexes it). Done one key at a time that is four or
five requests a key, minutes for the thousand keys of one interrupted batch; together it is
one listing walk, DeleteObjects requests of up to 1,000 versions and one confirming walk for
the chunk, as a sweep's batch erases (``Eraser.prepare_many``, ``Eraser.erase_many``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from recd.core.audit import AuditDraft
from recd.core.erasure import OBJECT_STORE, Action, Decision
from recd.core.model import EraseMethod, ErasePattern, Recording
from recd.core.objects import ObjectFacts
from recd.ports.eraser import (
    EraseError,
    EraseJob,
    EraseOutcome,
    Eraser,
    EraseTarget,
    Gone,
    PreparedErase,
)
from recd.ports.records import Intent
from recd.service.batch import failed_details

#: How every S3 key is erased: all its versions deleted (no overwrite of an object store).
DELETE = Decision(Action.ERASE, EraseMethod.S3_DELETE, False, OBJECT_STORE)


@dataclass(frozen=True, slots=True)
class Unfinished:
    """One interrupted S3 erase: its intent, the recording, and the details every entry
    about it records (the plan's, the intent's id, ``recovered``)."""

    intent: Intent
    rec: Recording
    base: dict[str, Any]


def finish_objects(
    eraser: Eraser, items: Sequence[Unfinished], pattern: ErasePattern
) -> list[AuditDraft]:
    """Finish the erases ``items`` of one S3 source's ``eraser``; the entry for each, in
    order. Never raises for one key: a listing that failed fails every key of it (tried again
    by no one: the entry is the outcome, as for one key)."""
    prepared = eraser.prepare_many(
        [EraseTarget(u.rec.relpath, u.rec.dev, u.rec.ino, None) for u in items]
    )
    drafts: list[AuditDraft | None] = [None] * len(items)
    jobs: list[EraseJob] = []
    placed: list[int] = []
    try:
        for n, (item, got) in enumerate(zip(items, prepared, strict=True)):
            if isinstance(got, Gone):  # nothing left: the erase had completed
                drafts[n] = recovered(item.rec.id, item.base, None)
            elif isinstance(got, (EraseError, OSError)):
                drafts[n] = _failed(item, got)
            elif (why := _written_since(item, got)) is not None:
                drafts[n] = _failed(item, why)
            else:
                jobs.append(EraseJob(got, DELETE, item.intent.temp_name))
                placed.append(n)
        outcomes = eraser.erase_many(jobs, pattern=pattern, verify=False) if jobs else []
        for n, outcome in zip(placed, outcomes, strict=True):
            drafts[n] = _done(items[n], outcome)
    finally:
        for got in prepared:
            if not isinstance(got, (EraseError, OSError)):
                got.close()
    assert all(d is not None for d in drafts)
    return [d for d in drafts if d is not None]


def _written_since(item: Unfinished, prepared: PreparedErase) -> str | None:
    """Why the key is not the one being erased: versions the plan did not list."""
    facts = prepared.facts
    assert isinstance(facts, ObjectFacts)
    planned = {v["version_id"] for v in item.base.get("versions", ())}
    new = [v.version_id for v in facts.versions if v.version_id not in planned]
    if not new:
        return None
    return (
        f"{len(new)} version(s) of {item.rec.relpath} written after the erase began "
        f"({', '.join(new[:3])}); left for the next poll to index"
    )


def _done(item: Unfinished, outcome: EraseOutcome | EraseError) -> AuditDraft:
    if isinstance(outcome, EraseError):
        return _failed(item, outcome)
    return recovered(item.rec.id, item.base, outcome)


def _failed(item: Unfinished, why: EraseError | OSError | str) -> AuditDraft:
    return unrecovered(item.rec.id, item.base, why)


def recovered(rid: str, base: dict[str, Any], outcome: EraseOutcome | None) -> AuditDraft:
    """``erase.done`` of a recovered erase: ``base`` with what the rerun did (``outcome``;
    None when it had already completed)."""
    if outcome is None:
        return AuditDraft("erase.done", rid, base)
    details = base | {"bytes_overwritten": outcome.bytes_overwritten}
    details |= outcome.details  # S3: what was left and deleted, and the confirmation
    return AuditDraft("erase.done", rid, details)


def unrecovered(rid: str, base: dict[str, Any], why: EraseError | OSError | str) -> AuditDraft:
    """``erase.failed`` of an erase recovery could not finish, saying ``why``."""
    reason = why.reason if isinstance(why, EraseError) else str(why)
    return AuditDraft("erase.failed", rid, failed_details(base, reason))
