"""Listing recordings for ``recctl ls``, ``show`` and status (the ``CatalogueReader`` port), once
for both SQL readers. Each reader supplies ``_select`` (its row decoder), ``ORDER`` (the column
that is catalogue order: SQLite's ``rowid``, PostgreSQL's ``n``) and, through ``SharedRole``,
its placeholder."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from recd.adapters._rows import from_us, to_us
from recd.adapters._sql import SharedRole
from recd.core.model import Recording, State
from recd.ports.reader import ListQuery


class RecordingListing(SharedRole):
    """``recordings``, ``get``, ``match`` and ``scans`` of a catalogue reader."""

    ORDER = "rowid"

    def _select(self, where: str, args: list[Any]) -> list[Recording]:
        """The recordings matching ``where`` (with ``?`` placeholders already swapped)."""
        raise NotImplementedError

    def recordings(self, query: ListQuery) -> list[Recording]:
        where, args = self._filters(query)
        if query.state is not State.PRESENT:
            return self._select(
                self._q(f"{where} ORDER BY {self.ORDER} LIMIT ?"), [*args, query.limit]
            )
        # Soonest deadline first, through the partial index on (deadline, id) of recordings
        # not held; then the held ones (never due), then those with no deadline, in
        # catalogue order.
        rows = self._select(
            self._q(f"{where} AND held = 0 AND deadline IS NOT NULL ORDER BY deadline, id LIMIT ?"),
            [*args, query.limit],
        )
        if query.due_before is not None:
            return rows
        for rest in ("held = 1", "held = 0 AND deadline IS NULL"):
            room = query.limit - len(rows)
            if room > 0:
                rows += self._select(
                    self._q(f"{where} AND {rest} ORDER BY {self.ORDER} LIMIT ?"), [*args, room]
                )
        return rows

    def get(self, recording_id: str) -> Recording | None:
        rows = self._select(self._q("id = ?"), [recording_id])
        return rows[0] if rows else None

    def match(self, prefix: str, limit: int = 2) -> list[Recording]:
        """Recordings whose id starts with ``prefix`` (a range of the primary key)."""
        upper = prefix + "\U0010ffff"
        return self._select(
            self._q("id >= ? AND id < ? ORDER BY id LIMIT ?"), [prefix, upper, limit]
        )

    def scans(self) -> dict[str, tuple[datetime, datetime | None]]:
        cursor = self._db.execute("SELECT source, started, finished FROM scans")
        return {r[0]: (from_us(r[1]), None if r[2] is None else from_us(r[2])) for r in cursor}

    @staticmethod
    def _filters(query: ListQuery) -> tuple[str, list[Any]]:
        """The WHERE clause of ``query`` (``?`` placeholders) and its arguments."""
        clauses, args = ["1 = 1"], list[Any]()
        if query.state is not None:
            # A literal, not a parameter: SQLite uses the partial index on present recordings
            # only when the query's WHERE says state = 'present' in so many words.
            clauses.append(f"state = '{State(query.state)}'")
        if query.unclassified:
            clauses.append("licence IS NULL")
        elif query.licence is not None:
            clauses.append("licence = ?")
            args.append(query.licence)
        if query.due_before is not None:
            clauses.append("deadline <= ?")
            args.append(to_us(query.due_before))
        return " AND ".join(clauses), args
