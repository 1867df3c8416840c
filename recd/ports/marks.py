"""The catalogue as the check of the audit log at start, and the rebuild from it, see it.

``AuditMarkCatalogue`` (``recd.service.rebuild``'s marks, ``acknowledge``): where the catalogue
stands in the audit log, and how far the log was checked. ``RebuildCatalogue``
(``recd.service.rebuild``, ``rebuildrequests``): holds, requests and breakers stored back as
the log has them, each restore in one transaction. Every datetime is timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from recd.core.holds import Hold
from recd.core.requeststate import RequestItem, RequestState
from recd.core.segcheck import Prints
from recd.ports.records import AuditCheckpoint, AuditMark, Breaker, StoredRequest
from recd.ports.together import Together


class AuditMarkCatalogue(Together, Protocol):
    """Where the catalogue stands in the audit log, and how far the log's chain was checked."""

    def audit_mark(self) -> AuditMark | None:
        """The last audit entry this catalogue reflects; None if it never saw the log."""

    def set_audit_mark(self, mark: AuditMark) -> None:
        """Store the last audit entry this catalogue reflects."""

    def audit_checkpoint(self) -> AuditCheckpoint | None:
        """How far the audit log's chain was checked at the last start; None: never."""

    def set_audit_checkpoint(self, checkpoint: AuditCheckpoint) -> None:
        """Store how far the audit log's chain was checked."""

    def audit_segments(self) -> Prints | None:
        """The closed audit segments checked at the last start that found nothing (or at the
        last acknowledgement); None before the first such check."""

    def set_audit_segments(self, prints: Prints) -> None:
        """Store the prints of the closed audit segments found intact."""


class RebuildCatalogue(AuditMarkCatalogue, Protocol):
    """What a rebuild or a replay from the audit log reads back and restores."""

    def holds(self, *, everything: bool = False) -> list[Hold]:
        """Active holds (with ``everything``, released and expired ones too), oldest first."""

    def restore_holds(self, holds: Sequence[Hold]) -> int:
        """Store holds as they were, ids and states included (a rebuild from the audit log),
        in one transaction: active ones hold what they match; a released one's ``due_from``
        floors the deadline of what it matches, now and when indexed later. Returns how many
        present recordings are held."""

    def requests(self, state: RequestState | None = None) -> list[StoredRequest]:
        """Every request (only those in ``state``, if given), least recently changed first."""

    def items(self, request_id: str) -> list[RequestItem]:
        """The items of a request (one per recording of its scope), in the order stored."""

    def restore_requests(
        self, requests: Sequence[tuple[StoredRequest, Sequence[RequestItem]]]
    ) -> None:
        """Store requests with their items as the audit log has them (a rebuild), in one
        transaction; a request or item already stored under its id is replaced."""

    def breakers(self) -> dict[str, Breaker]:
        """Every breaker stored, tripped or released, by licence."""

    def restore_breakers(self, breakers: Sequence[Breaker], rearmed: Sequence[str] = ()) -> None:
        """Store breakers as the audit log has them (a rebuild), each replacing the one of its
        licence, and remove those of ``rearmed``, in one transaction."""
