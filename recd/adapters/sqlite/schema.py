"""The catalogue's SQLite schema and row codecs, shared by the writer and the readers.

Times are stored as integer microseconds since the Unix epoch (UTC); a NULL deadline means the
recording has none (retention ``never``, or unclassified and kept).
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from recd.core.holds import Hold, HoldState
from recd.core.model import Classification, Provenance, Recording, State
from recd.core.requestinfo import RequestInfo
from recd.core.requests import scope_from_json
from recd.core.scope import Scope, normalise_party
from recd.errors import RecdError
from recd.ports import (
    Breaker,
    Intent,
    ItemOutcome,
    Known,
    Mirrored,
    RequestItem,
    RequestState,
    StoredRequest,
)

P = ParamSpec("P")
R = TypeVar("R")

SCHEMA_VERSION = 6

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE recordings (
        id          TEXT NOT NULL UNIQUE,  -- rowid table: rows append in scan order
        source      TEXT NOT NULL,
        location    TEXT NOT NULL,
        dir         TEXT NOT NULL,
        dev         INTEGER NOT NULL,
        ino         INTEGER NOT NULL,
        size        INTEGER NOT NULL,
        mtime_ns    INTEGER NOT NULL,
        licence     TEXT,
        started     INTEGER NOT NULL,
        deadline    INTEGER,
        fields      TEXT NOT NULL,
        state       TEXT NOT NULL,
        first_seen  INTEGER NOT NULL,
        indexed_at  INTEGER NOT NULL,
        erased_at   INTEGER,
        skip_reason TEXT
    );
    CREATE INDEX recordings_due ON recordings (deadline, id) WHERE state = 'present';
    CREATE INDEX recordings_licence ON recordings (licence, state);
    CREATE INDEX recordings_dir ON recordings (source, dir, location);
    CREATE TABLE intents (
        id           TEXT PRIMARY KEY,
        recording_id TEXT NOT NULL,
        audit_offset INTEGER NOT NULL,
        temp_name    TEXT NOT NULL,
        plan         TEXT NOT NULL,
        created      INTEGER NOT NULL
    );
    CREATE TABLE policies (licence TEXT PRIMARY KEY, policy TEXT NOT NULL);
    CREATE TABLE scans (source TEXT PRIMARY KEY, rule TEXT NOT NULL,
                        started INTEGER NOT NULL, finished INTEGER);
    CREATE TABLE breakers (
        licence     TEXT PRIMARY KEY,
        tripped_at  INTEGER NOT NULL,
        due         INTEGER NOT NULL,
        total       INTEGER NOT NULL,
        released_at INTEGER,
        released_by TEXT
    );
    """,
    # Per-licence totals of present recordings, kept by triggers so that `recctl status` and
    # every metrics scrape read a handful of rows instead of counting the whole catalogue.
    # '' stands for unclassified (a NULL primary key would not be unique in SQLite).
    2: """
    CREATE TABLE totals (
        licence    TEXT PRIMARY KEY,
        recordings INTEGER NOT NULL,
        bytes      INTEGER NOT NULL
    );
    INSERT INTO totals
        SELECT ifnull(licence, ''), COUNT(*), SUM(size) FROM recordings
        WHERE state = 'present' GROUP BY ifnull(licence, '');
    CREATE TRIGGER totals_insert AFTER INSERT ON recordings WHEN new.state = 'present'
    BEGIN
        INSERT INTO totals VALUES (ifnull(new.licence, ''), 1, new.size)
        ON CONFLICT (licence) DO UPDATE SET recordings = recordings + 1,
                                            bytes = bytes + excluded.bytes;
    END;
    CREATE TRIGGER totals_delete AFTER DELETE ON recordings WHEN old.state = 'present'
    BEGIN
        UPDATE totals SET recordings = recordings - 1, bytes = bytes - old.size
        WHERE licence = ifnull(old.licence, '');
    END;
    CREATE TRIGGER totals_update AFTER UPDATE OF state, licence, size ON recordings
    BEGIN
        UPDATE totals SET recordings = recordings - 1, bytes = bytes - old.size
        WHERE old.state = 'present' AND licence = ifnull(old.licence, '');
        INSERT INTO totals SELECT ifnull(new.licence, ''), 1, new.size WHERE new.state = 'present'
        ON CONFLICT (licence) DO UPDATE SET recordings = recordings + 1,
                                            bytes = bytes + excluded.bytes;
    END;
    """,
    # Legal holds and early-deletion requests (SPEC sections 5 and 6). ``held`` marks a present
    # recording that an active hold matches: the partial deadline index leaves it out, so no
    # sweep, wake-up or overdue count ever sees it. ``not_before`` is the floor a hold's
    # release put under the deadline (release + holds.release_grace); a recomputed deadline
    # never goes below it.
    3: """
    ALTER TABLE recordings ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE recordings ADD COLUMN not_before INTEGER;
    DROP INDEX recordings_due;
    CREATE INDEX recordings_due ON recordings (deadline, id) WHERE state = 'present' AND held = 0;
    ALTER TABLE totals ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
    DROP TRIGGER totals_insert;
    DROP TRIGGER totals_delete;
    DROP TRIGGER totals_update;
    CREATE TRIGGER totals_insert AFTER INSERT ON recordings WHEN new.state = 'present'
    BEGIN
        INSERT INTO totals VALUES (ifnull(new.licence, ''), 1, new.size, new.held)
        ON CONFLICT (licence) DO UPDATE SET recordings = recordings + 1,
                                            bytes = bytes + excluded.bytes,
                                            held = held + excluded.held;
    END;
    CREATE TRIGGER totals_delete AFTER DELETE ON recordings WHEN old.state = 'present'
    BEGIN
        UPDATE totals SET recordings = recordings - 1, bytes = bytes - old.size,
                          held = held - old.held
        WHERE licence = ifnull(old.licence, '');
    END;
    CREATE TRIGGER totals_update AFTER UPDATE OF state, licence, size, held ON recordings
    BEGIN
        UPDATE totals SET recordings = recordings - 1, bytes = bytes - old.size,
                          held = held - old.held
        WHERE old.state = 'present' AND licence = ifnull(old.licence, '');
        INSERT INTO totals SELECT ifnull(new.licence, ''), 1, new.size, new.held
        WHERE new.state = 'present'
        ON CONFLICT (licence) DO UPDATE SET recordings = recordings + 1,
                                            bytes = bytes + excluded.bytes,
                                            held = held + excluded.held;
    END;
    CREATE TABLE holds (
        n              INTEGER PRIMARY KEY,
        id             TEXT NOT NULL UNIQUE,
        licence        TEXT NOT NULL,
        case_ref       TEXT NOT NULL,
        reason         TEXT NOT NULL,
        scope          TEXT NOT NULL,
        placed_at      INTEGER NOT NULL,
        placed_by      TEXT NOT NULL,
        until          INTEGER,
        state          TEXT NOT NULL,
        released_at    INTEGER,
        released_by    TEXT,
        release_reason TEXT
    );
    CREATE TABLE requests (
        id       TEXT PRIMARY KEY,
        licence  TEXT NOT NULL,
        state    TEXT NOT NULL,
        document TEXT NOT NULL,
        digest   TEXT NOT NULL,
        info     TEXT NOT NULL,
        updated  INTEGER NOT NULL
    );
    CREATE TABLE request_items (
        request_id   TEXT NOT NULL REFERENCES requests (id),
        recording_id TEXT NOT NULL,
        outcome      TEXT NOT NULL,
        data         TEXT NOT NULL,
        PRIMARY KEY (request_id, recording_id)
    );
    """,
    # S3 legal holds recd set to mirror its own holds (s3.mirror_legal_holds): per recording,
    # the fingerprint mirrored and each version with whether recd turned its hold ON (a hold
    # that was already ON is someone else's and is never turned OFF by recd). The partial
    # index finds held recordings of a source without reading the others.
    4: """
    CREATE TABLE s3_legal_holds (
        recording_id TEXT PRIMARY KEY,
        ino          INTEGER NOT NULL,
        versions     TEXT NOT NULL
    );
    CREATE INDEX recordings_held ON recordings (source) WHERE held = 1 AND state = 'present';
    """,
    # The inode's change and birth times as indexed (ns): with dev, ino, size and mtime they
    # tell the indexed file from a new one that reused its inode number. NULL (rows indexed by
    # an older recd, no birth time on the filesystem) is never compared.
    5: """
    ALTER TABLE recordings ADD COLUMN ctime_ns INTEGER;
    ALTER TABLE recordings ADD COLUMN btime_ns INTEGER;
    """,
    # The audit log is the record (SPEC section 8). ``meta`` row 'audit_mark': the last entry
    # (seq and hash, JSON) this catalogue reflects; a catalogue without one never saw the log
    # (lost, emptied, new) and its holds are rebuilt from it before anything is erased. A
    # catalogue an older recd kept has seen its log: it is marked with an unknown position.
    # ``holds.due_from``: a released hold's release + holds.release_grace, the floor under the
    # deadline of what it held, also for recordings indexed later (a rebuilt catalogue's).
    6: """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta SELECT 'audit_mark', '{"hash": null, "seq": null}'
        WHERE EXISTS (SELECT 1 FROM scans) OR EXISTS (SELECT 1 FROM recordings)
        OR EXISTS (SELECT 1 FROM holds) OR EXISTS (SELECT 1 FROM requests);
    ALTER TABLE holds ADD COLUMN due_from INTEGER;
    """,
}


class BadRow(Exception):
    """A row of ``table`` that no codec accepts: the catalogue is corrupt (the adapters turn
    this into ``CatalogueCorrupt`` naming the file)."""

    def __init__(self, table: str, problem: str) -> None:
        self.table = table
        self.problem = problem
        super().__init__(f"table {table}: {problem}")


#: What a row codec raises on a value it cannot take (a flipped byte in JSON, a state, a time).
_UNDECODABLE = (ValueError, TypeError, KeyError, OverflowError, RecdError)


def decodes(table: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A row codec of ``table``: what it cannot decode is a ``BadRow`` of that table."""

    def wrap(codec: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(codec)
        def decode(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return codec(*args, **kwargs)
            except _UNDECODABLE as exc:
                raise BadRow(table, f"a row does not decode ({_one_line(exc)})") from exc

        return decode

    return wrap


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@decodes("meta")
def mark_from_json(value: str) -> tuple[int | None, str | None]:
    """The ``audit_mark`` meta row: (seq, hash), either None when unknown."""
    data = json.loads(value)
    if not isinstance(data, dict):
        raise TypeError(f"audit_mark {value!r}")
    seq, digest = data.get("seq"), data.get("hash")
    if not (seq is None or type(seq) is int) or not (digest is None or isinstance(digest, str)):
        raise ValueError(f"audit_mark {value!r}")
    return seq, digest


COLUMNS = (
    "id, source, location, dev, ino, size, mtime_ns, licence, started, deadline, fields, state, "
    "first_seen, skip_reason, held, not_before, ctime_ns, btime_ns"
)


def path_param(path: str) -> str | bytes:
    """A location or directory as the catalogue stores it: text when it is UTF-8, else its
    bytes (a BLOB: a file name that is not UTF-8, surrogate-escaped as ``os.fsdecode`` gives).

    One representation per name, so ``=`` finds it; SQLite sorts every BLOB after every TEXT,
    so ordering and ``>`` paging stay one total order.
    """
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return path.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate no file name decodes to
            return path.encode("utf-8", "surrogatepass")
    return path


def path_value(value: str | bytes) -> str:
    """A stored location or directory back as the service's text (``path_param``'s inverse)."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def to_us(when: datetime) -> int:
    """Exact integer microseconds since the epoch (no float rounding)."""
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, UTC).replace(microsecond=value % 1_000_000)


def fields_json(c: Classification) -> str:
    data = {
        "call_id": c.call_id,
        "extension": c.extension,
        "caller": c.caller,
        "callee": c.callee,
        "duration": c.duration,
        "format": c.format,
        "provenance": {k: str(v) for k, v in c.provenance.items()},
    }
    return json.dumps({k: v for k, v in data.items() if v is not None}, separators=(",", ":"))


@decodes("recordings")
def row_to_recording(row: sqlite3.Row | tuple[Any, ...]) -> Recording:
    (rid, source, location, dev, ino, size, mtime_ns, licence, started, deadline, fields,
     state, first_seen, skip_reason, held, not_before, ctime_ns, btime_ns) = row  # fmt: skip
    extra = json.loads(fields)
    provenance = {k: Provenance(v) for k, v in extra.pop("provenance", {}).items()}
    classification = Classification(
        licence=licence, started=from_us(started), provenance=provenance, **extra
    )
    return Recording(
        id=rid,
        source=source,
        relpath=path_value(location),
        dev=dev,
        ino=ino,
        size=size,
        mtime_ns=mtime_ns,
        classification=classification,
        deadline=None if deadline is None else from_us(deadline),
        state=State(state),
        first_seen=from_us(first_seen),
        skip_reason=skip_reason,
        held=bool(held),
        not_before=None if not_before is None else from_us(not_before),
        ctime_ns=ctime_ns,
        btime_ns=btime_ns,
    )


@decodes("recordings")
def row_to_known(row: tuple[Any, ...]) -> tuple[str, Known]:
    """``(id, dev, ino, size, mtime_ns, state, ctime_ns, btime_ns)`` as ``in_dir`` reads it."""
    rid, dev, ino, size, mtime_ns, state, ctime_ns, btime_ns = row
    return rid, Known(dev, ino, size, mtime_ns, State(state), ctime_ns, btime_ns)


@decodes("intents")
def row_to_intent(row: tuple[Any, ...]) -> Intent:
    rid, recording_id, audit_offset, temp_name, plan, created = row
    return Intent(rid, recording_id, audit_offset, temp_name, json.loads(plan), from_us(created))


@decodes("s3_legal_holds")
def row_to_mirrored(row: tuple[Any, ...]) -> Mirrored:
    rid, key, ino, versions = row
    return Mirrored(rid, key, ino, tuple((v, bool(o)) for v, o in json.loads(versions)))


BREAKER_COLUMNS = "licence, tripped_at, due, total, released_at, released_by"


@decodes("breakers")
def row_to_breaker(row: tuple[Any, ...]) -> Breaker:
    licence, tripped_at, due, total, released_at, released_by = row
    released = None if released_at is None else from_us(released_at)
    return Breaker(licence, from_us(tripped_at), due, total, released, released_by)


# -- scopes, holds and requests ------------------------------------------------------------------


def register_functions(db: sqlite3.Connection) -> None:
    """SQL functions the scope queries use (on every connection, writer and readers)."""
    db.create_function(
        "recd_party", 1, lambda v: None if v is None else normalise_party(v), deterministic=True
    )


def scope_where(scope: Scope, prefix: str = "") -> tuple[str, dict[str, Any]]:
    """A WHERE clause (and its named parameters) true exactly where ``scope.matches`` is.

    Only recordings of the licence are read (``recordings_licence``); the catalogue contract
    tests check the clause against ``Scope.matches`` on the same recordings.
    """
    p = prefix
    args: dict[str, Any] = {f"{p}licence": scope.licence}

    def names(kind: str, values: frozenset[str]) -> str:
        for n, value in enumerate(sorted(values)):
            args[f"{p}{kind}{n}"] = value
        return ", ".join(f":{p}{kind}{n}" for n in range(len(values)))

    clauses = [f"licence = :{p}licence"]
    if scope.recordings:
        clauses.append(f"id IN ({names('r', scope.recordings)})")
    if scope.call_ids:
        clauses.append(f"json_extract(fields, '$.call_id') IN ({names('c', scope.call_ids)})")
    if scope.party is not None:
        args[f"{p}party"] = normalise_party(scope.party)
        clauses.append(
            f"(recd_party(json_extract(fields, '$.caller')) = :{p}party"
            f" OR recd_party(json_extract(fields, '$.callee')) = :{p}party)"
        )
    if scope.start is not None:
        clauses.append(f"started >= :{p}start")
        args[f"{p}start"] = to_us(scope.start)
    if scope.end is not None:
        clauses.append(f"started < :{p}end")
        args[f"{p}end"] = to_us(scope.end)
    return " AND ".join(clauses), args


HOLD_COLUMNS = (
    "id, licence, case_ref, reason, scope, placed_at, placed_by, until, state, released_at, "
    "released_by, release_reason, due_from"
)


def _us(value: datetime | None) -> int | None:
    return None if value is None else to_us(value)


def _time(value: int | None) -> datetime | None:
    return None if value is None else from_us(value)


@decodes("holds")
def row_to_hold(row: tuple[Any, ...]) -> Hold:
    (hid, licence, case_ref, reason, scope, placed_at, placed_by, until, state, released_at,
     released_by, release_reason, due_from) = row  # fmt: skip
    return Hold(
        id=hid,
        scope=scope_from_json(licence, json.loads(scope), allow_empty=True),
        case=case_ref,
        reason=reason,
        placed_at=from_us(placed_at),
        placed_by=placed_by,
        until=_time(until),
        state=HoldState(state),
        released_at=_time(released_at),
        released_by=released_by,
        release_reason=release_reason,
        due_from=_time(due_from),
    )


def select_holds(db: sqlite3.Connection, *, everything: bool = False) -> list[Hold]:
    where = "" if everything else " WHERE state = 'active'"
    cursor = db.execute(f"SELECT {HOLD_COLUMNS} FROM holds{where} ORDER BY n")  # noqa: S608
    return [row_to_hold(r) for r in cursor]


def select_hold(db: sqlite3.Connection, hold_id: str) -> Hold | None:
    row = db.execute(
        f"SELECT {HOLD_COLUMNS} FROM holds WHERE id = ?",  # noqa: S608
        (hold_id,),
    ).fetchone()
    return None if row is None else row_to_hold(row)


def count_matching(db: sqlite3.Connection, scope: Scope) -> int:
    """Present recordings ``scope`` matches."""
    where, args = scope_where(scope)
    row = db.execute(
        f"SELECT COUNT(*) FROM recordings WHERE state = 'present' AND {where}",  # noqa: S608
        args,
    ).fetchone()
    return int(row[0])


def select_matching(db: sqlite3.Connection, scope: Scope, limit: int) -> list[Recording]:
    """Recordings ``scope`` matches, in any state, in catalogue order."""
    where, args = scope_where(scope)
    cursor = db.execute(
        f"SELECT {COLUMNS} FROM recordings WHERE {where} ORDER BY rowid LIMIT :limit",  # noqa: S608
        args | {"limit": limit},
    )
    return [row_to_recording(r) for r in cursor]


@decodes("requests")
def request_from_row(row: tuple[Any, ...]) -> StoredRequest:
    rid, licence, state, document, digest, info, updated = row
    return StoredRequest(
        rid, licence, RequestState(state), json.loads(document), digest,
        RequestInfo.from_json(json.loads(info)),
        from_us(updated),
    )  # fmt: skip


REQUEST_COLUMNS = "id, licence, state, document, digest, info, updated"


def select_requests(db: sqlite3.Connection, state: RequestState | None) -> list[StoredRequest]:
    where, args = ("", ()) if state is None else (" WHERE state = ?", (str(state),))
    cursor = db.execute(
        f"SELECT {REQUEST_COLUMNS} FROM requests{where} ORDER BY updated, id",  # noqa: S608
        args,
    )
    return [request_from_row(r) for r in cursor]


def select_request(db: sqlite3.Connection, request_id: str) -> StoredRequest | None:
    row = db.execute(
        f"SELECT {REQUEST_COLUMNS} FROM requests WHERE id = ?",  # noqa: S608
        (request_id,),
    ).fetchone()
    return None if row is None else request_from_row(row)


def select_items(db: sqlite3.Connection, request_id: str) -> list[RequestItem]:
    cursor = db.execute(
        "SELECT recording_id, outcome, data FROM request_items WHERE request_id = ? ORDER BY rowid",
        (request_id,),
    )
    return [item_from_row(r) for r in cursor]


@decodes("request_items")
def item_from_row(row: tuple[Any, ...]) -> RequestItem:
    rid, outcome, data = row
    extra = json.loads(data)
    extra["holds"] = tuple(extra.get("holds", ()))
    if extra.get("time") is not None:
        extra["time"] = from_us(extra["time"])
    return RequestItem(recording_id=rid, outcome=ItemOutcome(outcome), **extra)


def item_data(item: RequestItem) -> str:
    data = {
        "location": item.location,
        "licence": item.licence,
        "size": item.size,
        "sha256": item.sha256,
        "method": item.method,
        "effective": item.effective,
        "ineffective_reason": item.ineffective_reason,
        "time": _us(item.time),
        "audit_seq": item.audit_seq,
        "holds": list(item.holds),
        "note": item.note,
        "s3": None if item.s3 is None else dict(item.s3),
    }
    return json.dumps({k: v for k, v in data.items() if v not in (None, [])}, sort_keys=True)
