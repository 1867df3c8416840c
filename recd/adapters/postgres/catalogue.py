"""The catalogue on PostgreSQL: one connection, committed transactions, versioned schema.

``PostgresCatalogue(url)`` connects to the database a libpq URL names, creates or migrates its
schema (``schema``) and answers every catalogue role, as ``SqliteCatalogue`` does, from the
mixins ``indexing``, ``sweeping``, ``holding``, ``requesting`` and ``auditmarks``. Each write
is a transaction committed before the call returns. A schema newer than this recd is refused;
migrations run under an advisory lock, so hosts starting together migrate once.

``node`` names this host in the claims that keep two hosts from erasing one recording
(``sweeping``); ``lease`` is how long a claim lasts unless renewed. Its default, 10 minutes,
covers a sweep's page of due recordings planned and erased in batches (one batch of 256 files
or 1,000 S3 keys takes seconds to a few minutes) and clock differences between hosts of a few
minutes; a host that dies holds its recordings back no longer than that, nothing beside
deadlines counted in days.
"""

from __future__ import annotations

import socket
from datetime import timedelta

import psycopg

from recd.adapters.postgres.auditmarks import AuditMarks
from recd.adapters.postgres.errors import describe, guarded, lost, reason, unreachable
from recd.adapters.postgres.holding import Holding
from recd.adapters.postgres.indexing import SCANNED_TABLE, Indexing
from recd.adapters.postgres.requesting import Requesting
from recd.adapters.postgres.schema import MIGRATIONS, SCHEMA_VERSION
from recd.adapters.postgres.store import Connection, connect
from recd.adapters.postgres.sweeping import Sweeping
from recd.errors import StateError

__all__ = [
    "LEASE", "SCHEMA_VERSION", "PostgresCatalogue", "connect", "migrate", "schema_version",
]  # fmt: skip

#: How long a claim lasts unless renewed (see above).
LEASE = timedelta(minutes=10)

#: The advisory lock migrations take (any constant: "recd" in ASCII).
MIGRATION_LOCK = 0x72656364


def schema_version(db: Connection) -> int:
    """The schema version of the database (0: recd never created its tables there)."""
    row = db.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return 0
    found = db.execute("SELECT max(version) FROM schema_version").fetchone()
    return 0 if found is None or found[0] is None else int(found[0])


def newer(name: str, version: int) -> StateError:
    return StateError(
        f"catalogue {name}: schema {version} is newer than this recd understands "
        f"({SCHEMA_VERSION}); upgrade recd on this host"
    )


@guarded
class PostgresCatalogue(Indexing, Sweeping, Holding, AuditMarks, Requesting):
    """The catalogue in the PostgreSQL database ``url`` names (a libpq URL, no password),
    as the node ``node`` (default: the host name) sees it, its claims lasting ``lease``."""

    def __init__(self, url: str, node: str | None = None, lease: timedelta = LEASE) -> None:
        if lease <= timedelta(0):
            raise ValueError(f"lease must be positive, got {lease}")
        self.name = describe(url)
        self.node = socket.gethostname() if node is None else node
        self.lease = lease
        self._url = url
        try:
            self.audit_mark()  # connects; a mark that does not decode is found now, not mid-start
        except BaseException:
            self.close()
            raise

    def _prepare(self) -> None:
        """Each connection, the first and every one after a loss: the schema as this recd
        knows it (another host may have migrated it meanwhile), the per-connection table
        batches are copied into, and the hold rules as committed."""
        migrate(self._db, self.name)
        self._db.execute(SCANNED_TABLE)
        self._load_holds()


def migrate(db: Connection, name: str) -> None:
    """Create or migrate the schema of the database ``name`` names (``describe``) to
    ``SCHEMA_VERSION``, under an advisory lock; StateError when it cannot, or is newer.

    The lock is a session lock taken before the transaction, not a transaction lock taken in
    it: a transaction that waited for the lock would still look tables up in the catalogue as
    it was before the wait, miss the ones the host that held the lock created, and fail
    creating them again (found: three recd starting at once on a new database)."""
    try:
        if schema_version(db) == SCHEMA_VERSION:
            return
        db.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            with db.transaction():
                version = schema_version(db)  # another host may have migrated meanwhile
                if version > SCHEMA_VERSION:
                    raise newer(name, version)
                if version == 0:
                    db.execute("CREATE TABLE schema_version (version integer NOT NULL)")
                    db.execute("INSERT INTO schema_version VALUES (0)")
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    db.execute(MIGRATIONS[target].encode())
                    db.execute("UPDATE schema_version SET version = %s", (target,))
        finally:
            if not db.closed:
                db.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    except psycopg.Error as exc:
        if lost(exc):
            raise unreachable(f"catalogue {name}", exc) from exc
        raise StateError(f"catalogue {name}: cannot create its tables: {reason(exc)}") from exc
