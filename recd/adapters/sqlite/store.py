"""What every role of the SQLite catalogue shares: the connection, transactions, hold rules.

``Store`` declares the state the role mixins (``indexing``, ``sweeping``, ``holding``,
``auditmarks``, ``requesting``, ``mirroring``) read; ``SqliteCatalogue`` sets it up. A
``Transaction`` is ``BEGIN IMMEDIATE`` ... ``COMMIT`` and nests as a no-op, so a role's write
and the writes it calls commit together or not at all. ``together`` (``recd.ports.together``) is
a no-op: the audit log is a file, committed on its own.
"""

from __future__ import annotations

import contextlib
import sqlite3
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path

from recd.adapters._rows import to_us
from recd.core.holds import Hold

#: A deadline never below the floor a hold's release set (``not_before``); NULL stays NULL.
FLOORED = (
    "CASE WHEN {0} IS NULL THEN NULL WHEN not_before IS NOT NULL AND not_before > {0} "
    "THEN not_before ELSE {0} END"
)


class Store:
    """The writer connection and the hold rules in force, as the roles see them."""

    path: Path
    _db: sqlite3.Connection
    _active: list[Hold]  # active holds: upsert holds what they match
    _floors: list[Hold]  # released holds with a due_from: upsert floors what they match

    def _tx(self) -> Transaction:
        return Transaction(self._db)

    def together(self) -> AbstractContextManager[None]:
        """Nothing: the audit log is a file beside this catalogue, and each write commits as it
        returns (``recd.ports.together``)."""
        return contextlib.nullcontext()


def us(value: datetime | None) -> int | None:
    return None if value is None else to_us(value)


class Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on error); nests as a no-op."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._outer = False

    def __enter__(self) -> None:
        if not self._db.in_transaction:
            self._db.execute("BEGIN IMMEDIATE")
            self._outer = True

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self._outer:
            return
        if exc_type is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")
