"""A corrupt catalogue told apart from one that cannot be used now, and moved aside.

Corrupt (``CatalogueCorrupt``): SQLite finds the file is not a database (``SQLITE_NOTADB``: a
random header, garbage) or malformed (``SQLITE_CORRUPT``: a bad page, an unreadable schema, a
file cut short); ``PRAGMA quick_check`` fails; the schema version makes no sense (negative,
absurdly large, tables without a version, or a version without its tables); a row does not
decode (text that is not UTF-8, JSON that does not parse, a value no codec takes).

Not corrupt, reported as before and never moved: a file that cannot be opened or written
(permissions, a read-only file, a full disk, I/O errors), a database another process has
locked, a schema newer than this recd (``SqliteCatalogue`` refuses it: upgrade recd).

``guarded`` puts the translation around every public method of a catalogue class, so a flipped
byte met while recd runs is one ``CatalogueCorrupt`` naming the file and the table, never a
traceback. ``move_aside`` renames the file (and its journals) out of the way, never over
anything; the caller starts a new catalogue, which is rebuilt from the sources and the log.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from recd.adapters._rows import BadRow
from recd.adapters._sql import role_methods
from recd.adapters.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from recd.durable import fsync_dir
from recd.errors import CatalogueCorrupt, StateError, os_reason

C = TypeVar("C", bound=type)
P = ParamSpec("P")
R = TypeVar("R")


class _Catalogue(Protocol):
    """What ``_guard`` reads of the catalogue whose method failed (and ``_db``, when it has one)."""

    @property
    def path(self) -> Path: ...


S = TypeVar("S", bound=_Catalogue)

#: What SQLite and the row codecs raise; ``corruption`` tells which of it means corrupt.
FAILURES = (sqlite3.DatabaseError, BadRow, UnicodeDecodeError)
#: SQLite's primary result codes that mean the file itself is damaged.
_CORRUPT_CODES = {11: "malformed", 26: "not a database"}  # SQLITE_CORRUPT, SQLITE_NOTADB
#: A schema version no recd will reach: a header field overwritten, not a newer recd.
ABSURD_VERSION = 1000
_UNDECODED = re.compile(r"Could not decode to UTF-8 column '([^']*)'")
#: The files SQLite keeps beside a database, moved before it (see ``move_aside``).
JOURNALS = ("-journal", "-wal", "-shm")
#: How many names ``move_aside`` tries (``-2`` ... ``-9999`` after the first).
ASIDE_NAMES = 9_999


def corruption(path: Path, exc: BaseException, db: sqlite3.Connection | None) -> str | None:
    """What is wrong with the catalogue if ``exc`` shows it is corrupt; None for any other
    failure (locked, unreadable, read-only, full disk, I/O error), which is not."""
    if isinstance(exc, BadRow):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):  # SQLite's own message quotes the damaged schema
        return "its schema is not UTF-8 (malformed)"
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    undecoded = _UNDECODED.match(str(exc))
    if undecoded is not None:
        column = undecoded[1]
        tables = _tables_with(db, column)
        where = f"table {' or '.join(tables)}, " if tables else ""
        return f"{where}column {column}: text that is not UTF-8"
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _CORRUPT_CODES:
        return str(exc)
    return None


def _tables_with(db: sqlite3.Connection | None, column: str) -> list[str]:
    """The tables that have ``column`` (the decode error names only the column)."""
    if db is None:
        return []
    try:
        rows = db.execute(
            "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c "
            "WHERE m.type = 'table' AND c.name = ? ORDER BY m.name",
            (column,),
        ).fetchall()
    except sqlite3.DatabaseError:
        return []
    return [str(r[0]) for r in rows]


def check(db: sqlite3.Connection, path: Path, *, quick_check: bool = True) -> None:
    """Raise ``CatalogueCorrupt`` for a catalogue whose schema makes no sense or that fails
    ``PRAGMA quick_check``; a newer schema passes (the migration step refuses it)."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version < 0 or version >= ABSURD_VERSION:
        raise CatalogueCorrupt(str(path), f"schema version {version} makes no sense")
    if quick_check:
        rows = [str(r[0]) for r in db.execute("PRAGMA quick_check").fetchall()]
        if rows != ["ok"]:  # e.g. "*** in database main ***\nPage 2: free space corruption"
            found = [line for r in rows for line in r.splitlines() if not line.startswith("***")]
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            first = found[0] if found else "failed"
            raise CatalogueCorrupt(str(path), f"PRAGMA quick_check: {first}{more}")
    if version > SCHEMA_VERSION:
        return
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if version == 0:
        if tables:
            raise CatalogueCorrupt(
                str(path), f"tables ({', '.join(sorted(tables))}) but no schema version"
            )
        return
    missing = sorted(expected_tables(version) - tables)
    if missing:
        raise CatalogueCorrupt(
            str(path), f"schema version {version} without table {', '.join(missing)}"
        )


@functools.cache
def expected_tables(version: int) -> frozenset[str]:
    """The tables the migrations up to ``version`` create."""
    names: set[str] = set()
    for step in range(1, version + 1):
        names.update(re.findall(r"CREATE TABLE (\w+)", MIGRATIONS[step]))
    return frozenset(names)


def guarded(cls: C) -> C:
    """``cls`` (a catalogue with ``path`` and ``_db``) with every public method and
    ``__init__`` raising ``CatalogueCorrupt`` where SQLite or a row codec finds corruption."""
    for name, fn in list(role_methods(cls, also="__init__")):
        setattr(cls, name, _guard(fn))
    return cls


def _guard(fn: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    @functools.wraps(fn)
    def call(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(self, *args, **kwargs)
        except FAILURES as exc:
            problem = corruption(self.path, exc, getattr(self, "_db", None))
            if problem is None:
                raise
            raise CatalogueCorrupt(str(self.path), problem) from exc

    return call


def aside_name(path: Path, now: datetime, n: int = 1) -> Path:
    """``catalog.db.corrupt-20261206T071500Z`` (UTC), ``-2``, ``-3``... after it."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = "" if n == 1 else f"-{n}"
    return path.with_name(f"{path.name}.corrupt-{stamp}{suffix}")


def move_aside(path: Path, now: datetime) -> Path:
    """Rename the catalogue ``path`` and the journals beside it to the first free
    ``aside_name`` (one whose journal names are free too); fsync the directory; returns it.

    Never over anything: each name is taken with ``link`` (which fails on any existing entry,
    a symlink planted there included, and follows none) and the old name removed after. The
    catalogue's own name goes last: a write-ahead log or journal left beside a new, empty
    catalogue would be replayed into it. (SQLite itself drops, or checkpoints, a journal it
    cannot use when the damaged file's connection closes: what is left goes along.) A crash in
    between leaves the catalogue where it was, found corrupt again at the next start (or,
    without its log, behind the audit log).
    """
    try:
        return _move_aside(path, now)
    except OSError as exc:
        raise StateError(
            f"{exc.filename or path}: cannot move the corrupt catalogue aside: {os_reason(exc)}"
        ) from exc


def _move_aside(path: Path, now: datetime) -> Path:
    directory = path.parent
    for n in range(1, ASIDE_NAMES + 1):
        aside = aside_name(path, now, n)
        if any(os.path.lexists(f"{aside}{j}") for j in ("", *JOURNALS)):
            continue
        try:
            linked = _link(path, aside)
        except FileExistsError:  # pragma: no cover (race: taken since the lexists above)
            continue
        for journal in JOURNALS:
            if os.path.lexists(f"{path}{journal}") and _link(
                Path(f"{path}{journal}"), Path(f"{aside}{journal}")
            ):
                os.unlink(f"{path}{journal}")
        if linked:  # pragma: no branch (not linked: a filesystem without hard links)
            os.unlink(path)
        fsync_dir(directory)
        return aside
    raise StateError(f"{path}: cannot move the corrupt catalogue aside: every name is taken")


def _link(source: Path, target: Path) -> bool:
    """Give ``source``'s file the name ``target`` too (True), or, on a filesystem without hard
    links, rename it there (False); FileExistsError when ``target`` exists."""
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP) or os.path.lexists(target):
            raise
        os.rename(source, target)  # pragma: no cover (a filesystem without hard links)
        return False  # pragma: no cover
    return True
