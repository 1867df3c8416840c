"""The catalogue's indexing role: what scans found, and the deadlines policies give it.

A scan (``begin_scan`` ... ``finish_scan``) upserts the recordings it saw (held if an active
hold matches them; a deadline never below a released hold's floor) and marks the ones gone
missing; ``set_deadlines`` recomputes a licence's deadlines under a new policy. Every write is
one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from recd.adapters._rows import (
    found_values,
    from_us,
    path_param,
    path_value,
    plain,
    row_to_known,
    row_to_stamp,
    scanned_values,
    to_us,
)
from recd.adapters.sqlite.corrupt import guarded
from recd.adapters.sqlite.schema import SECONDARY_INDEXES
from recd.adapters.sqlite.store import FLOORED, Store
from recd.core.fastclass import Found
from recd.core.model import Recording
from recd.ports.records import Known
from recd.ports.source import DirStamp

#: One recording a scan saw: inserted, or its row refreshed.
_UPSERT = (
    "INSERT INTO recordings (id, source, location, dir, dev, ino, size, mtime_ns, "  # noqa: S608
    "licence, started, deadline, fields, state, first_seen, indexed_at, held, "
    "ctime_ns, btime_ns, not_before) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'present', ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET dev = excluded.dev, ino = excluded.ino, "
    "size = excluded.size, mtime_ns = excluded.mtime_ns, licence = excluded.licence, "
    f"started = excluded.started, deadline = {FLOORED.format('excluded.deadline')}, "
    "fields = excluded.fields, state = 'present', indexed_at = excluded.indexed_at, "
    "erased_at = NULL, skip_reason = NULL, held = excluded.held, "
    "ctime_ns = excluded.ctime_ns, btime_ns = excluded.btime_ns, "
    "not_before = CASE WHEN excluded.not_before IS NULL THEN not_before "
    "WHEN not_before IS NULL OR excluded.not_before > not_before "
    "THEN excluded.not_before ELSE not_before END"
)


@guarded
class Indexing(Store):
    """Scans and policies (``ports`` indexing role) of ``SqliteCatalogue``."""

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

    def begin_bulk(self) -> bool:
        """When the catalogue holds no recordings (a first index), drop the recordings'
        secondary indexes until ``end_bulk``, which builds each once, sorted, instead of row by
        row (about twice as fast a load); returns whether it did. Until then queries other than
        by id scan the table: the caller has nothing to ask ``in_dir``. If recd dies before
        ``end_bulk``, the next open builds them (``build_indexes``): the rows loaded so far are
        committed, and any that were not are found again by the next scan."""
        with self._tx():
            if self._db.execute("SELECT 1 FROM recordings LIMIT 1").fetchone() is not None:
                return False
            for name in SECONDARY_INDEXES:
                self._db.execute(f"DROP INDEX IF EXISTS {name}")
        return True

    def end_bulk(self) -> None:
        """Build the secondary indexes ``begin_bulk`` dropped (one transaction)."""
        self.build_indexes()

    def build_indexes(self) -> list[str]:
        """Create the recordings' secondary indexes that are missing; returns their names."""
        query = "SELECT name FROM sqlite_master WHERE type = 'index'"
        have = {r[0] for r in self._db.execute(query)}
        missing = [name for name in SECONDARY_INDEXES if name not in have]
        if missing:
            with self._tx():  # IF NOT EXISTS: another writer may have built some meanwhile
                for name in missing:
                    self._db.execute(SECONDARY_INDEXES[name])
        return missing

    def in_dir(self, source: str, directory: str) -> dict[str, Known]:
        """Every recording catalogued in one directory of ``source`` ('' is the root)."""
        cursor = self._db.execute(
            "SELECT id, dev, ino, size, mtime_ns, state, ctime_ns, btime_ns FROM recordings "
            "WHERE source = ? AND dir = ?",
            (source, path_param(directory)),
        )
        return dict(row_to_known(r) for r in cursor)

    def dir_stamp(
        self, source: str, directory: str, since: datetime | None = None
    ) -> DirStamp | None:
        """The stamp a full scan stored for one directory of ``source``, if any (with
        ``since``: stored at or after it)."""
        row = self._db.execute(
            "SELECT dev, ino, mtime_ns, ctime_ns, subdirs, files, bytes FROM dir_stamps "
            "WHERE source = ? AND dir = ? AND stamped >= ?",
            (source, path_param(directory), -(1 << 63) if since is None else to_us(since)),
        ).fetchone()
        return None if row is None else row_to_stamp(row)

    def replace_dir_stamps(
        self, source: str, stamps: Mapping[str, DirStamp], kept: Collection[str], now: datetime
    ) -> None:
        """After a full scan: ``stamps`` for the directories it listed (stamped ``now``), the
        stamps of ``kept`` (those it trusted) as they are, and none for any other directory
        of ``source``."""
        stamped = to_us(now)
        with self._tx():
            stored = self._db.execute("SELECT dir FROM dir_stamps WHERE source = ?", (source,))
            stale = [
                (source, d)
                for (d,) in stored.fetchall()
                if (name := path_value(d)) not in kept and name not in stamps
            ]
            self._db.executemany("DELETE FROM dir_stamps WHERE source = ? AND dir = ?", stale)
            self._db.executemany(
                "INSERT OR REPLACE INTO dir_stamps (source, dir, dev, ino, mtime_ns, ctime_ns, "
                "subdirs, files, bytes, stamped) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (source, path_param(d), s.dev, s.ino, s.mtime_ns, s.ctime_ns,
                     path_param("/".join(s.subdirs)), s.files, s.bytes, stamped)
                    for d, s in stamps.items()
                ],
            )  # fmt: skip

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
        params = scanned_values(rows, now, self._active, self._floors, path_param)
        with self._tx():
            self._db.executemany(_UPSERT, params)

    def insert_new(self, rows: Sequence[Found], now: datetime) -> None:
        """``upsert`` of the rows of ``found``, from their plain values (a first index: no
        ``Recording`` or ``datetime`` per row); the same rows, ``upsert``'s statement."""
        if not plain(self._active, self._floors, now):
            self.upsert([f.recording(now) for f in rows], now)  # holds match Recordings
            return
        now_us = to_us(now)
        params = [found_values(f, now_us, path_param) for f in rows]
        with self._tx():
            self._db.executemany(_UPSERT, params)

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
                f"UPDATE recordings SET deadline = {FLOORED.format('?1')} WHERE id = ?2",  # noqa: S608
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
