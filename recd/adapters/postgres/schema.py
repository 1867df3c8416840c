"""The catalogue's PostgreSQL schema: its version and the migration to each version.

The rows are those of the SQLite catalogue at its version 7, with the same meaning: times are
integer microseconds since the Unix epoch (UTC, ``bigint``), a NULL deadline means none, states
are the same words. What differs:

- locations and directories are ``bytea``: a UTF-8 name as its bytes, a name that is not UTF-8
  as the byte 0xFF (which UTF-8 never holds) and then its bytes (``store.pg_path``). One value
  per name; every UTF-8 name sorts before every other, as SQLite sorts TEXT before BLOB;
- ``n`` numbers recordings and request items in the order they were first stored (SQLite's
  ``rowid``: "catalogue order");
- ``call_id``, ``caller`` and ``callee`` repeat those fields, as JSON strings (ASCII: a name
  that is not UTF-8 stays exact), the parties normalised (``normalise_party``), for the scope
  queries, which SQLite answers with ``json_extract`` and a Python function;
- text keys (ids, sources, licences) compare and sort by their bytes (``COLLATE "C"``), as
  SQLite's do, whatever the database's locale;
- ``schema_version`` holds the version in one row (SQLite's ``PRAGMA user_version``).

Invariants: a migration is never edited once released (a database at version n has run exactly
migrations 1..n) and ``SCHEMA_VERSION`` is the highest key of ``MIGRATIONS``.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE recordings (
        n           bigint GENERATED ALWAYS AS IDENTITY,
        id          text COLLATE "C" PRIMARY KEY,
        source      text COLLATE "C" NOT NULL,
        location    bytea NOT NULL,
        dir         bytea NOT NULL,
        dev         bigint NOT NULL,
        ino         bigint NOT NULL,
        size        bigint NOT NULL,
        mtime_ns    bigint NOT NULL,
        licence     text COLLATE "C",
        started     bigint NOT NULL,
        deadline    bigint,
        fields      text NOT NULL,
        call_id     text,
        caller      text,
        callee      text,
        state       text NOT NULL,
        first_seen  bigint NOT NULL,
        indexed_at  bigint NOT NULL,
        erased_at   bigint,
        skip_reason text,
        held        smallint NOT NULL DEFAULT 0,
        not_before  bigint,
        ctime_ns    bigint,
        btime_ns    bigint
    );
    CREATE UNIQUE INDEX recordings_order ON recordings (n);
    CREATE INDEX recordings_due ON recordings (deadline, id) WHERE state = 'present' AND held = 0;
    CREATE INDEX recordings_licence ON recordings (licence, state);
    CREATE INDEX recordings_dir ON recordings (source, dir, location);
    CREATE INDEX recordings_held ON recordings (source) WHERE held = 1 AND state = 'present';
    -- Per-licence totals of present recordings ('' is unclassified), kept by triggers once
    -- per statement from the rows it changed, as SQLite's are per row.
    CREATE TABLE totals (
        licence    text COLLATE "C" PRIMARY KEY,
        recordings bigint NOT NULL,
        bytes      bigint NOT NULL,
        held       bigint NOT NULL
    );
    CREATE FUNCTION recd_totals() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO totals AS t
            SELECT coalesce(licence, ''), count(*), sum(size), sum(held) FROM new_rows
            WHERE state = 'present' GROUP BY 1
            ON CONFLICT (licence) DO UPDATE SET recordings = t.recordings + excluded.recordings,
                bytes = t.bytes + excluded.bytes, held = t.held + excluded.held;
        ELSIF TG_OP = 'DELETE' THEN
            INSERT INTO totals AS t
            SELECT coalesce(licence, ''), -count(*), -sum(size), -sum(held) FROM old_rows
            WHERE state = 'present' GROUP BY 1
            ON CONFLICT (licence) DO UPDATE SET recordings = t.recordings + excluded.recordings,
                bytes = t.bytes + excluded.bytes, held = t.held + excluded.held;
        ELSE
            INSERT INTO totals AS t
            SELECT licence, sum(n), sum(b), sum(h) FROM (
                SELECT coalesce(licence, '') AS licence, 1 AS n, size AS b, held AS h
                FROM new_rows WHERE state = 'present'
                UNION ALL
                SELECT coalesce(licence, ''), -1, -size, -held
                FROM old_rows WHERE state = 'present'
            ) AS d GROUP BY licence
            ON CONFLICT (licence) DO UPDATE SET recordings = t.recordings + excluded.recordings,
                bytes = t.bytes + excluded.bytes, held = t.held + excluded.held;
        END IF;
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER totals_insert AFTER INSERT ON recordings REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION recd_totals();
    CREATE TRIGGER totals_update AFTER UPDATE ON recordings
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION recd_totals();
    CREATE TRIGGER totals_delete AFTER DELETE ON recordings REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION recd_totals();
    CREATE TABLE intents (
        id           text COLLATE "C" PRIMARY KEY,
        recording_id text COLLATE "C" NOT NULL,
        audit_offset bigint NOT NULL,
        temp_name    text NOT NULL,
        plan         text NOT NULL,
        created      bigint NOT NULL
    );
    CREATE TABLE policies (licence text COLLATE "C" PRIMARY KEY, policy text NOT NULL);
    CREATE TABLE scans (source text COLLATE "C" PRIMARY KEY, rule text NOT NULL,
                        started bigint NOT NULL, finished bigint);
    CREATE TABLE breakers (
        licence     text COLLATE "C" PRIMARY KEY,
        tripped_at  bigint NOT NULL,
        due         bigint NOT NULL,
        total       bigint NOT NULL,
        released_at bigint,
        released_by text
    );
    CREATE TABLE holds (
        n              bigint PRIMARY KEY,
        id             text COLLATE "C" NOT NULL UNIQUE,
        licence        text COLLATE "C" NOT NULL,
        case_ref       text NOT NULL,
        reason         text NOT NULL,
        scope          text NOT NULL,
        placed_at      bigint NOT NULL,
        placed_by      text NOT NULL,
        until          bigint,
        state          text NOT NULL,
        released_at    bigint,
        released_by    text,
        release_reason text,
        due_from       bigint
    );
    CREATE TABLE requests (
        id       text COLLATE "C" PRIMARY KEY,
        licence  text COLLATE "C" NOT NULL,
        state    text NOT NULL,
        document text NOT NULL,
        digest   text NOT NULL,
        info     text NOT NULL,
        updated  bigint NOT NULL
    );
    CREATE TABLE request_items (
        n            bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        request_id   text COLLATE "C" NOT NULL REFERENCES requests (id),
        recording_id text COLLATE "C" NOT NULL,
        outcome      text NOT NULL,
        data         text NOT NULL,
        PRIMARY KEY (request_id, recording_id)
    );
    CREATE TABLE s3_legal_holds (
        recording_id text COLLATE "C" PRIMARY KEY,
        ino          bigint NOT NULL,
        versions     text NOT NULL
    );
    CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
    CREATE TABLE dir_stamps (
        source   text COLLATE "C" NOT NULL,
        dir      bytea NOT NULL,
        dev      bigint NOT NULL,
        ino      bigint NOT NULL,
        mtime_ns bigint NOT NULL,
        ctime_ns bigint NOT NULL,
        subdirs  bytea NOT NULL,
        files    bigint NOT NULL,
        bytes    bigint NOT NULL,
        stamped  bigint NOT NULL,
        PRIMARY KEY (source, dir)
    );
    """,
}

# -- The audit chain (issue 18 point 4; ``recd.adapters.postgres.audit``) ----------------------
# One row per entry: ``seq``; ``pos``, where the entry begins in the chain (the bytes of every
# entry before it, as offsets count in a file); ``line``, the sealed line, newline included,
# byte for byte what audit.log would hold. Appends hold ``store.AUDIT_LOCK``; the keys refuse a
# second entry at one seq or one position (a fork) rather than store it.
AUDIT_TABLE = """
    CREATE TABLE audit (
        seq  bigint PRIMARY KEY CHECK (seq >= 1),
        pos  bigint NOT NULL UNIQUE CHECK (pos >= 0),
        line bytea NOT NULL
    );
"""
MIGRATIONS[1] += AUDIT_TABLE
# -- end of the audit chain ---------------------------------------------------------------------

# -- Leases (issue 18, point 3: each recording erased exactly once) ---------------------------
# Kept apart from the tables above so that work on them merges cleanly; part of version 1,
# which no release has shipped yet.
#
# ``claims``: the node that may plan and erase a recording, until ``expires`` (microseconds,
# as every time). A sweep claims the due recordings it reads (``Sweeping.due_in``), an intent
# is recorded only under a live claim of its node, and settling the intent releases the claim;
# a claim whose node died expires, and any node takes it over. The unique index allows one
# live intent per recording, whichever node wrote it.
LEASES = """
    CREATE TABLE claims (
        recording_id text COLLATE "C" PRIMARY KEY,
        node         text NOT NULL,
        expires      bigint NOT NULL
    );
    CREATE UNIQUE INDEX intents_recording ON intents (recording_id);
"""
MIGRATIONS[1] += LEASES
