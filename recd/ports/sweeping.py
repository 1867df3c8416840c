"""The catalogue as the sweep, its audited batches and the recovery at start see it.

``SweepCatalogue`` (``recd.service.sweep``, ``batch``, ``recovery``): due recordings by
directory, the intents written before each irreversible erase and resolved after, and the
mass-deletion breakers; ``BreakerCatalogue`` alone is what releasing a breaker needs
(``recd.service.breakers``). Writes are transactions, durable when the call returns. Every
datetime is timezone-aware UTC.

A catalogue shared by several nodes (hosts) erases each recording on one of them: the node
that holds its claim, a lease with an expiry, set where the catalogue is opened. ``due_in``
claims what it returns, ``add_intents`` records an intent only under this node's claim (one
intent per recording), ``resolve_intents`` releases it, and ``pending_intents(now)`` takes over
the intents whose node's claim expired. A catalogue of one node (SQLite: one host) behaves the
same for that node and keeps no claims. ``shared`` tells the two apart: a running node settles
other nodes' interrupted erases only on a shared catalogue, and compares its clock with the
database server's (``server_time``), since every node's deadlines and claims are counted in
its own clock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Protocol

from recd.core.model import Recording
from recd.ports.records import Breaker, Intent
from recd.ports.together import Together


class BreakerCatalogue(Together, Protocol):
    """The mass-deletion breakers, one per licence (SPEC section 5)."""

    def breakers(self) -> dict[str, Breaker]:
        """Every breaker stored, tripped or released, by licence."""

    def trip_breaker(self, licence: str, now: datetime, due: int, total: int) -> None:
        """Hold back the due recordings of ``licence``: ``due`` of its ``total`` present ones were
        due at ``now`` (UTC)."""

    def release_breaker(self, licence: str, now: datetime, actor: str) -> bool:
        """Let the next sweep erase the licence's due recordings; False if none is tripped."""

    def clear_breaker(self, licence: str) -> None:
        """Forget the licence's breaker (its sweep erased within bounds again)."""


class SweepCatalogue(BreakerCatalogue, Protocol):
    """What a sweep and the recovery of its interrupted erases read and write."""

    #: Whether several nodes (hosts) share the catalogue (PostgreSQL), not one alone (SQLite).
    shared: bool

    def server_time(self) -> datetime | None:
        """The database server's clock now (UTC), or None for a catalogue with no server of
        its own (SQLite: the host's clock is the only one)."""

    def due_dirs(self, now: datetime) -> list[tuple[str, str]]:
        """``(source, directory)`` of every directory holding a recording due at ``now``."""

    def due_in(
        self, source: str, directory: str, now: datetime, limit: int, after: str = ""
    ) -> list[Recording]:
        """Present recordings of one directory due at ``now``, by location, after ``after``;
        claimed for this node from ``now`` (none another node holds a live claim on)."""

    def counts(self, now: datetime) -> dict[str | None, tuple[int, int]]:
        """Per licence: (present recordings, of which due at ``now``)."""

    def next_deadline(self, after: datetime | None = None) -> datetime | None:
        """The earliest deadline of a present recording (strictly after ``after``, if given)."""

    def get(self, recording_id: str) -> Recording | None:
        """The recording of that id, in any state; None when the catalogue has none."""

    def mark_missing(self, ids: Sequence[str]) -> None:
        """Present recordings that are no longer where they were become missing."""

    def set_skip_reason(self, recording_id: str, reason: str | None) -> None:
        """Remember why a sweep did not erase a due recording (None: clear it)."""

    def add_intents(self, intents: Iterable[Intent]) -> set[str]:
        """Record intents, each only if its recording is still present and not held (checked
        in the same transaction: a hold placed after the plan wins), has no other intent, and
        is claimed by this node (taken now if no other node holds a live claim; renewed from
        the intent's ``created``); returns the ids recorded."""

    def pending_intents(
        self, now: datetime | None = None, sources: Collection[str] | None = None
    ) -> list[Intent]:
        """Intents not yet resolved (an erase that may have been cut short), in audit order.
        With ``now`` (recovery): those this node takes over, its own and those whose claim
        expired by ``now``, claimed for it; without: every one, taking nothing (a listing).
        With ``sources``: only intents of recordings of those sources (the others' claims
        are left alone)."""

    def resolve_intents(
        self, erased: Sequence[tuple[str, datetime]], dropped: Sequence[str]
    ) -> None:
        """Mark recordings of ``erased`` intents erased and drop all the named intents,
        releasing this node's claims on their recordings."""
