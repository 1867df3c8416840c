"""`recctl audit verify|head|ls|export --url URL`: the audit chain read from the ``audit`` table
of recd's shared PostgreSQL database (issue 18) and checked exactly as a file is.

Each row holds ``seq``, ``pos`` (where the entry begins: the bytes of the entries before it) and
``line``, the sealed line byte for byte as audit.log holds it (recd.adapters.postgres.audit). The
lines, in seq order, go through the one verifier the files go through
(``auditfile.check_lines``), so the messages, ``--expect`` and the output are the same; a bad
entry is named by its seq and the byte where it begins. Before a line goes on, the reader checks
only that its row is where the chain puts it: seq 1, 2, 3... with no gap, at the byte the lines
before it end (a row missing, added or renumbered is named there).

Invariants:

- One snapshot: everything is read in one REPEATABLE READ, READ ONLY transaction, so a chain that
  daemons append to meanwhile is read as of one instant: the head printed is an entry that was
  committed, never half a batch; ``ls`` reads it twice, both times the same.
- Streaming: a server-side cursor fetches ``PAGE`` rows at a time; memory does not grow with
  the chain.
- psycopg is imported only here, only when ``--url`` is given; without it the command says how
  to install it. The URL's shape is checked first (``recd.core.pgurl``) and a password in it
  refused; no message repeats the URL, they name the database, its servers and the user.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from recd.cli.auditfile import Checked, Sink, check_whole
from recd.core.audit import Anchor, AuditEntry, from_line
from recd.core.pgurl import PostgresURL, parse_postgres_url
from recd.errors import AuditCorrupt, InvalidValue, PermissionDenied, RecdError, Unavailable

if TYPE_CHECKING:
    import psycopg

#: Rows fetched per round trip.
PAGE = 1000
PASSFILE = (
    "put the password in a password file instead: ~/.pgpass, or PGPASSFILE=FILE in recctl's "
    "environment, or passfile=FILE in the URL's query"
)
NO_PSYCOPG = (
    "--url: reading the audit table needs psycopg, which is not installed: "
    "pip install 'recd[postgres]'"
)
_ROWS = "SELECT seq, pos, line FROM audit ORDER BY seq"


def parse_url(text: str) -> PostgresURL:
    """The ``--url`` value's shape checked, a password refused (``UsageError``-coded)."""
    try:
        return parse_postgres_url(text, passfile=PASSFILE)
    except InvalidValue as exc:
        raise InvalidValue(f"--url: {exc}") from None


def _reason(exc: Exception) -> str:
    """psycopg's or the server's message on one line (a connection error spans several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


class TableChain:
    """The chain in the ``audit`` table, read through ``db`` inside its read-only snapshot."""

    def __init__(self, db: psycopg.Connection[tuple[Any, ...]], url: PostgresURL) -> None:
        self._db = db
        self.url = url
        self.name = f"audit table of {url}"
        self._cursors = 0

    def _failed(self, exc: Exception) -> RecdError:
        import psycopg  # noqa: PLC0415 (there: opened imported it)

        if isinstance(exc, psycopg.errors.UndefinedTable):
            return RecdError(
                f"{self.name}: there is no audit table (is this recd's database? recd creates "
                "it when it first starts with [catalogue] url)"
            )
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return PermissionDenied(f"{self.name}: {_reason(exc)} (grant SELECT on it)")
        if isinstance(exc, psycopg.OperationalError):
            return Unavailable(f"{self.name}: cannot read it: {_reason(exc)}")
        return RecdError(f"{self.name}: cannot read it: {_reason(exc)}")

    def _rows(self) -> Iterator[tuple[int, int, bytes]]:
        """(seq, pos, line) of every row in seq order, ``PAGE`` at a time."""
        import psycopg  # noqa: PLC0415

        self._cursors += 1
        try:
            with self._db.cursor(name=f"recd_audit_{self._cursors}") as cursor:
                cursor.itersize = PAGE
                cursor.execute(_ROWS)
                for seq, pos, line in cursor:
                    yield int(seq), int(pos), bytes(line)
        except psycopg.Error as exc:
            raise self._failed(exc) from None

    def _placed(self) -> Iterator[tuple[int, int, bytes]]:
        """The rows, each checked to be where the chain puts it: seq 1, 2, 3... at the byte
        where the lines before it end. What a line holds is the verifier's to check."""
        end = 0
        for number, (seq, pos, line) in enumerate(self._rows(), start=1):
            if seq != number:
                what = f"the row after entry {number - 1}" if number > 1 else "the first row"
                raise AuditCorrupt(
                    f"{self.name}: entry {number} (byte {end}): missing: {what} is seq {seq}"
                )
            if pos != end:
                raise AuditCorrupt(
                    f"{self.name}: entry {seq} (byte {end}): its row says it begins at byte "
                    f"{pos}, but the entries before it end at byte {end}"
                )
            end += len(line)
            yield seq, pos, line

    def checked(self, anchors: Sequence[Anchor] = (), sink: Sink | None = None) -> Checked:
        """The whole chain verified by ``auditfile.check_lines``, as a file's is."""
        return check_whole(self.name, (line for _, _, line in self._placed()), anchors, sink)

    def entries(self, limit: int | None = None) -> Iterator[tuple[int, AuditEntry]]:
        """(seq, entry) for each row, up to seq ``limit``; parsed, not verified."""
        for seq, pos, line in self._placed():
            if limit is not None and seq > limit:
                return
            try:
                yield seq, from_line(line)
            except ValueError as exc:
                raise AuditCorrupt(
                    f"{self.name}: entry {seq} (byte {pos}): {exc} (run `recctl audit verify` "
                    "with the same --url)"
                ) from None


@contextlib.contextmanager
def opened(text: str) -> Iterator[TableChain]:
    """The audit table of the database ``text`` names, read in one REPEATABLE READ, READ ONLY
    transaction until the block ends (then rolled back: it changed nothing).

    Raises ``InvalidValue`` (exit 2) for a URL of the wrong shape or holding a password,
    ``Unavailable`` (exit 69) without psycopg or when the server cannot be reached.
    """
    url = parse_url(text)
    try:
        import psycopg  # noqa: PLC0415 (the [postgres] extra: only for --url)
    except ImportError:
        raise Unavailable(NO_PSYCOPG) from None
    try:
        db = psycopg.connect(url.text)
    except psycopg.Error as exc:
        raise Unavailable(f"--url: cannot connect to {url}: {_reason(exc)}") from None
    try:
        # Before the first query, which begins the transaction with them.
        db.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        db.read_only = True
        yield TableChain(db, url)
    finally:
        db.close()
