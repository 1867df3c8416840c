"""The catalogue's scope, hold and request queries and codecs (writer and readers share them).

``scope_where`` turns a ``Scope`` into SQL true exactly where ``Scope.matches`` is (the contract
tests check both on the same recordings); the hold, request and request-item codecs decode a
row or raise ``BadRow`` of their table.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from recd.adapters._legalrows import (
    HOLD_COLUMNS,
    REQUEST_COLUMNS,
    item_from_row,
    request_from_row,
    row_to_hold,
)
from recd.adapters._rows import COLUMNS, row_to_recording, to_us
from recd.core.holds import Hold
from recd.core.model import Recording
from recd.core.requeststate import RequestItem, RequestState
from recd.core.scope import Scope, normalise_party
from recd.ports.records import StoredRequest

# -- scopes, holds and requests ------------------------------------------------------------------


def register_functions(db: sqlite3.Connection) -> None:
    """SQL functions the scope queries use (on every connection, writer and readers)."""
    db.create_function(
        "recd_party", 1, lambda v: None if v is None else normalise_party(v), deterministic=True
    )


def hinted(db: sqlite3.Connection, sql: str, params: tuple[Any, ...], index: str) -> sqlite3.Cursor:
    """Run ``sql`` with its ``{hint}`` as ``INDEXED BY index`` (the planner left alone picks
    a worse index); while a first index's bulk load has dropped ``index``
    (``Indexing.begin_bulk``), without it: a table scan, slower but the same rows, where
    ``INDEXED BY`` would fail the query ("no such index")."""
    try:
        return db.execute(sql.format(hint=f"INDEXED BY {index}"), params)
    except sqlite3.OperationalError as exc:
        if str(exc) != f"no such index: {index}":
            raise
        return db.execute(sql.format(hint=""), params)


def scope_where(scope: Scope, prefix: str = "") -> tuple[str, dict[str, Any]]:
    """A WHERE clause (and its named parameters) true exactly where ``scope.matches`` is.

    Only recordings of the licence are read (``recordings_licence``); the catalogue contract
    tests check the clause against ``Scope.matches`` on the same recordings.
    """
    p = prefix
    args: dict[str, Any] = {f"{p}licence": scope.licence}

    def names(kind: str, values: frozenset[str]) -> str:
        for n, value in enumerate(sorted(values)):
            args[f"{p}{kind}{n}"] = value
        return ", ".join(f":{p}{kind}{n}" for n in range(len(values)))

    clauses = [f"licence = :{p}licence"]
    if scope.recordings:
        clauses.append(f"id IN ({names('r', scope.recordings)})")
    if scope.call_ids:
        clauses.append(f"json_extract(fields, '$.call_id') IN ({names('c', scope.call_ids)})")
    if scope.party is not None:
        args[f"{p}party"] = normalise_party(scope.party)
        clauses.append(
            f"(recd_party(json_extract(fields, '$.caller')) = :{p}party"
            f" OR recd_party(json_extract(fields, '$.callee')) = :{p}party)"
        )
    if scope.start is not None:
        clauses.append(f"started >= :{p}start")
        args[f"{p}start"] = to_us(scope.start)
    if scope.end is not None:
        clauses.append(f"started < :{p}end")
        args[f"{p}end"] = to_us(scope.end)
    return " AND ".join(clauses), args


def select_holds(db: sqlite3.Connection, *, everything: bool = False) -> list[Hold]:
    where = "" if everything else " WHERE state = 'active'"
    cursor = db.execute(f"SELECT {HOLD_COLUMNS} FROM holds{where} ORDER BY n")  # noqa: S608
    return [row_to_hold(r) for r in cursor]


def select_hold(db: sqlite3.Connection, hold_id: str) -> Hold | None:
    row = db.execute(
        f"SELECT {HOLD_COLUMNS} FROM holds WHERE id = ?",  # noqa: S608
        (hold_id,),
    ).fetchone()
    return None if row is None else row_to_hold(row)


def count_matching(db: sqlite3.Connection, scope: Scope) -> int:
    """Present recordings ``scope`` matches."""
    where, args = scope_where(scope)
    row = db.execute(
        f"SELECT COUNT(*) FROM recordings WHERE state = 'present' AND {where}",  # noqa: S608
        args,
    ).fetchone()
    return int(row[0])


def select_matching(db: sqlite3.Connection, scope: Scope, limit: int) -> list[Recording]:
    """Recordings ``scope`` matches, in any state, in catalogue order."""
    where, args = scope_where(scope)
    cursor = db.execute(
        f"SELECT {COLUMNS} FROM recordings WHERE {where} ORDER BY rowid LIMIT :limit",  # noqa: S608
        args | {"limit": limit},
    )
    return [row_to_recording(r) for r in cursor]


def select_requests(db: sqlite3.Connection, state: RequestState | None) -> list[StoredRequest]:
    where, args = ("", ()) if state is None else (" WHERE state = ?", (str(state),))
    cursor = db.execute(
        f"SELECT {REQUEST_COLUMNS} FROM requests{where} ORDER BY updated, id",  # noqa: S608
        args,
    )
    return [request_from_row(r) for r in cursor]


def select_request(db: sqlite3.Connection, request_id: str) -> StoredRequest | None:
    row = db.execute(
        f"SELECT {REQUEST_COLUMNS} FROM requests WHERE id = ?",  # noqa: S608
        (request_id,),
    ).fetchone()
    return None if row is None else request_from_row(row)


def select_items(db: sqlite3.Connection, request_id: str) -> list[RequestItem]:
    cursor = db.execute(
        "SELECT recording_id, outcome, data FROM request_items WHERE request_id = ? ORDER BY rowid",
        (request_id,),
    )
    return [item_from_row(r) for r in cursor]
