"""The audit chain as the table ``audit`` of the shared PostgreSQL database (ports.AuditLog).

One row per entry (``schema.AUDIT_TABLE``): ``seq``, ``pos`` (where the entry begins in the
chain: the bytes of every entry before it) and ``line``, the sealed line byte for byte as
audit.log would hold it. So offsets (``end_offset``, ``read_from``, ``digests``) mean what they
mean for the file, and the lines in seq order are a file that ``recctl audit verify --file``
checks with the same head as ``last``.

Invariants:

- One chain for every host: ``append`` takes the transaction-level advisory lock
  ``AUDIT_LOCK``, reads the last row inside it, seals after it with the core's ``seal_line``,
  inserts and commits; the lock goes with the commit. So the chain's order is the commit
  order, and the next appender, on any connection of any host, chains after the committed last
  row (READ COMMITTED: a statement's snapshot is taken after the lock was granted). A row at a
  seq or position already taken is refused by the table's keys: a chain cannot fork.
- Durable on return: ``append`` returns once the transaction has committed (on stable storage
  as the server's ``synchronous_commit`` has it: on, by default).
- ``failure``: an append that cannot be written (the server unreachable, the connection lost,
  the table refused) raises an ``OSError`` naming the database, kept in ``failure`` until an
  append succeeds, as the file's full disk is: erasing pauses and the daemon retries. The next
  call connects again. A connection lost during COMMIT leaves the outcome unknown: the batch
  may be in the chain. The chain stays valid either way (the next append follows whatever
  committed); the event may then be audited twice, never lost.
- ``writer`` (the ``PostgresCatalogue``): appends run on the catalogue's connection, so that
  inside its ``together`` (``recd.ports.together``) an append and the catalogue change it
  records commit as one transaction or not at all. There the append's transaction is a
  savepoint and ``AUDIT_LOCK`` is held until the outer commit: the chain's order is still the
  commit order. Until that commit the entries are not in the chain for anyone else: reads on
  the thread inside ``together`` go through the writer's connection (they see them), every
  other read through this log's own connection, and ``extent`` keeps the last committed end (a
  rollback leaves nothing to forget). Without ``writer`` every append commits on its own.
- A server that cannot be reached, or a connection lost, during a read or while opening is
  ``CatalogueUnreachable`` naming the database (another failure of the server a ``StateError``);
  the next call connects again.
- ``node`` (default: the host name) names the host in every entry it appends: ``"node"`` in the
  details (unless the draft has one already), so the one chain of many hosts says which of them
  wrote each entry. An ordinary detail: a line verifies as any other.
- Every read checks every entry: its seal and canonical form (``parse_sealed``), that its row
  holds it at the seq and position the row says, and its link to the entry before;
  ``AuditCorrupt`` names the database, the seq and the byte. Reads stream in pages by seq and
  hold no transaction between pages. A last row that does not verify stops appends
  (``AuditCorrupt``): unlike a file's torn tail, a committed row cannot be half written, so it
  was changed by someone, and chaining after it would hide that.
- No segments (``segment_files`` is empty, ``live_start`` 0, ``extent`` counts none): a file
  is rotated to bound its size and to compress or archive closed parts; a table has no such
  limit, and the database's own backups and maintenance keep it. ``extent`` is the chain's
  bytes as this object last saw them (an append or a read of the end), with no query, as the
  metrics thread asks it while the loop may be waiting for the lock.
- One object is safe from several threads: a lock serialises the use of its connection.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import socket
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import psycopg

from recd.adapters._closing import Closing
from recd.adapters.postgres.catalogue import migrate
from recd.adapters.postgres.errors import describe, lost, reason, unreachable
from recd.adapters.postgres.store import AUDIT_LOCK, Connection, Session, connect
from recd.core.audit import GENESIS, AuditDraft, AuditEntry, link_problem, parse_sealed, seal_line
from recd.core.segcheck import Stat
from recd.errors import AuditCorrupt, CatalogueUnreachable, StateError
from recd.ports.audit import AuditExtent

__all__ = ["AUDIT_LOCK", "PostgresAuditLog"]

#: Rows read per query while streaming the chain.
PAGE = 1000

_LAST = "SELECT seq, pos, line FROM audit ORDER BY seq DESC LIMIT 1"
_PAGE = "SELECT seq, pos, line FROM audit WHERE seq >= %s ORDER BY seq LIMIT %s"

#: (seq, pos, line) of one row.
Row = tuple[int, int, bytes]


def _row(found: tuple[Any, ...]) -> Row:
    return int(found[0]), int(found[1]), bytes(found[2])


class PostgresAuditLog(Closing):
    """The audit chain in the PostgreSQL database ``url`` names; see the module docstring."""

    def __init__(self, url: str, node: str | None = None, writer: Session | None = None) -> None:
        """Connect, creating the schema (the catalogue's, ``schema``) if the database has none,
        as the host ``node`` (default: the host name), appending through ``writer``'s
        connection if given (the catalogue of the same database: see the module). Raises
        ``CatalogueUnreachable`` naming the database when it cannot be reached, ``StateError``
        when its schema is newer."""
        self.name = describe(url)
        self.node = socket.gethostname() if node is None else node
        self._url = url
        self._writer = writer
        self._lock = threading.Lock()
        self._db: Connection | None = None
        self._closed = False
        self._end = 0  # the chain's bytes as last seen
        self.failure: OSError | None = None  # why the last append failed; None once one succeeds
        try:
            migrate(self._connection(), self.name)
        except psycopg.Error as exc:
            self.close()
            raise self._unavailable(exc) from exc
        except BaseException:
            self.close()
            raise

    # -- the connection ----------------------------------------------------------------------

    def _connection(self) -> Connection:
        """The open connection, connecting again after one was lost (under ``_lock``)."""
        if self._closed:
            raise ValueError(f"the audit log in {self.name} is closed")
        if self._db is None or self._db.closed:
            self._db = None
            self._db = connect(self._url, f"audit log in {self.name}")
        return self._db

    def _unavailable(self, exc: psycopg.Error, *, writer: bool = False) -> StateError:
        """``CatalogueUnreachable`` when ``exc`` says the server is gone (``lost``), the
        connection dropped (``writer``: the writer's) so that the next call connects again;
        else a ``StateError``."""
        if not lost(exc):
            return StateError(f"audit log in {self.name}: {reason(exc)}")
        if writer and self._writer is not None:
            self._writer._lose()
        elif self._db is not None:
            self._db.close()
            self._db = None
        return unreachable(f"audit log in {self.name}", exc)

    def _joined(self) -> bool:
        """Whether this thread is inside the writer's ``together``: what it appends is not
        committed yet, and what it reads must see it."""
        return self._writer is not None and self._writer.joined()

    def _seen(self, end: int) -> None:
        """Keep ``end`` as the chain's bytes (``extent``) if it is committed."""
        if not self._joined():
            self._end = end

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Connection]:
        """The connection for one query of a read: the server gone is
        ``CatalogueUnreachable``, another failure a ``StateError``, naming the database."""
        if self._writer is not None and self._writer.joined():
            try:
                yield self._writer._db
            except psycopg.Error as exc:
                raise self._unavailable(exc, writer=True) from exc
            return
        with self._lock:
            try:
                yield self._connection()
            except psycopg.Error as exc:
                raise self._unavailable(exc) from exc

    # -- appending ---------------------------------------------------------------------------

    def append(self, drafts: Sequence[AuditDraft], now: datetime) -> list[AuditEntry]:
        """Seal ``drafts`` at ``now`` (UTC) after the chain's last committed entry and insert
        them in one transaction, under ``AUDIT_LOCK``; committed when this returns.

        Raises an ``OSError`` (kept in ``failure``) when they cannot be written;
        ``ValueError``/``TypeError`` for details JSON cannot hold (nothing is written);
        ``AuditCorrupt`` when the last entry does not verify.
        """
        if self._closed:
            raise ValueError(f"the audit log in {self.name} is closed")
        if not drafts:
            return []
        through = self._writer
        with self._lock:
            try:
                db = self._connection() if through is None else through._db
                entries, end = self._insert(db, drafts, now)
            except psycopg.Error as exc:
                unavailable = self._unavailable(exc, writer=through is not None)
                self.failure = OSError(errno.EIO, str(unavailable))
                raise self.failure from exc
            except CatalogueUnreachable as exc:  # connecting again
                self.failure = OSError(errno.EIO, str(exc))
                raise self.failure from exc
        self._seen(end)
        self.failure = None
        return entries

    def _insert(
        self, db: Connection, drafts: Sequence[AuditDraft], now: datetime
    ) -> tuple[list[AuditEntry], int]:
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK,))
            found = db.execute(_LAST).fetchone()
            seq, prev, pos = 0, GENESIS, 0
            if found is not None:
                last = self._checked(_row(found))
                seq, prev, pos = last.seq, last.hash, int(found[1]) + len(found[2])
            entries: list[AuditEntry] = []
            rows: list[tuple[int, int, bytes]] = []
            for draft in map(self._signed, drafts):
                entry, line = seal_line(draft, seq=seq + 1, prev=prev, time=now)
                entries.append(entry)
                rows.append((entry.seq, pos, line))
                seq, prev, pos = entry.seq, entry.hash, pos + len(line)
            with db.cursor() as cursor:
                cursor.executemany("INSERT INTO audit (seq, pos, line) VALUES (%s, %s, %s)", rows)
        return entries, pos

    def _signed(self, draft: AuditDraft) -> AuditDraft:
        """``draft`` with this host's ``node`` in its details, unless they name one."""
        if "node" in draft.details:
            return draft
        return replace(draft, details={**draft.details, "node": self.node})

    # -- reading -----------------------------------------------------------------------------

    def _corrupt(self, seq: int, pos: int, problem: str) -> AuditCorrupt:
        return AuditCorrupt(f"{self.name}: audit entry {seq} at byte {pos}: {problem}")

    def _checked(self, row: Row) -> AuditEntry:
        """The entry of ``row``, its seal and form checked, and its seq the row's."""
        seq, pos, line = row
        try:
            entry = parse_sealed(line)
        except ValueError as exc:
            raise self._corrupt(seq, pos, str(exc)) from None
        if not line.endswith(b"\n"):
            raise self._corrupt(seq, pos, "no newline at the end of the line")
        if entry.seq != seq:
            raise self._corrupt(seq, pos, f"the row holds entry {entry.seq}")
        return entry

    def _rows(self, first: int) -> Iterator[Row]:
        """Every row from seq ``first`` on, a page at a time."""
        while True:
            with self._reading() as db:
                page = [_row(found) for found in db.execute(_PAGE, (first, PAGE)).fetchall()]
            yield from page
            if len(page) < PAGE:
                return
            first = page[-1][0] + 1

    def _entries(
        self,
        rows: Iterable[Row],
        before: tuple[int, str, int] | None,
        *,
        after: int = 0,
        lenient: bool = False,
    ) -> Iterator[AuditEntry]:
        """The entries of ``rows`` after seq ``after``, each checked to follow the one before
        (``before``: the seq, hash and end of the entry the first follows; None: anything)."""
        for seq, pos, line in rows:
            try:
                entry = self._checked((seq, pos, line))
            except AuditCorrupt:
                if lenient:
                    continue
                raise
            if before is not None and not lenient:
                problem = link_problem(entry, before[0], before[1])
                if problem is None and pos != before[2]:
                    problem = f"the entry before it ends at byte {before[2]}"
                if problem is not None:
                    raise self._corrupt(seq, pos, problem)
            before = (entry.seq, entry.hash, pos + len(line))
            self._seen(max(self._end, before[2]))
            if entry.seq > after:
                yield entry

    def end_offset(self) -> int:
        """The chain's bytes: where the next entry will begin."""
        with self._reading() as db:
            found = db.execute(_LAST).fetchone()
        end = 0 if found is None else int(found[1]) + len(found[2])
        self._seen(end)
        return end

    def read_from(self, offset: int, *, skip_damaged: bool = False) -> Iterator[AuditEntry]:
        """Entries from ``offset`` (an earlier ``end_offset()``) to the end, each checked to
        follow the one before (with ``skip_damaged``, rows that do not verify are left out and
        links are not checked). ``ValueError`` at once for an offset where no entry begins."""
        end = self.end_offset()
        if not 0 <= offset <= end:
            raise ValueError(f"offset {offset} is outside the audit log (0 to {end})")
        if offset == end:
            return iter(())
        with self._reading() as db:
            found = db.execute("SELECT seq FROM audit WHERE pos = %s", (offset,)).fetchone()
        if found is None:
            raise ValueError(f"offset {offset} is not the start of an audit entry")
        return self._entries(self._rows(int(found[0])), None, lenient=skip_damaged)

    def read_since(self, seq: int) -> Iterator[AuditEntry]:
        """Every entry after ``seq`` (0: all, the first following the genesis hash), each
        checked to follow the one before; ``AuditCorrupt`` when entry ``seq`` is missing."""
        if seq <= 0:
            return self._entries(self._rows(1), (0, GENESIS, 0))
        return self._entries(self._since(seq), None, after=seq)

    def _since(self, seq: int) -> Iterator[Row]:
        """The rows from ``seq`` on, which must begin with ``seq`` itself if any follow."""
        rows = self._rows(seq)
        first = next(rows, None)
        if first is None:
            return
        if first[0] != seq:
            problem = f"entries {seq} to {first[0] - 1} are missing"
            raise self._corrupt(first[0], first[1], problem)
        yield first
        yield from rows

    def read_all(self) -> Iterator[AuditEntry]:
        """The whole chain from seq 1 (``read_since(0)``)."""
        return self.read_since(0)

    def extent(self) -> AuditExtent:
        """The chain's bytes as last seen, and no segments (no query: any thread may ask)."""
        return AuditExtent(self._end, 0)

    def segment_files(self) -> list[Stat]:
        """None: the table is never rotated."""
        return []

    def read_segment(self, name: str) -> Iterator[tuple[AuditEntry, int]]:
        """No segment exists (``segment_files`` lists none)."""
        raise FileNotFoundError(errno.ENOENT, f"the audit log in {self.name} has no segments", name)

    def live_start(self) -> int:
        """0: the whole chain is live."""
        return 0

    def digests(self, ends: Sequence[int]) -> list[str]:
        """SHA-256 (hex) of the chain's lines, concatenated, up to each offset of ``ends``
        (ascending), in one pass over the rows it needs."""
        end = self.end_offset()
        targets = list(ends)
        if targets != sorted(targets) or any(not 0 <= at <= end for at in targets):
            raise ValueError(
                f"offsets {targets} are not ascending within the audit log (0 to {end})"
            )
        digest = hashlib.sha256()
        found: list[str] = []
        pos = 0  # the bytes hashed
        for _, _, line in self._rows(1):
            if not targets:
                break
            rest = line
            while targets and targets[0] <= pos + len(rest):
                cut = targets.pop(0) - pos
                digest.update(rest[:cut])
                rest, pos = rest[cut:], pos + cut
                found.append(digest.copy().hexdigest())
            digest.update(rest)
            pos += len(rest)
        found.extend(digest.copy().hexdigest() for _ in targets)
        return found

    def last(self) -> AuditEntry | None:
        """The newest committed entry (its seal checked), or None for an empty chain."""
        with self._reading() as db:
            found = db.execute(_LAST).fetchone()
        if found is None:
            self._seen(0)
            return None
        row = _row(found)
        self._seen(row[1] + len(row[2]))
        return self._checked(row)

    def close(self) -> None:
        """Close the connection; idempotent."""
        with self._lock:
            self._closed = True
            if self._db is not None:
                self._db.close()
                self._db = None
