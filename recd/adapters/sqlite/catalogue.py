"""The catalogue on SQLite: WAL, synchronous=FULL, one writer connection, versioned schema.

Times are stored as integer microseconds since the Unix epoch (UTC); a NULL deadline means the
recording has none (retention ``never``, or unclassified and kept). The service is the only
writer; readers (``recd.adapters.sqlite.reader``) open their own read-only connections, which
WAL allows.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from recd.adapters.sqlite.corrupt import FAILURES, check, corruption, guarded, move_aside
from recd.adapters.sqlite.schema import (
    BREAKER_COLUMNS,
    COLUMNS,
    HOLD_COLUMNS,
    MIGRATIONS,
    REQUEST_COLUMNS,
    SCHEMA_VERSION,
    count_matching,
    fields_json,
    from_us,
    item_data,
    mark_from_json,
    path_param,
    path_value,
    register_functions,
    row_to_breaker,
    row_to_intent,
    row_to_known,
    row_to_mirrored,
    row_to_recording,
    scope_where,
    select_hold,
    select_holds,
    select_items,
    select_matching,
    select_request,
    select_requests,
    to_us,
)
from recd.core.holds import Hold, holding
from recd.core.model import Recording
from recd.core.requests import scope_json
from recd.core.scope import Scope
from recd.core.segcheck import Print, Prints
from recd.errors import CatalogueCorrupt, StateError
from recd.ports import (
    AuditCheckpoint,
    AuditMark,
    Breaker,
    Intent,
    Known,
    Mirrored,
    RequestItem,
    RequestState,
    StoredRequest,
)

__all__ = ["SCHEMA_VERSION", "SqliteCatalogue", "from_us", "move_aside", "to_us"]


@guarded
class SqliteCatalogue:
    """The catalogue in ``<state_dir>/catalog.db``.

    Opening it checks it (``recd.adapters.sqlite.corrupt``): a corrupt file raises
    ``CatalogueCorrupt``, as does any method that meets a corrupt page or row later.
    ``quick_check``: run ``PRAGMA quick_check`` at open (cheap next to a start's scan).
    """

    def __init__(self, path: Path, *, quick_check: bool = True) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{path}: cannot open the catalogue: {exc}") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=5000")
            # 32 MiB of page cache: ids are hashes, so inserts land all over the B-tree.
            self._db.execute("PRAGMA cache_size=-32768")
            check(self._db, path, quick_check=quick_check)
            self._migrate()
            register_functions(self._db)
            self._load_holds()
            self.audit_mark()  # a mark that does not decode is found now, not mid-start
        except FAILURES as exc:
            problem = corruption(path, exc, self._db)
            self._db.close()
            if problem is not None:
                raise CatalogueCorrupt(str(path), problem) from exc
            raise StateError(f"{path}: cannot open the catalogue: {exc}") from exc
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{self.path}: catalogue schema {version} is newer than this recd "
                f"understands ({SCHEMA_VERSION}); upgrade recd"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            # executescript commits any open transaction first, so the script carries its own.
            self._db.executescript(
                f"BEGIN IMMEDIATE;{MIGRATIONS[target]}PRAGMA user_version={target};COMMIT;"
            )

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    # -- indexing -----------------------------------------------------------------------------

    def begin_scan(self, source: str, now: datetime, rule: str) -> bool:
        """Start a scan of ``source`` classified by ``rule`` (a fingerprint of the source's
        classification settings); returns whether the rule differs from the previous scan's,
        in which case every file must be re-classified."""
        with self._tx():
            row = self._db.execute("SELECT rule FROM scans WHERE source = ?", (source,)).fetchone()
            self._db.execute(
                "INSERT INTO scans (source, rule, started) VALUES (?, ?, ?) "
                "ON CONFLICT (source) DO UPDATE SET rule = excluded.rule, "
                "started = excluded.started, finished = NULL",
                (source, rule, to_us(now)),
            )
        return row is not None and row[0] != rule

    def in_dir(self, source: str, directory: str) -> dict[str, Known]:
        """Every recording catalogued in one directory of ``source`` ('' is the root)."""
        cursor = self._db.execute(
            "SELECT id, dev, ino, size, mtime_ns, state, ctime_ns, btime_ns FROM recordings "
            "WHERE source = ? AND dir = ?",
            (source, path_param(directory)),
        )
        return dict(row_to_known(r) for r in cursor)

    def dirs(self, source: str, under: str = "") -> list[str]:
        """The directories of ``source`` that hold present recordings (with ``under``: that
        directory and those below it, and possibly siblings that share its prefix).

        A skip-scan of ``recordings_dir``: one index seek per directory, where ``SELECT
        DISTINCT`` read every row of the source (and the table, for ``state``).
        """
        if not under:  # every TEXT, then every BLOB (the names that are not UTF-8)
            return self._skip_scan(source, "", None)
        key = path_param(under)
        # '0' sorts after '/'. A directory below a UTF-8 one may itself be stored as a BLOB.
        found = [] if isinstance(key, bytes) else self._skip_scan(source, under, under + "0")
        blob = key if isinstance(key, bytes) else under.encode()
        return found + self._skip_scan(source, blob, blob + b"0")

    def _skip_scan(self, source: str, lo: str | bytes, hi: str | bytes | None) -> list[str]:
        below = "" if hi is None else " AND dir < :hi"
        cursor = self._db.execute(
            "WITH RECURSIVE d(dir) AS ("  # noqa: S608 (only the literal bound is formatted in)
            f" SELECT (SELECT MIN(dir) FROM recordings WHERE source = :s AND dir >= :lo{below})"
            " UNION ALL"
            f" SELECT (SELECT MIN(dir) FROM recordings WHERE source = :s AND dir > d.dir{below})"
            " FROM d WHERE d.dir IS NOT NULL)"
            " SELECT dir FROM d WHERE dir IS NOT NULL AND EXISTS (SELECT 1 FROM recordings"
            " WHERE source = :s AND dir = d.dir AND state = 'present')",
            {"s": source, "lo": lo, "hi": hi},
        )
        return [path_value(r[0]) for r in cursor]

    def upsert(self, rows: Sequence[Recording], now: datetime) -> None:
        """Insert or refresh recordings a scan saw; they become ``present``, held if an
        active hold matches them (a hold is a rule: it covers recordings indexed later)."""
        now_us = to_us(now)
        active = self._active
        floors = [(h.scope, h.due_from) for h in self._floors if h.due_from and h.due_from > now]
        params = [
            (
                r.id,
                r.source,
                path_param(r.relpath),
                path_param(r.relpath.rpartition("/")[0]),
                r.dev,
                r.ino,
                r.size,
                r.mtime_ns,
                r.classification.licence,
                to_us(r.classification.started),
                None if r.deadline is None else to_us(max(r.deadline, floor or r.deadline)),
                fields_json(r.classification),
                to_us(r.first_seen),
                now_us,
                1 if active and holding(active, r) else 0,
                r.ctime_ns,
                r.btime_ns,
                None if floor is None else to_us(floor),
            )
            for r in rows
            for floor in [_floor(floors, r)]
        ]
        with self._tx():
            self._db.executemany(
                "INSERT INTO recordings (id, source, location, dir, dev, ino, size, mtime_ns, "  # noqa: S608
                "licence, started, deadline, fields, state, first_seen, indexed_at, held, "
                "ctime_ns, btime_ns, not_before) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'present', ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET dev = excluded.dev, ino = excluded.ino, "
                "size = excluded.size, mtime_ns = excluded.mtime_ns, licence = excluded.licence, "
                f"started = excluded.started, deadline = {_FLOORED.format('excluded.deadline')}, "
                "fields = excluded.fields, state = 'present', indexed_at = excluded.indexed_at, "
                "erased_at = NULL, skip_reason = NULL, held = excluded.held, "
                "ctime_ns = excluded.ctime_ns, btime_ns = excluded.btime_ns, "
                "not_before = CASE WHEN excluded.not_before IS NULL THEN not_before "
                "WHEN not_before IS NULL OR excluded.not_before > not_before "
                "THEN excluded.not_before ELSE not_before END",
                params,
            )

    def mark_missing(self, ids: Sequence[str]) -> None:
        """Present recordings that are no longer where they were become ``missing``."""
        with self._tx():
            self._db.executemany(
                "UPDATE recordings SET state = 'missing' WHERE id = ? AND state = 'present'",
                [(i,) for i in ids],
            )

    def mark_dirs_missing(self, source: str, directories: Sequence[str]) -> int:
        """Every present recording in these directories of ``source`` becomes ``missing``."""
        with self._tx():
            # rowcount, not total_changes: the latter counts the totals triggers' rows too.
            cursor = self._db.executemany(
                "UPDATE recordings SET state = 'missing' "
                "WHERE source = ? AND dir = ? AND state = 'present'",
                [(source, path_param(d)) for d in directories],
            )
            return cursor.rowcount

    def finish_scan(self, source: str, now: datetime) -> None:
        with self._tx():
            self._db.execute("UPDATE scans SET finished = ? WHERE source = ?", (to_us(now), source))

    # -- policies -----------------------------------------------------------------------------

    def licences(self) -> list[str | None]:
        """Every licence with present recordings (None: unclassified)."""
        cursor = self._db.execute("SELECT DISTINCT licence FROM recordings WHERE state = 'present'")
        return [r[0] for r in cursor]

    def policies(self) -> dict[str | None, str]:
        rows = self._db.execute("SELECT licence, policy FROM policies")
        return {(r[0] or None): r[1] for r in rows}

    def set_deadlines(
        self,
        licence: str | None,
        policy: str,
        deadline_of: Callable[[datetime], datetime | None],
    ) -> int:
        """Recompute the deadline of every present recording of ``licence`` (None: unclassified)
        from its start time, and remember ``policy`` as the rule they were computed under."""
        where = "licence IS NULL" if licence is None else "licence = ?"
        args: tuple[Any, ...] = () if licence is None else (licence,)
        changed = 0
        with self._tx():
            cursor = self._db.execute(
                f"SELECT id, started FROM recordings WHERE {where} AND state = 'present'",  # noqa: S608
                args,
            )
            batch: list[tuple[int | None, str]] = []
            for rid, started in cursor.fetchall():
                deadline = deadline_of(from_us(started))
                batch.append((None if deadline is None else to_us(deadline), rid))
            self._db.executemany(
                f"UPDATE recordings SET deadline = {_FLOORED.format('?1')} WHERE id = ?2",  # noqa: S608
                batch,
            )
            changed = len(batch)
            self._db.execute(
                "INSERT INTO policies (licence, policy) VALUES (?, ?) "
                "ON CONFLICT (licence) DO UPDATE SET policy = excluded.policy",
                (licence or "", policy),
            )
        return changed

    def record_policy(self, licence: str | None, policy: str) -> None:
        """Remember the rule under which ``licence``'s deadlines were computed (no recompute)."""
        with self._tx():
            self._db.execute(
                "INSERT INTO policies (licence, policy) VALUES (?, ?) ON CONFLICT (licence) "
                "DO NOTHING",
                (licence or "", policy),
            )

    # -- sweeping -----------------------------------------------------------------------------

    def due_dirs(self, now: datetime) -> list[tuple[str, str]]:
        """``(source, directory)`` of every directory holding a recording due at ``now``."""
        cursor = self._db.execute(
            # INDEXED BY: left alone, SQLite reads all of recordings_dir for the ORDER BY
            # rather than the few due rows of the partial deadline index (O(catalogue)).
            "SELECT DISTINCT source, dir FROM recordings INDEXED BY recordings_due "
            "WHERE state = 'present' AND held = 0 AND deadline <= ? ORDER BY source, dir",
            (to_us(now),),
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
        due = self._db.execute(
            # INDEXED BY: left alone, SQLite scans recordings_licence for the GROUP BY.
            "SELECT licence, COUNT(*) FROM recordings INDEXED BY recordings_due "
            "WHERE state = 'present' AND held = 0 AND deadline <= ? GROUP BY licence",
            (to_us(now),),
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
        with self._tx():
            self._db.execute(
                "UPDATE recordings SET skip_reason = ? WHERE id = ?", (reason, recording_id)
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

    def pending_intents(self) -> list[Intent]:
        cursor = self._db.execute(
            "SELECT id, recording_id, audit_offset, temp_name, plan, created FROM intents "
            "ORDER BY audit_offset, id"
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

    # -- breakers -----------------------------------------------------------------------------

    def breakers(self) -> dict[str, Breaker]:
        cursor = self._db.execute(f"SELECT {BREAKER_COLUMNS} FROM breakers")  # noqa: S608
        return {r[0]: row_to_breaker(r) for r in cursor}

    def trip_breaker(self, licence: str, now: datetime, due: int, total: int) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO breakers (licence, tripped_at, due, total) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (licence) DO UPDATE SET tripped_at = excluded.tripped_at, "
                "due = excluded.due, total = excluded.total, released_at = NULL, "
                "released_by = NULL",
                (licence, to_us(now), due, total),
            )

    def release_breaker(self, licence: str, now: datetime, actor: str) -> bool:
        """Let the next sweep erase ``licence``'s due recordings; False if none is tripped."""
        with self._tx():
            cursor = self._db.execute(
                "UPDATE breakers SET released_at = ?, released_by = ? "
                "WHERE licence = ? AND released_at IS NULL",
                (to_us(now), actor, licence),
            )
            return cursor.rowcount == 1

    def clear_breaker(self, licence: str) -> None:
        with self._tx():
            self._db.execute("DELETE FROM breakers WHERE licence = ?", (licence,))

    def restore_breakers(self, breakers: Sequence[Breaker], rearmed: Sequence[str] = ()) -> None:
        with self._tx():
            self._db.executemany(
                "DELETE FROM breakers WHERE licence = ?", [(label,) for label in rearmed]
            )
            self._db.executemany(
                f"INSERT OR REPLACE INTO breakers ({BREAKER_COLUMNS}) "  # noqa: S608
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (b.licence, to_us(b.tripped_at), b.due, b.total, _us(b.released_at),
                     b.released_by)
                    for b in breakers
                ],
            )  # fmt: skip

    # -- legal holds --------------------------------------------------------------------------

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
                    "expired" if expired else "released", to_us(at), by, reason,
                    to_us(not_before), hold.id,
                ),
            )  # fmt: skip
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
                    h.id, h.licence, h.case, h.reason,
                    json.dumps(scope_json(h.scope), sort_keys=True),
                    to_us(h.placed_at), h.placed_by, _us(h.until), str(h.state),
                    _us(h.released_at), h.released_by, h.release_reason, _us(h.due_from),
                ),
            )  # fmt: skip

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

    # -- the audit log this catalogue reflects ------------------------------------------------

    def audit_mark(self) -> AuditMark | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'audit_mark'").fetchone()
        if row is None:
            return None
        seq, digest = mark_from_json(row[0])
        offset = json.loads(row[0]).get("offset")
        return AuditMark(seq, digest, offset if type(offset) is int else None)

    def set_audit_mark(self, mark: AuditMark) -> None:
        value: dict[str, Any] = {"seq": mark.seq, "hash": mark.hash}
        if mark.offset is not None:
            value["offset"] = mark.offset
        self._set_meta("audit_mark", value)

    def audit_checkpoint(self) -> AuditCheckpoint | None:
        data = self._meta("audit_checkpoint")
        try:
            return None if data is None else AuditCheckpoint(**data)
        except TypeError:  # written by another recd: start again from the first entry
            return None

    def set_audit_checkpoint(self, checkpoint: AuditCheckpoint) -> None:
        self._set_meta("audit_checkpoint", asdict(checkpoint))

    def audit_segments(self) -> Prints | None:
        data = self._meta("audit_segments")
        if data is None:
            return None
        try:
            segments = {n: Print.from_json(n, p) for n, p in data["segments"].items()}
            live = data.get("live")
            if live is not None:
                seq, prev, start = live
                live = (int(seq), str(prev), int(start))
        except (KeyError, TypeError, ValueError, AttributeError):
            return None  # written by another recd: every segment is checked again
        return Prints(segments, live)

    def set_audit_segments(self, prints: Prints) -> None:
        segments = {n: p.to_json() for n, p in prints.segments.items()}
        self._set_meta("audit_segments", {"segments": segments, "live": prints.live})

    def _meta(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        return data if isinstance(data, dict) else None

    def _set_meta(self, key: str, value: dict[str, Any]) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value, sort_keys=True)),
            )

    def held_count(self, scope: Scope) -> int:
        return count_matching(self._db, scope)

    # -- early-deletion requests --------------------------------------------------------------

    def request(self, request_id: str) -> StoredRequest | None:
        return select_request(self._db, request_id)

    def requests(self, state: RequestState | None = None) -> list[StoredRequest]:
        return select_requests(self._db, state)

    def put_request(self, request: StoredRequest) -> None:
        with self._tx():
            self._put_request(request)

    def _put_request(self, request: StoredRequest) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO requests ({REQUEST_COLUMNS}) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                request.id,
                request.licence,
                str(request.state),
                json.dumps(request.document, sort_keys=True),
                request.digest,
                json.dumps(request.info.to_json(), sort_keys=True),
                to_us(request.updated),
            ),
        )

    def restore_requests(
        self, requests: Sequence[tuple[StoredRequest, Sequence[RequestItem]]]
    ) -> None:
        with self._tx():
            for request, items in requests:
                self._put_request(request)
                self._put_items(request.id, items)

    def items(self, request_id: str) -> list[RequestItem]:
        return select_items(self._db, request_id)

    def put_items(self, request_id: str, items: Sequence[RequestItem]) -> None:
        with self._tx():
            self._put_items(request_id, items)

    def _put_items(self, request_id: str, items: Sequence[RequestItem]) -> None:
        self._db.executemany(
            "INSERT INTO request_items (request_id, recording_id, outcome, data) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (request_id, recording_id) DO UPDATE SET "
            "outcome = excluded.outcome, data = excluded.data",
            [(request_id, i.recording_id, str(i.outcome), item_data(i)) for i in items],
        )

    def matching(self, scope: Scope, limit: int) -> list[Recording]:
        return select_matching(self._db, scope, limit)

    # -- S3 legal holds mirrored ----------------------------------------------------------------

    def mirror_work(self, source: str, limit: int) -> tuple[list[Recording], list[Mirrored]]:
        cols = ", ".join(f"r.{c.strip()}" for c in COLUMNS.split(","))
        hold = self._db.execute(
            f"SELECT {cols} FROM recordings r INDEXED BY recordings_held "  # noqa: S608
            "LEFT JOIN s3_legal_holds m ON m.recording_id = r.id "
            "WHERE r.source = ? AND r.held = 1 AND r.state = 'present' "
            "AND (m.recording_id IS NULL OR m.ino != r.ino) ORDER BY r.location LIMIT ?",
            (source, limit),
        ).fetchall()
        free = self._db.execute(
            "SELECT m.recording_id, r.location, m.ino, m.versions FROM s3_legal_holds m "
            "JOIN recordings r ON r.id = m.recording_id "
            "WHERE r.source = ? AND NOT (r.held = 1 AND r.state = 'present') "
            "ORDER BY r.location LIMIT ?",
            (source, limit),
        ).fetchall()
        return [row_to_recording(r) for r in hold], [row_to_mirrored(r) for r in free]

    def mirrored(self, recording_id: str) -> Mirrored | None:
        row = self._db.execute(
            "SELECT m.recording_id, r.location, m.ino, m.versions FROM s3_legal_holds m "
            "JOIN recordings r ON r.id = m.recording_id WHERE m.recording_id = ?",
            (recording_id,),
        ).fetchone()
        return None if row is None else row_to_mirrored(row)

    def set_mirrored(self, m: Mirrored | str) -> None:
        with self._tx():
            if isinstance(m, str):
                self._db.execute("DELETE FROM s3_legal_holds WHERE recording_id = ?", (m,))
                return
            self._db.execute(
                "INSERT OR REPLACE INTO s3_legal_holds (recording_id, ino, versions) "
                "VALUES (?, ?, ?)",
                (m.recording_id, m.ino, json.dumps([[v, int(o)] for v, o in m.versions])),
            )


_HOLD_NUMBER = re.compile(r"H-([0-9]{1,18})")


def _us(value: datetime | None) -> int | None:
    return None if value is None else to_us(value)


def _floor(floors: Sequence[tuple[Scope, datetime]], rec: Recording) -> datetime | None:
    """The latest ``due_from`` of a released hold in its grace that matches ``rec``."""
    return max((due for scope, due in floors if scope.matches(rec)), default=None)


#: A deadline never below the floor a hold's release set (``not_before``); NULL stays NULL.
_FLOORED = (
    "CASE WHEN {0} IS NULL THEN NULL WHEN not_before IS NOT NULL AND not_before > {0} "
    "THEN not_before ELSE {0} END"
)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on error); nests as a no-op."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._outer = False

    def __enter__(self) -> None:
        if not self._db.in_transaction:
            self._db.execute("BEGIN IMMEDIATE")
            self._outer = True

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self._outer:
            return
        if exc_type is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")
