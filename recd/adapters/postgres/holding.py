"""The PostgreSQL catalogue's legal-hold role: place, release and restore holds.

The same rules as ``recd.adapters.sqlite.holding``: a hold is a rule, not a snapshot, so the
active holds and the released ones in their grace are kept in memory (``_load_holds``) for
``upsert``; placing, releasing and restoring each change holds and recordings in one
transaction. Hold numbers follow the highest stored (the table is locked while one is taken).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from recd.adapters._legalrows import HOLD_COLUMNS, hold_values
from recd.adapters._rows import COLUMNS, to_us
from recd.adapters.postgres.errors import guarded
from recd.adapters.postgres.queries import count_matching, scope_where, select_hold, select_holds
from recd.adapters.postgres.store import Store, recording
from recd.core.holds import Hold, holding
from recd.core.requests import scope_json
from recd.core.scope import Scope

_HOLD_NUMBER = re.compile(r"H-([0-9]{1,18})")
#: The next hold number; under a lock, so two writers never take the same.
_NEXT = "(SELECT coalesce(max(n), 0) + 1 FROM holds)"
#: Floor the deadline of what a release lets go at its due_from (``%(floor)s``).
_FLOOR = (
    "not_before = %(floor)s, deadline = CASE WHEN deadline IS NULL OR deadline >= %(floor)s "
    "THEN deadline ELSE %(floor)s END"
)


def _us(value: datetime | None) -> int | None:
    return None if value is None else to_us(value)


@guarded
class Holding(Store):
    """Legal holds (``ports`` holds role) of ``PostgresCatalogue``."""

    def _load_holds(self) -> None:
        every = select_holds(self._db, everything=True)
        self._active = [h for h in every if h.active]
        self._floors = [h for h in every if not h.active and h.due_from is not None]

    def _lock_holds(self) -> None:
        self._db.execute("LOCK TABLE holds IN SHARE ROW EXCLUSIVE MODE")

    def holds(self, *, everything: bool = False) -> list[Hold]:
        return select_holds(self._db, everything=everything)

    def hold(self, hold_id: str) -> Hold | None:
        return select_hold(self._db, hold_id)

    def place_hold(self, hold: Hold) -> tuple[Hold, int]:
        with self._tx():
            self._lock_holds()
            row = self._db.execute(f"SELECT {_NEXT}").fetchone()
            assert row is not None
            stored = replace(hold, id=f"H-{row[0]:04d}")
            self._db.execute(
                "INSERT INTO holds (n, id, licence, case_ref, reason, scope, placed_at, "
                "placed_by, until, state) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'active')",
                (
                    row[0],
                    stored.id,
                    hold.licence,
                    hold.case,
                    hold.reason,
                    json.dumps(scope_json(hold.scope), sort_keys=True),
                    to_us(hold.placed_at),
                    hold.placed_by,
                    _us(hold.until),
                ),
            )
            where, args = scope_where(hold.scope)
            self._db.execute(
                "UPDATE recordings SET held = 1 WHERE state = 'present' AND held = 0 "  # noqa: S608
                f"AND {where}",
                args,
            )
            matched = count_matching(self._db, hold.scope)
        self._load_holds()
        return stored, matched

    def release_hold(
        self, hold: Hold, *, at: datetime, by: str, reason: str, expired: bool, not_before: datetime
    ) -> int:
        with self._tx():
            self._lock_holds()
            self._load_holds()  # the other holds as committed, through any connection
            others = [h for h in self._active if h.id != hold.id and h.licence == hold.licence]
            where, args = scope_where(hold.scope)
            for n, other in enumerate(others):
                other_where, other_args = scope_where(other.scope, prefix=f"o{n}_")
                where += f" AND NOT ({other_where})"
                args |= other_args
            self._db.execute(
                "UPDATE holds SET state = %s, released_at = %s, released_by = %s, "
                "release_reason = %s, due_from = %s WHERE id = %s AND state = 'active'",
                (
                    "expired" if expired else "released",
                    to_us(at),
                    by,
                    reason,
                    to_us(not_before),
                    hold.id,
                ),
            )
            cursor = self._db.execute(
                f"UPDATE recordings SET held = 0, {_FLOOR} "  # noqa: S608
                f"WHERE state = 'present' AND held = 1 AND {where}",
                args | {"floor": to_us(not_before)},
            )
            released = cursor.rowcount
        self._load_holds()
        return released

    def restore_holds(self, holds: Sequence[Hold]) -> int:
        with self._tx():
            self._lock_holds()
            self._store_holds(holds)
            self._let_go(h for h in holds if not h.active)
            for h in holds:
                if not h.active and h.due_from is not None:
                    where, args = scope_where(h.scope)
                    self._db.execute(
                        f"UPDATE recordings SET {_FLOOR} WHERE state = 'present' "  # noqa: S608
                        f"AND held = 0 AND (not_before IS NULL OR not_before < %(floor)s) "
                        f"AND {where}",
                        args | {"floor": to_us(h.due_from)},
                    )
            for h in holds:
                if h.active:
                    where, args = scope_where(h.scope)
                    self._db.execute(
                        "UPDATE recordings SET held = 1 WHERE state = 'present' "  # noqa: S608
                        f"AND held = 0 AND {where}",
                        args,
                    )
            row = self._db.execute(
                "SELECT COUNT(*) FROM recordings WHERE state = 'present' AND held = 1"
            ).fetchone()
        self._load_holds()
        return 0 if row is None else int(row[0])

    def _store_holds(self, holds: Sequence[Hold]) -> None:
        for h in holds:
            number = _HOLD_NUMBER.fullmatch(h.id)
            self._db.execute("DELETE FROM holds WHERE id = %s", (h.id,))
            self._db.execute(
                f"INSERT INTO holds (n, {HOLD_COLUMNS}) "  # noqa: S608
                f"VALUES (coalesce(%s, {_NEXT}), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "%s)",
                (
                    None if number is None else int(number[1]),
                    *hold_values(h),
                ),
            )

    def _let_go(self, released: Iterable[Hold]) -> None:
        """Present recordings held that a released hold matches and no active hold keeps are
        held no more (checked in Python, per recording, as in SQLite)."""
        active = [h for h in select_holds(self._db) if h.active]
        for h in released:
            where, args = scope_where(h.scope)
            rows = self._db.execute(
                f"SELECT {COLUMNS} FROM recordings WHERE state = 'present' AND held = 1 "  # noqa: S608
                f"AND {where}",
                args,
            ).fetchall()
            free = [r.id for r in map(recording, rows) if not holding(active, r)]
            self._db.execute("UPDATE recordings SET held = 0 WHERE id = ANY(%s)", (free,))

    def held_count(self, scope: Scope) -> int:
        return count_matching(self._db, scope)
