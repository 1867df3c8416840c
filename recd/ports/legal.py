"""The catalogue as legal holds, early-deletion requests and S3 hold mirroring see it.

``HoldCatalogue`` (``recd.service.holds``), ``RequestCatalogue`` (``recd.service.requests``)
and ``MirrorCatalogue`` (``recd.service.mirror``): one Protocol per consumer. Writes are
transactions, durable when the call returns. Every datetime is timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from recd.core.holds import Hold
from recd.core.model import Recording
from recd.core.requeststate import RequestItem, RequestState
from recd.core.scope import Scope
from recd.ports.records import Mirrored, StoredRequest
from recd.ports.sweeping import SweepCatalogue
from recd.ports.together import Together


class HoldCatalogue(Together, Protocol):
    """Legal holds: placed, released or expired; what each keeps from erasure."""

    def holds(self, *, everything: bool = False) -> list[Hold]:
        """Active holds (with ``everything``, released and expired ones too), oldest first."""

    def hold(self, hold_id: str) -> Hold | None:
        """The hold of that id, active or not; None when there is none."""

    def place_hold(self, hold: Hold) -> tuple[Hold, int]:
        """Store a hold (its id is given here) and hold every present recording it matches;
        returns the stored hold and how many present recordings it matches."""

    def release_hold(
        self, hold: Hold, *, at: datetime, by: str, reason: str, expired: bool, not_before: datetime
    ) -> int:
        """End an active hold. Recordings no other active hold matches are held no more and
        not due before ``not_before``; returns how many."""

    def held_count(self, scope: Scope) -> int:
        """Present recordings ``scope`` matches."""

    def licences(self) -> list[str | None]:
        """Every licence with present recordings (None: unclassified)."""

    def get(self, recording_id: str) -> Recording | None:
        """The recording of that id, in any state; None when the catalogue has none."""


class RequestCatalogue(Together, Protocol):
    """Early-deletion requests, their items, and the recordings their scopes match."""

    def request(self, request_id: str) -> StoredRequest | None:
        """The request of that id; None when there is none."""

    def requests(self, state: RequestState | None = None) -> list[StoredRequest]:
        """Every request (only those in ``state``, if given), least recently changed first."""

    def put_request(self, request: StoredRequest) -> None:
        """Insert or replace a request."""

    def items(self, request_id: str) -> list[RequestItem]:
        """The items of a request (one per recording of its scope), in the order stored."""

    def put_items(self, request_id: str, items: Sequence[RequestItem]) -> None:
        """Insert or replace the items of a request."""

    def matching(self, scope: Scope, limit: int) -> list[Recording]:
        """Recordings ``scope`` matches, in any state (catalogue order)."""

    def held_count(self, scope: Scope) -> int:
        """Present recordings ``scope`` matches."""

    def holds(self, *, everything: bool = False) -> list[Hold]:
        """Active holds (with ``everything``, released and expired ones too), oldest first."""

    def get(self, recording_id: str) -> Recording | None:
        """The recording of that id, in any state; None when the catalogue has none."""

    def mark_missing(self, ids: Sequence[str]) -> None:
        """Present recordings that are no longer where they were become missing."""


class MirrorCatalogue(Protocol):
    """The S3 legal holds recd set on held recordings' versions (``s3.mirror_legal_holds``)."""

    def mirror_work(self, source: str, limit: int) -> tuple[list[Recording], list[Mirrored]]:
        """Up to ``limit`` each: present held recordings of ``source`` not mirrored (or
        mirrored before a version came), and mirrors of recordings no longer held."""

    def mirrored(self, recording_id: str) -> Mirrored | None:
        """The S3 legal holds recd set on the recording's versions; None: none."""

    def set_mirrored(self, m: Mirrored | str) -> None:
        """Store a recording's mirror, or forget it (given its recording id)."""


class RunCatalogue(SweepCatalogue, RequestCatalogue, Protocol):
    """What a request run reads and writes: a sweep's role (intents, the erase steps) and the
    requests' (its items, the holds that win over it)."""
