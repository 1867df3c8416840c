"""What every role of the PostgreSQL catalogue shares: the connection, transactions, names.

``Session`` is the connection of a catalogue or a reader: opened on first use and again, on the
next use, after it was lost (``errors.guarded`` drops it, raising ``CatalogueUnreachable``),
each new one prepared (``_prepare``) before anything else runs on it. A transaction the loss cut
in half was never committed: the server rolled it back, nothing of it is stored.
``Store`` declares the state the role mixins read; ``PostgresCatalogue`` sets it up. The
connection is in autocommit: a lone statement commits when it returns, and ``_tx`` (psycopg's
``transaction()``, a savepoint when nested) makes a role's writes commit together or not at all.
``together`` is one transaction around a use case's writes and the audit entries appended
through this connection (``recd.ports.together``); a connection lost inside it is not replaced
until it ends, so no write of the block commits on its own.
Hold rules are read again in each transaction that applies them (``_hold_rules``): a hold
placed through any connection to the database covers what is indexed after it.
``pg_path`` is how a location or directory is stored (``bytea``, see ``schema``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from recd.adapters._rows import (
    decodes,
    path_param,
    path_value,
    row_to_mirrored,
    row_to_recording,
    row_to_stamp,
)
from recd.adapters.postgres.errors import lost, reason, unreachable
from recd.core.holds import Hold
from recd.core.model import Recording
from recd.errors import CatalogueUnreachable, StateError
from recd.ports.records import Mirrored
from recd.ports.source import DirStamp

Connection = psycopg.Connection[TupleRow]

#: A deadline never below the floor a hold's release set (``not_before``); NULL stays NULL.
#: ``{1}``: the table's name and a dot where the statement needs it (an upsert).
FLOORED = (
    "CASE WHEN {0} IS NULL THEN NULL WHEN {1}not_before IS NOT NULL AND {1}not_before > {0} "
    "THEN {1}not_before ELSE {0} END"
)
#: The advisory lock every audit append holds until it commits ("audt" in ASCII; the
#: migrations' is "recd"), and every ``together`` block from its start: one lock order for
#: every host (the chain first, then rows), so a hold placed on one host and a sweep's
#: intents on another never deadlock on each other's row locks.
AUDIT_LOCK = 0x61756474
#: What marks a stored name that is not UTF-8 (a byte UTF-8 never holds).
_RAW = b"\xff"


def connect(url: str, what: str) -> Connection:
    """An autocommit connection to ``url``; ``CatalogueUnreachable`` naming ``what``
    (``catalogue <describe(url)>``) when the server cannot be reached or refuses."""
    try:
        return psycopg.connect(url, autocommit=True)
    except psycopg.Error as exc:
        raise unreachable(what, exc) from exc


class Session:
    """One connection to the database ``_url`` names (``name``: ``describe`` of it), opened
    when first needed and again after it was lost; ``close`` ends it for good."""

    name: str
    _url: str
    _conn: Connection | None = None
    _closed: bool = False
    _joined: Connection | None = None  # the connection ``together``'s transaction is open on
    _joined_thread: int | None = None  # the thread that opened it

    @property
    def _db(self) -> Connection:
        return self._connection()

    def _connection(self) -> Connection:
        """The open connection, or a new one, prepared (``_prepare``); ``ValueError`` once
        closed, ``CatalogueUnreachable`` when the server cannot be reached."""
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        if self._joined is not None:  # lost inside ``together``: a new one would not join it
            raise CatalogueUnreachable(
                f"catalogue {self.name}: the connection was lost in the middle of a "
                "transaction; nothing of it was stored"
            )
        if self._closed:
            raise ValueError(f"catalogue {self.name} is closed")
        self._conn = None
        self._conn = conn = connect(self._url, f"catalogue {self.name}")
        try:
            self._prepare()
        except psycopg.Error as exc:
            self._lose()
            if lost(exc):
                raise unreachable(f"catalogue {self.name}", exc) from exc
            raise
        except BaseException:
            self._lose()
            raise
        return conn

    def _prepare(self) -> None:
        """What a new connection needs before its first use (``_db`` is it)."""

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """One transaction on this connection around the block (``recd.ports.together``):
        the writes of this catalogue and of an audit log that writes through it
        (``PostgresAuditLog(writer=)``) commit when it ends, or roll back when it raises; a
        block inside another is a savepoint. The outer block takes the chain's lock
        (``AUDIT_LOCK``) first, as an append would, and holds it to the end. The server
        unreachable, or the connection lost at BEGIN or COMMIT, is ``CatalogueUnreachable``
        (another failure a ``StateError``); an exception of the block propagates as it was,
        even when the rollback cannot reach the server (psycopg leaves the rollback of a lost
        connection to the server)."""
        conn = self._connection()
        outer = self._joined is None
        try:
            with conn.transaction():
                if outer:
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK,))
                    self._joined, self._joined_thread = conn, threading.get_ident()
                yield
        except psycopg.OperationalError as exc:  # BEGIN or COMMIT (methods translate theirs)
            if lost(exc):
                self._lose()
                raise unreachable(f"catalogue {self.name}", exc) from exc
            raise StateError(f"catalogue {self.name}: {reason(exc)}") from exc
        finally:
            if outer:
                self._joined = self._joined_thread = None

    def joined(self) -> bool:
        """Whether this thread is inside ``together`` (a write through this connection is
        not committed until it ends)."""
        return self._joined is not None and self._joined_thread == threading.get_ident()

    def _lose(self) -> None:
        """Drop the connection (lost, or about to be): the next use connects again."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Close the connection for good; idempotent."""
        self._closed = True
        self._lose()


class Store(Session):
    """The writer connection and the hold rules in force, as the roles see them."""

    PARAM = "%s"  # psycopg's placeholder, for the shared roles (``recd.adapters._sql``)
    _active: list[Hold]  # active holds: upsert holds what they match
    _floors: list[Hold]  # released holds with a due_from: upsert floors what they match

    def _tx(self) -> AbstractContextManager[psycopg.Transaction]:
        return self._db.transaction()

    def _load_holds(self) -> None:
        """Read the hold rules in force into ``_active`` and ``_floors`` (``Holding``)."""
        raise NotImplementedError

    def _hold_rules(self) -> None:
        """In a transaction: the hold rules as committed, read under a lock that placing,
        releasing or restoring a hold waits for (and waits for), so that rows written in
        this transaction and a hold placed through another connection never miss each other."""
        self._db.execute("LOCK TABLE holds IN SHARE MODE")
        self._load_holds()


def pg_path(path: str) -> bytes:
    """A location or directory as stored: its UTF-8 bytes, or 0xFF and its bytes when it is
    not UTF-8 (after every UTF-8 name, as SQLite sorts a BLOB after every TEXT)."""
    param = path_param(path)
    return _RAW + param if isinstance(param, bytes) else param.encode()


def pg_name(value: bytes) -> str:
    """A stored location or directory back as the service's text (``pg_path``'s inverse)."""
    value = bytes(value)
    return path_value(value[1:]) if value[:1] == _RAW else value.decode()


@decodes("recordings")
def recording(row: tuple[Any, ...]) -> Recording:
    """A row of ``COLUMNS`` (location third) as a ``Recording``."""
    return row_to_recording((*row[:2], pg_name(row[2]), *row[3:]))


@decodes("dir_stamps")
def stamp(row: tuple[Any, ...]) -> DirStamp:
    """``(dev, ino, mtime_ns, ctime_ns, subdirs, files, bytes)`` as a ``DirStamp``."""
    return row_to_stamp((*row[:4], pg_name(row[4]), *row[5:]))


@decodes("s3_legal_holds")
def mirrored(row: tuple[Any, ...]) -> Mirrored:
    """``(recording_id, location, ino, versions)`` as a ``Mirrored``."""
    return row_to_mirrored((row[0], pg_name(row[1]), *row[2:]))
