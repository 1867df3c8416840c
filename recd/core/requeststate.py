"""Where an early-deletion request stands and what became of each recording in its scope.

``RequestState`` and ``ItemOutcome`` are the two state enums of SPEC section 6, and
``RequestItem`` one recording of a request's scope with its outcome; all three are shared by the
pure replay of the audit log (``recd.core.replayrequests``), the catalogue's records
(``recd.ports.records``) and the service. They are ``StrEnum``s: their values are the words the
catalogue, the audit log and ``recctl`` have always used, so a value stored as text reads back as
the same member (``RequestState("received")``). Code compares members with ``is``; only the
boundaries (SQLite rows, audit entries, JSON replies) turn them into text or back. Pure: no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


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
