"""The PostgreSQL catalogue's sweep role: what is due, erase intents, mass-deletion breakers.

The same rows and rules as ``recd.adapters.sqlite.sweeping``: due recordings through the partial
deadline index; ``add_intents`` is the last check before an erase (a hold placed after the plan
wins) and ``resolve_intents`` marks erasures done in one transaction with dropping their intents.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from recd.adapters._rows import (
    BREAKER_COLUMNS,
    COLUMNS,
    from_us,
    row_to_breaker,
    row_to_intent,
    to_us,
)
from recd.adapters.postgres.errors import guarded
from recd.adapters.postgres.store import Store, pg_name, pg_path, recording
from recd.core.model import Recording
from recd.ports.records import Breaker, Intent

_DUE = "state = 'present' AND held = 0 AND deadline <= %s"


def _us(value: datetime | None) -> int | None:
    return None if value is None else to_us(value)


@guarded
class Sweeping(Store):
    """Due recordings, intents and breakers (``ports`` sweep role) of ``PostgresCatalogue``."""

    def due_dirs(self, now: datetime) -> list[tuple[str, str]]:
        cursor = self._db.execute(
            f"SELECT DISTINCT source, dir FROM recordings WHERE {_DUE} ORDER BY source, dir",  # noqa: S608
            (to_us(now),),
        )
        return [(r[0], pg_name(r[1])) for r in cursor]

    def due_in(
        self, source: str, directory: str, now: datetime, limit: int, after: str = ""
    ) -> list[Recording]:
        cursor = self._db.execute(
            f"SELECT {COLUMNS} FROM recordings WHERE source = %s AND dir = %s "  # noqa: S608
            f"AND location > %s AND {_DUE} ORDER BY location LIMIT %s",
            (source, pg_path(directory), pg_path(after), to_us(now), limit),
        )
        return [recording(r) for r in cursor]

    def counts(self, now: datetime) -> dict[str | None, tuple[int, int]]:
        totals = self._db.execute("SELECT licence, recordings FROM totals WHERE recordings > 0")
        counts = {(r[0] or None): (int(r[1]), 0) for r in totals}
        due = self._db.execute(
            f"SELECT licence, COUNT(*) FROM recordings WHERE {_DUE} GROUP BY licence",  # noqa: S608
            (to_us(now),),
        )
        for licence, n in due:
            counts[licence] = (counts.get(licence, (0, 0))[0], int(n))
        return counts

    def next_deadline(self, after: datetime | None = None) -> datetime | None:
        floor = -(2**63) if after is None else to_us(after)
        row = self._db.execute(
            "SELECT MIN(deadline) FROM recordings WHERE state = 'present' AND held = 0 "
            "AND deadline > %s",
            (floor,),
        ).fetchone()
        return None if row is None or row[0] is None else from_us(row[0])

    def get(self, recording_id: str) -> Recording | None:
        row = self._db.execute(
            f"SELECT {COLUMNS} FROM recordings WHERE id = %s",  # noqa: S608
            (recording_id,),
        ).fetchone()
        return None if row is None else recording(row)

    def newest_mtime_ns(self, source: str, limit_ns: int) -> int | None:
        row = self._db.execute(
            "SELECT MAX(mtime_ns) FROM recordings"
            " WHERE source = %s AND state = 'present' AND mtime_ns <= %s",
            (source, limit_ns),
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def all(self) -> Iterator[Recording]:
        """Every recording in id order (tests and small tools)."""
        for row in self._db.execute(f"SELECT {COLUMNS} FROM recordings ORDER BY id"):  # noqa: S608
            yield recording(row)

    def set_skip_reason(self, recording_id: str, reason: str | None) -> None:
        """Why a due recording was kept (None: no longer); its directory loses its stamp."""
        with self._tx():
            self._db.execute(
                "UPDATE recordings SET skip_reason = %s WHERE id = %s", (reason, recording_id)
            )
            if reason is not None:
                self._db.execute(
                    "DELETE FROM dir_stamps WHERE (source, dir) IN "
                    "(SELECT source, dir FROM recordings WHERE id = %s)",
                    (recording_id,),
                )

    # -- intents ------------------------------------------------------------------------------

    def add_intents(self, intents: Iterable[Intent]) -> set[str]:
        recorded: set[str] = set()
        with self._tx():
            for i in intents:
                cursor = self._db.execute(
                    "INSERT INTO intents (id, recording_id, audit_offset, temp_name, plan, "
                    "created) SELECT %s, %s, %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM "
                    "recordings WHERE id = %s AND state = 'present' AND held = 0 FOR SHARE)",
                    (
                        i.id,
                        i.recording_id,
                        i.audit_offset,
                        i.temp_name,
                        json.dumps(i.plan, sort_keys=True),
                        to_us(i.created),
                        i.recording_id,
                    ),
                )
                if cursor.rowcount == 1:
                    recorded.add(i.id)
        return recorded

    def pending_intents(self) -> list[Intent]:
        cursor = self._db.execute(
            "SELECT id, recording_id, audit_offset, temp_name, plan, created FROM intents "
            "ORDER BY audit_offset, id"
        )
        return [row_to_intent(r) for r in cursor]

    def resolve_intents(
        self, erased: Sequence[tuple[str, datetime]], dropped: Sequence[str]
    ) -> None:
        with self._tx():
            rows = self._db.execute("SELECT id, recording_id FROM intents FOR UPDATE")
            ids: dict[str, str] = {r[0]: r[1] for r in rows}
            self._db.cursor().executemany(
                "UPDATE recordings SET state = 'erased', erased_at = %s, skip_reason = NULL "
                "WHERE id = %s",
                [(to_us(when), ids[iid]) for iid, when in erased if iid in ids],
            )
            self._db.execute(
                "DELETE FROM intents WHERE id = ANY(%s)",
                ([iid for iid, _ in erased] + list(dropped),),
            )

    # -- breakers -----------------------------------------------------------------------------

    def breakers(self) -> dict[str, Breaker]:
        cursor = self._db.execute(f"SELECT {BREAKER_COLUMNS} FROM breakers")  # noqa: S608
        return {r[0]: row_to_breaker(r) for r in cursor}

    def trip_breaker(self, licence: str, now: datetime, due: int, total: int) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO breakers (licence, tripped_at, due, total) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (licence) DO UPDATE SET tripped_at = excluded.tripped_at, "
                "due = excluded.due, total = excluded.total, released_at = NULL, "
                "released_by = NULL",
                (licence, to_us(now), due, total),
            )

    def release_breaker(self, licence: str, now: datetime, actor: str) -> bool:
        with self._tx():
            cursor = self._db.execute(
                "UPDATE breakers SET released_at = %s, released_by = %s "
                "WHERE licence = %s AND released_at IS NULL",
                (to_us(now), actor, licence),
            )
        return cursor.rowcount == 1

    def clear_breaker(self, licence: str) -> None:
        with self._tx():
            self._db.execute("DELETE FROM breakers WHERE licence = %s", (licence,))

    def restore_breakers(self, breakers: Sequence[Breaker], rearmed: Sequence[str] = ()) -> None:
        with self._tx():
            self._db.execute("DELETE FROM breakers WHERE licence = ANY(%s)", (list(rearmed),))
            self._db.cursor().executemany(
                f"INSERT INTO breakers ({BREAKER_COLUMNS}) "  # noqa: S608
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (licence) DO UPDATE SET "
                "tripped_at = excluded.tripped_at, due = excluded.due, total = excluded.total, "
                "released_at = excluded.released_at, released_by = excluded.released_by",
                [
                    (b.licence, to_us(b.tripped_at), b.due, b.total, _us(b.released_at),
                     b.released_by)
                    for b in breakers
                ],
            )  # fmt: skip
