"""``SourceOwners`` on the shared PostgreSQL catalogue: one session-level advisory lock per source.

A node serves a one-at-a-time source (S3, or a ``shared`` directory) while it holds that
source's lock, ``pg_try_advisory_lock(key)``, on a connection of its own that it keeps open for
this alone (a lock taken on the catalogue's connection would not survive its reconnections, and
a transaction-level lock would end with each transaction). The lock lives as long as the
session: when the node's process dies, or the server closes a session it no longer hears from
(TCP keepalives, ``tcp_keepalives_idle``), the lock is gone and the next node to ask takes the
source over. Until the server notices, the old node's lock still stands: nobody serves the
source for that while, and no two nodes ever do; the claims on each recording (``sweeping``)
keep each erase to one node besides.

``serve`` remembers what it holds: asked again, it only checks that its session is still alive
(one ``SELECT 1``); a session found dead is opened again and every source tried afresh: the
locks went with the old session, so ``serve`` says True again only once it has taken the lock
anew on the new one (while the server is down, False, and the problem logged once). Opening
finds the server unreachable: ``CatalogueUnreachable``. To see
who serves what: ``SELECT application_name, objid FROM pg_locks JOIN pg_stat_activity USING
(pid) WHERE locktype = 'advisory'``; the connection is named ``recd owners NODE``.

The same session holds the lock of this node's name (``node_key``) for as long as it lives:
two hosts given one ``daemon.node`` would take each other's claims for their own (a starting
host drops its node's claims that hold no intent), so the second to connect gets ``NodeInUse``,
naming where the first connected from, and waits as for an unreachable server.

The key of a source is the first 8 bytes of the SHA-256 of its name with the top bit set: a
negative bigint, the same on every host and in every run. recd's fixed advisory locks (the
migrations' and the audit chain's) are positive, so none of them is ever a source's key. A
node's lock takes the two-key form (``NODE_CLASS``, 4 bytes of the SHA-256 of its name), which
PostgreSQL keeps apart from every one-key lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import socket

import psycopg

from recd.adapters.postgres.errors import describe, reason, unreachable
from recd.adapters.postgres.store import Connection
from recd.errors import NodeInUse

logger = logging.getLogger(__name__)

_TOP = 1 << 63
#: The first key of every node name's lock ("recd" in ASCII).
NODE_CLASS = 0x72656364


def source_key(source: str) -> int:
    """The advisory lock key of ``source``: stable, negative, 63 bits of its name's SHA-256."""
    unsigned = int.from_bytes(hashlib.sha256(source.encode()).digest()[:8], "big") | _TOP
    return unsigned - (1 << 64)


def node_key(node: str) -> int:
    """The second key of ``node``'s lock: a signed 32-bit number from its name's SHA-256."""
    return int.from_bytes(hashlib.sha256(node.encode()).digest()[:4], "big", signed=True)


class AdvisoryOwners:
    """The sources the node ``node`` serves on the database ``url`` names (a libpq URL)."""

    def __init__(self, url: str, node: str | None = None) -> None:
        self.url = url
        self.name = describe(url)
        self.node = socket.gethostname() if node is None else node
        self._held: set[str] = set()
        self._said: str | None = None  # the last connection problem logged, said once
        self._db: Connection | None = None
        try:
            self._db = self._connect()  # NodeInUse goes on up as it is
        except psycopg.Error as exc:
            raise unreachable(f"catalogue {self.name}", exc) from exc

    def _connect(self) -> Connection:
        """A new lock session holding this node's name. Raises ``NodeInUse`` when another
        session holds it."""
        db = psycopg.connect(self.url, autocommit=True, application_name=f"recd owners {self.node}")
        try:
            self._take_node(db)
        except BaseException:
            db.close()
            raise
        return db

    def _take_node(self, db: Connection) -> None:
        key = node_key(self.node)
        row = db.execute("SELECT pg_try_advisory_lock(%s, %s)", (NODE_CLASS, key)).fetchone()
        if row is not None and row[0]:
            return
        holder = db.execute(
            "SELECT host(a.client_addr), a.backend_start AT TIME ZONE 'UTC' FROM pg_locks l "
            "JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' "
            "AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 2",
            (NODE_CLASS, key & 0xFFFFFFFF),
        ).fetchone()
        seen = ""
        if holder is not None:
            addr, since = holder
            where = "a local socket" if addr is None else str(addr)
            seen = f" (connected from {where} since {since:%Y-%m-%dT%H:%M:%SZ})"
        raise NodeInUse(
            f'catalogue {self.name}: daemon.node "{self.node}" is in use by another recd'
            f"{seen}: give each host its own daemon.node; if that is this host's recd before "
            "a crash, the server ends its session once its keepalives fail"
        )

    def serve(self, source: str) -> bool:
        try:
            db = self._alive()
            if source in self._held:
                return True
            row = db.execute("SELECT pg_try_advisory_lock(%s)", (source_key(source),)).fetchone()
        except psycopg.OperationalError as exc:
            self._lost(exc)
            return False
        self._said = None
        if row is None or not row[0]:
            return False
        self._held.add(source)
        logger.info("source %s: served by this node (%s) from now on", source, self.node)
        return True

    def _alive(self) -> Connection:
        """The lock session, opened again (holding nothing) when it was lost."""
        db = self._db
        if db is not None and not db.closed:
            if not self._held:
                return db  # the lock attempt itself tells whether it is alive
            try:
                db.execute("SELECT 1")
                return db
            except psycopg.OperationalError as exc:
                self._lost(exc)
        self._db = db = self._connect()
        return db

    def _lost(self, exc: psycopg.OperationalError) -> None:
        """The session is gone, and with it every lock it held."""
        if self._held:
            logger.warning(
                "catalogue %s: lost the session holding sources %s (%s); another node may "
                "take them over",
                self.name,
                ", ".join(sorted(self._held)),
                reason(exc),
            )
        elif self._said != reason(exc):
            logger.warning(
                "catalogue %s: cannot ask which sources this node serves: %s",
                self.name,
                reason(exc),
            )
        self._said = reason(exc)
        self._held.clear()
        if self._db is not None:
            self._db.close()
            self._db = None

    def release(self, source: str) -> None:
        if source not in self._held:
            return
        self._held.discard(source)
        if self._db is None:
            return
        try:
            self._db.execute("SELECT pg_advisory_unlock(%s)", (source_key(source),))
        except psycopg.OperationalError as exc:  # the session, and the lock, are gone
            self._lost(exc)

    def close(self) -> None:
        """Release every lock, then close: the server ends a closed session a moment later,
        and a reload opening the next one at once must find this node's name free."""
        self._held.clear()
        if self._db is not None:
            with contextlib.suppress(psycopg.Error):  # a session already gone holds nothing
                self._db.execute("SELECT pg_advisory_unlock_all()")
            self._db.close()
            self._db = None
