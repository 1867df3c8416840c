"""Read-only queries on the SQLite catalogue, for the admin socket and metrics scrapes.

Each reader owns one ``mode=ro`` connection, so it never blocks the daemon's writer (WAL lets
readers see the last committed state) and cannot write by mistake. Open one per thread or per
request: connecting costs well under a millisecond. Every query is bounded by an index or a
LIMIT; the per-licence totals come from the ``totals`` table that triggers keep in step.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from recd.adapters._breakers import select_breakers
from recd.adapters._closing import Closing
from recd.adapters._listing import RecordingListing
from recd.adapters._rows import (
    COLUMNS,
    from_us,
    row_to_recording,
    to_us,
)
from recd.adapters.sqlite.corrupt import FAILURES, corruption, guarded
from recd.adapters.sqlite.queries import (
    count_matching,
    hinted,
    register_functions,
    select_hold,
    select_holds,
    select_items,
    select_request,
    select_requests,
)
from recd.adapters.sqlite.schema import SCHEMA_VERSION
from recd.core.holds import Hold
from recd.core.model import Recording
from recd.core.requeststate import RequestItem, RequestState
from recd.core.scope import Scope
from recd.errors import CatalogueCorrupt, StateError
from recd.ports.reader import Totals
from recd.ports.records import AuditMark, Breaker, StoredRequest


@guarded
class SqliteReader(Closing, RecordingListing):
    """A read-only view; a corrupt page or row it meets raises ``CatalogueCorrupt`` (the
    daemon's writer, not a reader, moves the catalogue aside)."""

    _db: sqlite3.Connection

    def __init__(self, path: Path) -> None:
        self.path = path
        uri = f"file:{quote(str(path))}?mode=ro"
        try:
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout=5000")
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            register_functions(self._db)
        except FAILURES as exc:
            problem = corruption(path, exc, None)
            if problem is not None:
                raise CatalogueCorrupt(str(path), problem) from exc
            raise StateError(f"{path}: cannot read the catalogue: {exc}") from exc
        if version != SCHEMA_VERSION:
            self._db.close()
            raise StateError(
                f"{path}: catalogue schema {version}, this recd reads {SCHEMA_VERSION}"
            )

    def close(self) -> None:
        self._db.close()

    def backup_to(self, dest: Path) -> AuditMark | None:
        """Copy the catalogue into the new file ``dest`` with SQLite's online backup API, in one
        step: one read transaction, so the copy is the catalogue as committed at one instant,
        while the daemon's writer goes on (WAL). The copy's audit mark (None: it has none)."""
        try:
            target = sqlite3.connect(dest)
            try:
                self._db.backup(target)
                row = target.execute("SELECT value FROM meta WHERE key = 'audit_mark'").fetchone()
            finally:
                target.close()
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: cannot copy the catalogue: {exc}") from exc
        if row is None:
            return None
        data = json.loads(row[0])
        return AuditMark(data.get("seq"), data.get("hash"))

    def totals(self) -> list[Totals]:
        cursor = self._db.execute(
            "SELECT licence, recordings, bytes FROM totals WHERE recordings > 0 ORDER BY licence"
        )
        return [Totals(r[0] or None, r[1], r[2]) for r in cursor]

    def due_counts(self, now: datetime) -> dict[str | None, int]:
        cursor = hinted(
            self._db,
            # INDEXED BY: left alone, SQLite scans recordings_licence for the GROUP BY.
            "SELECT licence, COUNT(*) FROM recordings {hint} "
            "WHERE state = 'present' AND held = 0 AND deadline <= ? GROUP BY licence",
            (to_us(now),),
            "recordings_due",
        )
        return {r[0]: r[1] for r in cursor}

    def overdue(self, before: datetime) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM recordings WHERE state = 'present' AND held = 0 AND deadline < ?",
            (to_us(before),),
        ).fetchone()
        return int(row[0])

    def next_deadline(self, after: datetime) -> datetime | None:
        row = self._db.execute(
            "SELECT MIN(deadline) FROM recordings WHERE state = 'present' AND held = 0 "
            "AND deadline > ?",
            (to_us(after),),
        ).fetchone()
        return None if row[0] is None else from_us(row[0])

    def breakers(self) -> dict[str, Breaker]:
        return select_breakers(self._db)

    def held(self) -> int:
        row = self._db.execute("SELECT ifnull(SUM(held), 0) FROM totals").fetchone()
        return int(row[0])

    def holds(self, *, everything: bool = False) -> list[Hold]:
        return select_holds(self._db, everything=everything)

    def hold(self, hold_id: str) -> Hold | None:
        return select_hold(self._db, hold_id)

    def held_count(self, scope: Scope) -> int:
        return count_matching(self._db, scope)

    def requests(self, state: RequestState | None = None) -> list[StoredRequest]:
        return select_requests(self._db, state)

    def request(self, request_id: str) -> StoredRequest | None:
        return select_request(self._db, request_id)

    def items(self, request_id: str) -> list[RequestItem]:
        return select_items(self._db, request_id)

    def _select(self, where: str, args: list[Any]) -> list[Recording]:
        sql = f"SELECT {COLUMNS} FROM recordings WHERE {where}"  # noqa: S608
        return [row_to_recording(r) for r in self._db.execute(sql, args)]
