"""The catalogue's sweep role: what is due, erase intents and the mass-deletion breakers.

Due recordings are read through the partial deadline index (never the whole catalogue);
``add_intents`` is the last check before an erase (a hold placed after the plan wins) and
``resolve_intents`` marks erasures done in one transaction with dropping their intents.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import datetime

from recd.adapters._breakers import Breakers
from recd.adapters._rows import (
    COLUMNS,
    from_us,
    path_param,
    path_value,
    row_to_intent,
    row_to_recording,
    to_us,
)
from recd.adapters.sqlite.corrupt import guarded
from recd.adapters.sqlite.queries import hinted
from recd.adapters.sqlite.store import Store
from recd.core.model import Recording
from recd.ports.records import Intent


@guarded
class Sweeping(Store, Breakers):
    """Due recordings, intents and breakers (``ports`` sweep role) of ``SqliteCatalogue``."""

    def due_dirs(self, now: datetime) -> list[tuple[str, str]]:
        """``(source, directory)`` of every directory holding a recording due at ``now``."""
        cursor = hinted(
            self._db,
            # INDEXED BY: left alone, SQLite reads all of recordings_dir for the ORDER BY
            # rather than the few due rows of the partial deadline index (O(catalogue)).
            "SELECT DISTINCT source, dir FROM recordings {hint} "
            "WHERE state = 'present' AND held = 0 AND deadline <= ? ORDER BY source, dir",
            (to_us(now),),
            "recordings_due",
        )
        return [(r[0], path_value(r[1])) for r in cursor]

    def due_in(
        self, source: str, directory: str, now: datetime, limit: int, after: str = ""
    ) -> list[Recording]:
        """Present recordings of one directory due at ``now``, by location, after ``after``."""
        cursor = self._db.execute(
            f"SELECT {COLUMNS} FROM recordings WHERE source = ? AND dir = ? "  # noqa: S608
            "AND location > ? AND state = 'present' AND held = 0 AND deadline <= ? "
            "ORDER BY location LIMIT ?",
            (source, path_param(directory), path_param(after), to_us(now), limit),
        )
        return [row_to_recording(r) for r in cursor]

    def counts(self, now: datetime) -> dict[str | None, tuple[int, int]]:
        """Per licence (None: unclassified): (present recordings, of which due at ``now``)."""
        # Totals from the trigger-kept table; due counts through the partial deadline index:
        # neither reads the whole catalogue, so a sweep per deadline stays cheap.
        totals = self._db.execute("SELECT licence, recordings FROM totals WHERE recordings > 0")
        counts = {(r[0] or None): (r[1], 0) for r in totals}
        due = hinted(
            self._db,
            # INDEXED BY: left alone, SQLite scans recordings_licence for the GROUP BY.
            "SELECT licence, COUNT(*) FROM recordings {hint} "
            "WHERE state = 'present' AND held = 0 AND deadline <= ? GROUP BY licence",
            (to_us(now),),
            "recordings_due",
        )
        for licence, n in due:
            counts[licence] = (counts.get(licence, (0, 0))[0], n)
        return counts

    def next_deadline(self, after: datetime | None = None) -> datetime | None:
        """The earliest deadline of a present recording (strictly after ``after``, if given)."""
        floor = -(2**63) if after is None else to_us(after)
        row = self._db.execute(
            "SELECT MIN(deadline) FROM recordings WHERE state = 'present' AND held = 0 "
            "AND deadline > ?",
            (floor,),
        ).fetchone()
        return None if row[0] is None else from_us(row[0])

    def get(self, recording_id: str) -> Recording | None:
        row = self._db.execute(
            f"SELECT {COLUMNS} FROM recordings WHERE id = ?",  # noqa: S608
            (recording_id,),
        ).fetchone()
        return None if row is None else row_to_recording(row)

    def newest_mtime_ns(self, source: str, limit_ns: int) -> int | None:
        """One SQL aggregate over the source's rows (at start only: the clock guard)."""
        (newest,) = self._db.execute(
            "SELECT MAX(mtime_ns) FROM recordings"
            " WHERE source = ? AND state = 'present' AND mtime_ns <= ?",
            (source, limit_ns),
        ).fetchone()
        return None if newest is None else int(newest)

    def all(self) -> Iterator[Recording]:
        """Every recording in id order (tests and small tools; streams)."""
        for row in self._db.execute(f"SELECT {COLUMNS} FROM recordings ORDER BY id"):  # noqa: S608
            yield row_to_recording(row)

    def set_skip_reason(self, recording_id: str, reason: str | None) -> None:
        """Why a due recording was kept (None: no longer). Its directory loses its stamp: the
        next scan lists it and stats the file again (one changed in place, say, is re-indexed
        even when nothing re-indexed it at once)."""
        with self._tx():
            self._db.execute(
                "UPDATE recordings SET skip_reason = ? WHERE id = ?", (reason, recording_id)
            )
            if reason is not None:
                self._db.execute(
                    "DELETE FROM dir_stamps WHERE (source, dir) IN "
                    "(SELECT source, dir FROM recordings WHERE id = ?)",
                    (recording_id,),
                )

    # -- intents ------------------------------------------------------------------------------

    def add_intents(self, intents: Iterable[Intent]) -> set[str]:
        """Record each intent whose recording is still present and not held, in one
        transaction; the last check before an erase, so a hold placed after the plan wins."""
        recorded: set[str] = set()
        with self._tx():
            for i in intents:
                cursor = self._db.execute(
                    "INSERT INTO intents (id, recording_id, audit_offset, temp_name, plan, "
                    "created) SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM recordings "
                    "WHERE id = ? AND state = 'present' AND held = 0)",
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

    #: One host alone (``ports.sweeping``).
    shared = False

    def server_time(self) -> datetime | None:
        """None: SQLite has no server clock; the host's is the only one."""
        return None

    def pending_intents(
        self, now: datetime | None = None, sources: Collection[str] | None = None
    ) -> list[Intent]:
        """Every intent (of ``sources``): one host is one node, which takes over all of them."""
        columns = "i.id, i.recording_id, i.audit_offset, i.temp_name, i.plan, i.created"
        if sources is None:
            cursor = self._db.execute(
                f"SELECT {columns} FROM intents i ORDER BY i.audit_offset, i.id"  # noqa: S608
            )
        else:
            names = sorted(sources)
            cursor = self._db.execute(
                f"SELECT {columns} FROM intents i JOIN recordings r ON r.id = i.recording_id "  # noqa: S608
                f"WHERE r.source IN ({', '.join('?' * len(names))}) "
                "ORDER BY i.audit_offset, i.id",
                names,
            )
        return [row_to_intent(r) for r in cursor]

    def resolve_intents(
        self, erased: Sequence[tuple[str, datetime]], dropped: Sequence[str]
    ) -> None:
        """In one transaction: mark recordings erased and drop every intent that is settled.

        ``erased`` holds ``(intent id, erased at)`` for erasures that were audited as done;
        ``dropped`` the ids of intents that ended otherwise (failed, or never started).
        """
        with self._tx():
            ids = dict(self._db.execute("SELECT id, recording_id FROM intents"))
            self._db.executemany(
                "UPDATE recordings SET state = 'erased', erased_at = ?, skip_reason = NULL "
                "WHERE id = ?",
                [(to_us(when), ids[iid]) for iid, when in erased if iid in ids],
            )
            self._db.executemany(
                "DELETE FROM intents WHERE id = ?",
                [(iid,) for iid, _ in erased] + [(iid,) for iid in dropped],
            )
