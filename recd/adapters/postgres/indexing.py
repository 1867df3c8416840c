"""The PostgreSQL catalogue's indexing role: what scans found, and the deadlines policies give.

The same rows and rules as the SQLite catalogue's (``recd.adapters.sqlite.indexing``): a scan
upserts what it saw (held if an active hold matches; a deadline never below a released hold's
floor) and marks what went missing; ``set_deadlines`` recomputes a licence's deadlines. Every
write is one committed transaction. A first index needs no bulk mode here (``begin_bulk``
declines): its rows go in batches of one pipelined statement each.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from recd.adapters._rows import (
    found_values,
    from_us,
    plain,
    row_to_known,
    scanned_values,
    to_us,
)
from recd.adapters.postgres.errors import guarded
from recd.adapters.postgres.queries import scope_keys
from recd.adapters.postgres.store import FLOORED, Store, pg_name, pg_path, stamp
from recd.core.fastclass import Found
from recd.core.model import Recording
from recd.ports.records import Known
from recd.ports.source import DirStamp

#: The columns of ``recording_values`` and ``scope_keys``, in their order.
_SCANNED = (
    "id, source, location, dir, dev, ino, size, mtime_ns, licence, started, deadline, fields, "
    "first_seen, indexed_at, held, ctime_ns, btime_ns, not_before, call_id, caller, callee"
)
#: Where a batch is copied before it is upserted (one per connection, emptied at commit).
SCANNED_TABLE = (
    "CREATE TEMPORARY TABLE scanned (k bigint GENERATED ALWAYS AS IDENTITY, "
    'id text COLLATE "C", source text COLLATE "C", location bytea, dir bytea, dev bigint, '
    'ino bigint, size bigint, mtime_ns bigint, licence text COLLATE "C", started bigint, '
    "deadline bigint, fields text, first_seen bigint, indexed_at bigint, held smallint, "
    "ctime_ns bigint, btime_ns bigint, not_before bigint, call_id text, caller text, "
    "callee text) ON COMMIT DELETE ROWS"
)
#: The copied batch inserted, or its rows refreshed, in the order the scan saw them (the
#: catalogue's order); of one id seen twice, the last.
_UPSERT = (
    f"INSERT INTO recordings ({_SCANNED}, state) SELECT {_SCANNED}, 'present' FROM ("  # noqa: S608
    f"SELECT DISTINCT ON (id) k, {_SCANNED} FROM scanned ORDER BY id, k DESC) s ORDER BY k "
    "ON CONFLICT (id) DO UPDATE SET dev = excluded.dev, ino = excluded.ino, "
    "size = excluded.size, mtime_ns = excluded.mtime_ns, licence = excluded.licence, "
    f"started = excluded.started, deadline = {FLOORED.format('excluded.deadline', 'recordings.')}, "
    "fields = excluded.fields, call_id = excluded.call_id, caller = excluded.caller, "
    "callee = excluded.callee, state = 'present', indexed_at = excluded.indexed_at, "
    "erased_at = NULL, skip_reason = NULL, held = excluded.held, "
    "ctime_ns = excluded.ctime_ns, btime_ns = excluded.btime_ns, "
    "not_before = CASE WHEN excluded.not_before IS NULL THEN recordings.not_before "
    "WHEN recordings.not_before IS NULL OR excluded.not_before > recordings.not_before "
    "THEN excluded.not_before ELSE recordings.not_before END"
)


@guarded
class Indexing(Store):
    """Scans and policies (``ports`` indexing role) of ``PostgresCatalogue``."""

    def begin_scan(self, source: str, now: datetime, rule: str) -> bool:
        with self._tx():
            row = self._db.execute(
                "SELECT rule FROM scans WHERE source = %s FOR UPDATE", (source,)
            ).fetchone()
            self._db.execute(
                "INSERT INTO scans (source, rule, started) VALUES (%s, %s, %s) "
                "ON CONFLICT (source) DO UPDATE SET rule = excluded.rule, "
                "started = excluded.started, finished = NULL",
                (source, rule, to_us(now)),
            )
        return row is not None and row[0] != rule

    def begin_bulk(self) -> bool:
        """Declines: PostgreSQL keeps its indexes through a first index."""
        return False

    def end_bulk(self) -> None:
        """Nothing to end (``begin_bulk`` never starts a bulk load)."""

    def in_dir(self, source: str, directory: str) -> dict[str, Known]:
        cursor = self._db.execute(
            "SELECT id, dev, ino, size, mtime_ns, state, ctime_ns, btime_ns FROM recordings "
            "WHERE source = %s AND dir = %s",
            (source, pg_path(directory)),
        )
        return dict(row_to_known(r) for r in cursor)

    def dir_stamp(
        self, source: str, directory: str, since: datetime | None = None
    ) -> DirStamp | None:
        row = self._db.execute(
            "SELECT dev, ino, mtime_ns, ctime_ns, subdirs, files, bytes FROM dir_stamps "
            "WHERE source = %s AND dir = %s AND stamped >= %s",
            (source, pg_path(directory), -(1 << 63) if since is None else to_us(since)),
        ).fetchone()
        return None if row is None else stamp(row)

    def replace_dir_stamps(
        self, source: str, stamps: Mapping[str, DirStamp], kept: Collection[str], now: datetime
    ) -> None:
        stamped = to_us(now)
        with self._tx():
            stored = self._db.execute("SELECT dir FROM dir_stamps WHERE source = %s", (source,))
            stale = [
                d for (d,) in stored.fetchall() if (name := pg_name(d)) not in kept
                and name not in stamps
            ]  # fmt: skip
            self._db.execute(
                "DELETE FROM dir_stamps WHERE source = %s AND dir = ANY(%s)", (source, stale)
            )
            self._db.cursor().executemany(
                "INSERT INTO dir_stamps (source, dir, dev, ino, mtime_ns, ctime_ns, subdirs, "
                "files, bytes, stamped) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (source, dir) DO UPDATE SET dev = excluded.dev, ino = excluded.ino, "
                "mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns, "
                "subdirs = excluded.subdirs, files = excluded.files, bytes = excluded.bytes, "
                "stamped = excluded.stamped",
                [
                    (source, pg_path(d), s.dev, s.ino, s.mtime_ns, s.ctime_ns,
                     pg_path("/".join(s.subdirs)), s.files, s.bytes, stamped)
                    for d, s in stamps.items()
                ],
            )  # fmt: skip

    def dirs(self, source: str, under: str = "") -> list[str]:
        """A loose index scan of ``recordings_dir``: one index seek per directory."""
        if not under:
            return self._skip_scan(source, b"", None)
        key = pg_path(under)
        found = [] if key[:1] == b"\xff" else self._skip_scan(source, key, key + b"0")
        raw = key if key[:1] == b"\xff" else b"\xff" + key  # directories below, not UTF-8
        return found + self._skip_scan(source, raw, raw + b"0")

    def _skip_scan(self, source: str, lo: bytes, hi: bytes | None) -> list[str]:
        below = "" if hi is None else " AND dir < %(hi)s"
        cursor = self._db.execute(
            "WITH RECURSIVE d(dir) AS ("  # noqa: S608 (only the literal bound is formatted in)
            " (SELECT dir FROM recordings"
            f" WHERE source = %(s)s AND dir >= %(lo)s{below} ORDER BY dir LIMIT 1)"
            " UNION ALL"
            " SELECT (SELECT r.dir FROM recordings r"
            f" WHERE r.source = %(s)s AND r.dir > d.dir{below.replace('dir', 'r.dir')}"
            " ORDER BY r.dir LIMIT 1)"
            " FROM d WHERE d.dir IS NOT NULL)"
            " SELECT dir FROM d WHERE dir IS NOT NULL AND EXISTS (SELECT 1 FROM recordings r"
            " WHERE r.source = %(s)s AND r.dir = d.dir AND r.state = 'present')",
            {"s": source, "lo": lo, "hi": hi},
        )
        return [pg_name(r[0]) for r in cursor]

    def upsert(self, rows: Sequence[Recording], now: datetime) -> None:
        """Held where a hold committed by any connection matches (``_hold_rules``)."""
        with self._tx():
            self._hold_rules()
            self._upsert(rows, now)

    def _upsert(self, rows: Sequence[Recording], now: datetime) -> None:
        values = scanned_values(rows, now, self._active, self._floors, pg_path)
        keys = [scope_keys(c.call_id, c.caller, c.callee) for c in (r.classification for r in rows)]
        self._write(values, keys)

    def insert_new(self, rows: Sequence[Found], now: datetime) -> None:
        with self._tx():
            self._hold_rules()
            if not plain(self._active, self._floors, now):
                self._upsert([f.recording(now) for f in rows], now)  # holds match Recordings
                return
            now_us = to_us(now)
            values = [found_values(f, now_us, pg_path) for f in rows]
            keys = [scope_keys(c.call_id, c.caller, c.callee) for _, _, c in rows]
            self._write(values, keys)

    def _write(self, values: list[tuple[Any, ...]], keys: list[tuple[Any, ...]]) -> None:
        with self._db.cursor().copy(f"COPY scanned ({_SCANNED}) FROM STDIN") as copy:
            for v, k in zip(values, keys, strict=True):
                copy.write_row(v + k)
        self._db.execute(_UPSERT)

    def mark_missing(self, ids: Sequence[str]) -> None:
        with self._tx():
            self._db.execute(
                "UPDATE recordings SET state = 'missing' WHERE id = ANY(%s) AND state = 'present'",
                (list(ids),),
            )

    def mark_dirs_missing(self, source: str, directories: Sequence[str]) -> int:
        with self._tx():
            cursor = self._db.execute(
                "UPDATE recordings SET state = 'missing' "
                "WHERE source = %s AND dir = ANY(%s) AND state = 'present'",
                (source, [pg_path(d) for d in directories]),
            )
        return cursor.rowcount

    def finish_scan(self, source: str, now: datetime) -> None:
        with self._tx():
            self._db.execute(
                "UPDATE scans SET finished = %s WHERE source = %s", (to_us(now), source)
            )

    # -- policies -----------------------------------------------------------------------------

    def licences(self) -> list[str | None]:
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
        where = "licence IS NULL" if licence is None else "licence = %s"
        args: tuple[Any, ...] = () if licence is None else (licence,)
        with self._tx():
            cursor = self._db.execute(
                f"SELECT id, started FROM recordings WHERE {where} AND state = 'present' "  # noqa: S608
                "FOR UPDATE",
                args,
            )
            batch: list[dict[str, Any]] = []
            for rid, started in cursor.fetchall():
                deadline = deadline_of(from_us(started))
                batch.append({"d": None if deadline is None else to_us(deadline), "id": rid})
            self._db.cursor().executemany(
                f"UPDATE recordings SET deadline = {FLOORED.format('%(d)s::bigint', '')} "  # noqa: S608
                "WHERE id = %(id)s",
                batch,
            )
            self._db.execute(
                "INSERT INTO policies (licence, policy) VALUES (%s, %s) "
                "ON CONFLICT (licence) DO UPDATE SET policy = excluded.policy",
                (licence or "", policy),
            )
        return len(batch)

    def record_policy(self, licence: str | None, policy: str) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO policies (licence, policy) VALUES (%s, %s) "
                "ON CONFLICT (licence) DO NOTHING",
                (licence or "", policy),
            )
