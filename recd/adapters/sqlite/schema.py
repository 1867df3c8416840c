"""The catalogue's SQLite schema: its version and the migration to each version.

Times are stored as integer microseconds since the Unix epoch (UTC); a NULL deadline means the
recording has none (retention ``never``, or unclassified and kept). Invariants: a migration is
never edited once released (a catalogue at version n has run exactly migrations 1..n), and
``SCHEMA_VERSION`` is the highest key of ``MIGRATIONS``; ``SECONDARY_INDEXES`` are the
recordings' indexes as the latest migration leaves them (a migration that changes one updates
it, and drops with ``IF EXISTS``: a first index drops them while it loads). The row codecs
are ``recd.adapters._rows`` and the scope, hold and request queries ``queries``.
"""

from __future__ import annotations

SCHEMA_VERSION = 7

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
    # Directories as the last full scan listed them (the updatedb idea): while a directory's
    # device, inode, mtime and ctime are these, its names are the same, and a rescan takes its
    # files from ``recordings`` without listing it. ``subdirs``: its subdirectory names joined
    # by '/' (TEXT, or a BLOB when a name is not UTF-8, as ``dir``); ``stamped``: when the
    # listing was (microseconds; a scan trusts a stamp for a while only). Rebuilt by a full scan.
    7: """
    CREATE TABLE dir_stamps (
        source   TEXT NOT NULL,
        dir      TEXT NOT NULL,
        dev      INTEGER NOT NULL,
        ino      INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        ctime_ns INTEGER NOT NULL,
        subdirs  TEXT NOT NULL,
        files    INTEGER NOT NULL,
        bytes    INTEGER NOT NULL,
        stamped  INTEGER NOT NULL,
        PRIMARY KEY (source, dir)
    ) WITHOUT ROWID;
    """,
}


#: The recordings' secondary indexes at ``SCHEMA_VERSION`` (tests check them against the
#: migrations). A first index into an empty catalogue drops them and builds them once at the
#: end (``Indexing.begin_bulk``); opening a catalogue creates any that are missing, so a recd
#: killed mid-load leaves a catalogue the next start repairs. ``id``'s UNIQUE index stays.
SECONDARY_INDEXES: dict[str, str] = {
    "recordings_due": "CREATE INDEX IF NOT EXISTS recordings_due ON recordings (deadline, id) "
    "WHERE state = 'present' AND held = 0",
    "recordings_licence": "CREATE INDEX IF NOT EXISTS recordings_licence "
    "ON recordings (licence, state)",
    "recordings_dir": "CREATE INDEX IF NOT EXISTS recordings_dir "
    "ON recordings (source, dir, location)",
    "recordings_held": "CREATE INDEX IF NOT EXISTS recordings_held ON recordings (source) "
    "WHERE held = 1 AND state = 'present'",
}
