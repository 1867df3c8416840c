"""Where an early-deletion request stands and what became of each recording in its scope.

``RequestState`` and ``ItemOutcome`` are the two state enums of SPEC section 6, shared by the
pure replay of the audit log (``recd.core.replayrequests``), the catalogue's records
(``recd.ports.records``) and the service. They are ``StrEnum``s: their values are the words the
catalogue, the audit log and ``recctl`` have always used, so a value stored as text reads back as
the same member (``RequestState("received")``). Code compares members with ``is``; only the
boundaries (SQLite rows, audit entries, JSON replies) turn them into text or back. Pure: no I/O.
"""

from __future__ import annotations

import enum


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
