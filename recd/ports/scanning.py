"""The catalogue as the indexer and the retention rules see it (``recd.service.indexing``,
``recd.service.policies``).

One Protocol per consumer, each only as wide as its caller (the way client_python's one-method
``Collector`` is): ``IndexingCatalogue`` reconciles scans, ``PolicyCatalogue`` recomputes
deadlines when a licence's retention rule changes. Writes are transactions, durable when the
call returns. Every datetime is timezone-aware UTC; ``*_ns`` are nanoseconds since the epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from recd.core.fastclass import Found
from recd.core.model import Recording
from recd.ports.records import Known
from recd.ports.source import DirStamp


class IndexingCatalogue(Protocol):
    """What a scan of one source reads and writes: its recordings by directory, then
    present or missing (``recd.service.indexing``)."""

    def begin_scan(self, source: str, now: datetime, rule: str) -> bool:
        """Start a scan; returns whether the classification rule changed since the last."""

    def begin_bulk(self) -> bool:
        """When the catalogue holds no recordings, prepare a bulk load (a first index) until
        ``end_bulk``: ``in_dir`` and ``dirs`` may be slow meanwhile; returns whether it did."""

    def end_bulk(self) -> None:
        """End the bulk load ``begin_bulk`` started (safe if it was never ended: see there)."""

    def in_dir(self, source: str, directory: str) -> dict[str, Known]:
        """Every recording catalogued in one directory of ``source`` ('' is the root)."""

    def dir_stamp(
        self, source: str, directory: str, since: datetime | None = None
    ) -> DirStamp | None:
        """The stamp a full scan stored for one directory (``DirWalk``), if any and, with
        ``since``, only one stored at or after that time."""

    def replace_dir_stamps(
        self, source: str, stamps: Mapping[str, DirStamp], kept: Collection[str], now: datetime
    ) -> None:
        """After a full scan: store ``stamps`` (as of ``now``), keep those of ``kept`` as
        they were (their time too), drop every other."""

    def dirs(self, source: str, under: str = "") -> list[str]:
        """The directories of ``source`` that hold present recordings; with ``under``, at
        least those at or below that directory (callers filter: siblings may be listed)."""

    def newest_mtime_ns(self, source: str, limit_ns: int) -> int | None:
        """The newest modification time (ns) of a present recording of ``source`` that is not
        after ``limit_ns``; None when there is none."""

    def upsert(self, rows: Sequence[Recording], now: datetime) -> None:
        """Insert or refresh recordings a scan saw; they become present."""

    def insert_new(self, rows: Sequence[Found], now: datetime) -> None:
        """``upsert`` of ``[f.recording(now) for f in rows]``, the same rows, from plain values:
        a first index classifies most files without a ``Recording`` or ``datetime`` each."""

    def mark_missing(self, ids: Sequence[str]) -> None:
        """Present recordings that are no longer where they were become missing."""

    def mark_dirs_missing(self, source: str, directories: Sequence[str]) -> int:
        """Every present recording in these directories becomes missing; returns how many."""

    def finish_scan(self, source: str, now: datetime) -> None:
        """End the scan ``begin_scan`` started at ``now`` (UTC): the source's last scan finished."""

    def get(self, recording_id: str) -> Recording | None:
        """The recording of that id, in any state; None when the catalogue has none."""

    def policies(self) -> dict[str | None, str]:
        """The retention rule each licence's stored deadlines were computed under."""

    def record_policy(self, licence: str | None, policy: str) -> None:
        """Remember the rule for a licence first seen by a scan (if none is stored yet)."""


class PolicyCatalogue(Protocol):
    """The retention rule behind each licence's stored deadlines (``recd.service.policies``)."""

    def licences(self) -> list[str | None]:
        """Every licence with present recordings (None: unclassified)."""

    def policies(self) -> dict[str | None, str]:
        """The retention rule each licence's stored deadlines were computed under."""

    def set_deadlines(
        self, licence: str | None, policy: str, deadline_of: Callable[[datetime], datetime | None]
    ) -> int:
        """Recompute every present deadline of ``licence`` from its start time."""

    def record_policy(self, licence: str | None, policy: str) -> None:
        """Remember the rule for a licence first seen by a scan (if none is stored yet)."""
