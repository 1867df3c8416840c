"""The catalogue's legal-hold role: place, release and restore holds and what they hold.

A hold is a rule, not a snapshot: the active holds and the released ones in their grace are
kept in memory (``_load_holds``, after every change) so that ``upsert`` holds or floors what a
scan indexes later. Placing, releasing and restoring each change holds and recordings in one
transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from recd.adapters._legalrows import HOLD_COLUMNS, hold_values
from recd.adapters._rows import COLUMNS, row_to_recording, to_us
from recd.adapters.sqlite.corrupt import guarded
from recd.adapters.sqlite.queries import (
    count_matching,
    scope_where,
    select_hold,
    select_holds,
)
from recd.adapters.sqlite.store import Store
from recd.core.holds import Hold, holding
from recd.core.requests import scope_json
from recd.core.scope import Scope

_HOLD_NUMBER = re.compile(r"H-([0-9]{1,18})")


@guarded
class Holding(Store):
    """Legal holds (``ports`` holds role) of ``SqliteCatalogue``."""

    def _load_holds(self) -> None:
        """The active holds (what ``upsert`` holds) and the released ones whose grace may still
        run (``upsert`` floors what they match): both rules, not snapshots."""
        every = select_holds(self._db, everything=True)
        self._active = [h for h in every if h.active]
        self._floors = [h for h in every if not h.active and h.due_from is not None]

    def holds(self, *, everything: bool = False) -> list[Hold]:
        return select_holds(self._db, everything=everything)

    def hold(self, hold_id: str) -> Hold | None:
        return select_hold(self._db, hold_id)

    def place_hold(self, hold: Hold) -> tuple[Hold, int]:
        """Store ``hold`` (its id is ``H-`` and its number) and hold what it matches."""
        with self._tx():
            cursor = self._db.execute(
                "INSERT INTO holds (id, licence, case_ref, reason, scope, placed_at, placed_by, "
                "until, state) VALUES ('', ?, ?, ?, ?, ?, ?, ?, 'active')",
                (
                    hold.licence,
                    hold.case,
                    hold.reason,
                    json.dumps(scope_json(hold.scope), sort_keys=True),
                    to_us(hold.placed_at),
                    hold.placed_by,
                    None if hold.until is None else to_us(hold.until),
                ),
            )
            stored = replace(hold, id=f"H-{cursor.lastrowid:04d}")
            self._db.execute("UPDATE holds SET id = ? WHERE n = ?", (stored.id, cursor.lastrowid))
            where, args = scope_where(hold.scope)
            self._db.execute(
                f"UPDATE recordings SET held = 1 WHERE state = 'present' AND held = 0 "  # noqa: S608
                f"AND {where}",
                args,
            )
            matched = count_matching(self._db, hold.scope)
        self._load_holds()
        return stored, matched

    def release_hold(
        self, hold: Hold, *, at: datetime, by: str, reason: str, expired: bool, not_before: datetime
    ) -> int:
        """End ``hold``; what no other active hold matches is released, due no earlier than
        ``not_before``. Returns how many recordings were released."""
        others = [h for h in self._active if h.id != hold.id and h.licence == hold.licence]
        where, args = scope_where(hold.scope)
        for n, other in enumerate(others):
            other_where, other_args = scope_where(other.scope, prefix=f"o{n}_")
            where += f" AND NOT ({other_where})"
            args |= other_args
        with self._tx():
            self._db.execute(
                "UPDATE holds SET state = ?, released_at = ?, released_by = ?, "
                "release_reason = ?, due_from = ? WHERE id = ? AND state = 'active'",
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
                "UPDATE recordings SET held = 0, not_before = :floor, deadline = CASE "  # noqa: S608
                "WHEN deadline IS NULL OR deadline >= :floor THEN deadline ELSE :floor END "
                f"WHERE state = 'present' AND held = 1 AND {where}",
                args | {"floor": to_us(not_before)},
            )
            released = cursor.rowcount
        self._load_holds()
        return released

    def restore_holds(self, holds: Sequence[Hold]) -> int:
        """Store holds as they were (ids, states, times: a rebuild from the audit log), in one
        transaction with what they mean for the present recordings: an active hold holds what
        it matches; a released one lets go of what it matches that no active hold keeps and
        floors, at its ``due_from``, the deadline of it. A hold already stored under its id is
        replaced (so restoring the same holds again changes nothing). Later holds are numbered
        after the highest restored. Returns how many are held."""
        with self._tx():
            self._store_holds(holds)
            self._let_go(h for h in holds if not h.active)
            for h in holds:
                if not h.active and h.due_from is not None:
                    where, args = scope_where(h.scope)
                    self._db.execute(
                        "UPDATE recordings SET not_before = :floor, deadline = CASE "  # noqa: S608
                        "WHEN deadline IS NULL OR deadline >= :floor THEN deadline "
                        "ELSE :floor END WHERE state = 'present' AND held = 0 "
                        f"AND (not_before IS NULL OR not_before < :floor) AND {where}",
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
            (held,) = self._db.execute(
                "SELECT COUNT(*) FROM recordings WHERE state = 'present' AND held = 1"
            ).fetchone()
        self._load_holds()
        return int(held)

    def _store_holds(self, holds: Sequence[Hold]) -> None:
        for h in holds:
            number = _HOLD_NUMBER.fullmatch(h.id)
            self._db.execute("DELETE FROM holds WHERE id = ?", (h.id,))
            self._db.execute(
                f"INSERT INTO holds (n, {HOLD_COLUMNS}) "  # noqa: S608
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    None if number is None else int(number[1]),
                    *hold_values(h),
                ),
            )

    def _let_go(self, released: Iterable[Hold]) -> None:
        """Present recordings held that a released hold matches and no active hold (the ones
        just stored included) keeps are held no more; checked in Python, per recording, as a
        rebuild may restore thousands of holds (too many for one SQL expression)."""
        active = [h for h in select_holds(self._db) if h.active]
        for h in released:
            where, args = scope_where(h.scope)
            rows = self._db.execute(
                f"SELECT {COLUMNS} FROM recordings WHERE state = 'present' AND held = 1 "  # noqa: S608
                f"AND {where}",
                args,
            ).fetchall()
            free = [(r.id,) for r in map(row_to_recording, rows) if not holding(active, r)]
            self._db.executemany("UPDATE recordings SET held = 0 WHERE id = ?", free)

    def held_count(self, scope: Scope) -> int:
        return count_matching(self._db, scope)
