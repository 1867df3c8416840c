"""Read-only catalogue ports, safe beside the writer: the admin socket's and the scrapes'.

``CatalogueReader`` answers `recctl ls`, `status`, the legal commands and the metrics
collector from a connection of its own (WAL lets readers run beside the single writer);
``CatalogueCopier`` is `recctl backup`'s online copy. Every query is bounded by an index or a
limit. Every datetime is timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from recd.core.holds import Hold
from recd.core.model import Recording, State
from recd.core.requeststate import RequestItem, RequestState
from recd.core.scope import Scope
from recd.ports.records import AuditMark, Breaker, StoredRequest


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

    def close(self) -> None:
        """Release the connection the copy was read through."""


class CatalogueReader(Protocol):
    """Read-only queries on the catalogue, safe to run beside the writer (admin, metrics).

    Every query is bounded by an index or a limit: none counts the whole catalogue.
    """

    def totals(self) -> list[Totals]:
        """Per licence (None: unclassified), its present recordings and their bytes."""

    def due_counts(self, now: datetime) -> dict[str | None, int]:
        """Per licence, present recordings whose deadline is at or before ``now``."""

    def overdue(self, before: datetime) -> int:
        """Present recordings whose deadline is before ``before``."""

    def next_deadline(self, after: datetime) -> datetime | None:
        """The earliest deadline of a present recording strictly after ``after``; None: none."""

    def recordings(self, query: ListQuery) -> list[Recording]:
        """Up to ``query.limit`` recordings, soonest deadline first (none last)."""

    def get(self, recording_id: str) -> Recording | None:
        """The recording of that id, in any state; None when the catalogue has none."""

    def match(self, prefix: str, limit: int = 2) -> list[Recording]:
        """Up to ``limit`` recordings whose id starts with ``prefix``."""

    def breakers(self) -> dict[str, Breaker]:
        """Every breaker stored, tripped or released, by licence."""

    def scans(self) -> dict[str, tuple[datetime, datetime | None]]:
        """Per source: when its last scan started and finished (None while running)."""

    def held(self) -> int:
        """Present recordings an active hold keeps."""

    def holds(self, *, everything: bool = False) -> list[Hold]:
        """Active holds (with ``everything``, released and expired ones too), oldest first."""

    def hold(self, hold_id: str) -> Hold | None:
        """The hold of that id, active or not; None when there is none."""

    def held_count(self, scope: Scope) -> int:
        """Present recordings ``scope`` matches."""

    def requests(self, state: RequestState | None = None) -> list[StoredRequest]:
        """Every request (only those in ``state``, if given), least recently changed first."""

    def request(self, request_id: str) -> StoredRequest | None:
        """The request of that id; None when there is none."""

    def items(self, request_id: str) -> list[RequestItem]:
        """The items of a request (one per recording of its scope), in the order stored."""

    def close(self) -> None:
        """Release the read-only connection."""
