"""Read-only queries on the PostgreSQL catalogue, for the admin socket and metrics scrapes.

Each reader owns one connection whose transactions are read-only (it cannot write by mistake)
and sees what the writer committed; open one per thread or request. A connection lost is
``CatalogueUnreachable``, and the next query connects again (``store.Session``). Every query
is bounded by an index or a LIMIT; the per-licence totals come from the trigger-kept
``totals`` table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from recd.adapters._breakers import select_breakers
from recd.adapters._closing import Closing
from recd.adapters._listing import RecordingListing
from recd.adapters._rows import COLUMNS, from_us, to_us
from recd.adapters.postgres.catalogue import SCHEMA_VERSION, schema_version
from recd.adapters.postgres.errors import describe, guarded
from recd.adapters.postgres.queries import (
    count_matching,
    select_hold,
    select_holds,
    select_items,
    select_request,
    select_requests,
)
from recd.adapters.postgres.store import Session, recording
from recd.core.holds import Hold
from recd.core.model import Recording
from recd.core.requeststate import RequestItem, RequestState
from recd.core.scope import Scope
from recd.errors import StateError
from recd.ports.reader import Totals
from recd.ports.records import Breaker, StoredRequest

_DUE = "state = 'present' AND held = 0 AND deadline"


@guarded
class PostgresReader(Session, Closing, RecordingListing):
    """A read-only view of the catalogue in the database ``url`` names."""

    PARAM = "%s"
    ORDER = "n"  # the identity column: catalogue order

    def __init__(self, url: str) -> None:
        self.name = describe(url)
        self._url = url
        self._connection()  # now, so that a wrong URL or schema is found at once

    def _prepare(self) -> None:
        """Each connection: read-only, on the schema this recd reads."""
        self._db.execute("SET default_transaction_read_only = on")
        version = schema_version(self._db)
        if version != SCHEMA_VERSION:
            raise StateError(
                f"catalogue {self.name}: schema {version}, this recd reads {SCHEMA_VERSION}"
            )

    def totals(self) -> list[Totals]:
        cursor = self._db.execute(
            "SELECT licence, recordings, bytes FROM totals WHERE recordings > 0 ORDER BY licence"
        )
        return [Totals(r[0] or None, int(r[1]), int(r[2])) for r in cursor]

    def due_counts(self, now: datetime) -> dict[str | None, int]:
        cursor = self._db.execute(
            f"SELECT licence, COUNT(*) FROM recordings WHERE {_DUE} <= %s GROUP BY licence",  # noqa: S608
            (to_us(now),),
        )
        return {r[0]: int(r[1]) for r in cursor}

    def overdue(self, before: datetime) -> int:
        row = self._db.execute(
            f"SELECT COUNT(*) FROM recordings WHERE {_DUE} < %s",  # noqa: S608
            (to_us(before),),
        ).fetchone()
        return 0 if row is None else int(row[0])

    def next_deadline(self, after: datetime) -> datetime | None:
        row = self._db.execute(
            f"SELECT MIN(deadline) FROM recordings WHERE {_DUE} > %s",  # noqa: S608
            (to_us(after),),
        ).fetchone()
        return None if row is None or row[0] is None else from_us(row[0])

    def breakers(self) -> dict[str, Breaker]:
        return select_breakers(self._db)

    def held(self) -> int:
        row = self._db.execute("SELECT coalesce(SUM(held), 0) FROM totals").fetchone()
        return 0 if row is None else int(row[0])

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
        return [recording(r) for r in self._db.execute(sql, args)]
