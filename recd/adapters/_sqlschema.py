"""The catalogue's SQLite schema and row codecs, shared by the writer and the readers.

Times are stored as integer microseconds since the Unix epoch (UTC); a NULL deadline means the
recording has none (retention ``never``, or unclassified and kept).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from recd.core.model import Classification, Provenance, Recording, State
from recd.ports import Breaker

SCHEMA_VERSION = 2

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
}

COLUMNS = (
    "id, source, location, dev, ino, size, mtime_ns, licence, started, deadline, fields, state, "
    "first_seen, skip_reason"
)


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


def row_to_recording(row: sqlite3.Row | tuple[Any, ...]) -> Recording:
    (rid, source, location, dev, ino, size, mtime_ns, licence, started, deadline, fields,
     state, first_seen, skip_reason) = row  # fmt: skip
    extra = json.loads(fields)
    provenance = {k: Provenance(v) for k, v in extra.pop("provenance", {}).items()}
    classification = Classification(
        licence=licence, started=from_us(started), provenance=provenance, **extra
    )
    return Recording(
        id=rid,
        source=source,
        relpath=location,
        dev=dev,
        ino=ino,
        size=size,
        mtime_ns=mtime_ns,
        classification=classification,
        deadline=None if deadline is None else from_us(deadline),
        state=State(state),
        first_seen=from_us(first_seen),
        skip_reason=skip_reason,
    )


BREAKER_COLUMNS = "licence, tripped_at, due, total, released_at, released_by"


def row_to_breaker(row: tuple[Any, ...]) -> Breaker:
    licence, tripped_at, due, total, released_at, released_by = row
    released = None if released_at is None else from_us(released_at)
    return Breaker(licence, from_us(tripped_at), due, total, released, released_by)
