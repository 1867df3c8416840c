"""The mass-deletion breakers (``ports`` sweep role), written once for both SQL adapters.

A breaker trips per licence when a sweep would erase too much at once; it holds until an
operator releases it, and a rebuild restores breakers as the audit log left them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from recd.adapters._rows import BREAKER_COLUMNS, row_to_breaker, to_us
from recd.adapters._sql import Db, SharedRole
from recd.ports.records import Breaker

_TRIP = (
    "INSERT INTO breakers (licence, tripped_at, due, total) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (licence) DO UPDATE SET tripped_at = excluded.tripped_at, "
    "due = excluded.due, total = excluded.total, released_at = NULL, released_by = NULL"
)
_RELEASE = (
    "UPDATE breakers SET released_at = ?, released_by = ? WHERE licence = ? AND released_at IS NULL"
)
_RESTORE = (
    f"INSERT INTO breakers ({BREAKER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "  # noqa: S608
    "ON CONFLICT (licence) DO UPDATE SET tripped_at = excluded.tripped_at, "
    "due = excluded.due, total = excluded.total, released_at = excluded.released_at, "
    "released_by = excluded.released_by"
)


def select_breakers(db: Db) -> dict[str, Breaker]:
    """Every breaker by licence (the writer's and the read-only reader's)."""
    cursor = db.execute(f"SELECT {BREAKER_COLUMNS} FROM breakers")  # noqa: S608
    return {r[0]: row_to_breaker(r) for r in cursor}


class Breakers(SharedRole):
    """Breakers of a catalogue: tripped by a sweep, released by an operator, restored."""

    def breakers(self) -> dict[str, Breaker]:
        return select_breakers(self._db)

    def trip_breaker(self, licence: str, now: datetime, due: int, total: int) -> None:
        with self._tx():
            self._db.execute(self._q(_TRIP), (licence, to_us(now), due, total))

    def release_breaker(self, licence: str, now: datetime, actor: str) -> bool:
        """Let the next sweep erase ``licence``'s due recordings; False if none is tripped."""
        with self._tx():
            cursor = self._db.execute(self._q(_RELEASE), (to_us(now), actor, licence))
            return cursor.rowcount == 1

    def clear_breaker(self, licence: str) -> None:
        with self._tx():
            self._db.execute(self._q("DELETE FROM breakers WHERE licence = ?"), (licence,))

    def restore_breakers(self, breakers: Sequence[Breaker], rearmed: Sequence[str] = ()) -> None:
        """Store ``breakers`` as they were (a rebuild from the audit log), replacing any
        stored under the same licence, after dropping those of ``rearmed``."""
        with self._tx():
            self._db.cursor().executemany(
                self._q("DELETE FROM breakers WHERE licence = ?"), [(b,) for b in rearmed]
            )
            self._db.cursor().executemany(
                self._q(_RESTORE),
                [
                    (b.licence, to_us(b.tripped_at), b.due, b.total,
                     None if b.released_at is None else to_us(b.released_at), b.released_by)
                    for b in breakers
                ],
            )  # fmt: skip
