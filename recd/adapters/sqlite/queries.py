"""The catalogue's scope, hold and request queries and codecs (writer and readers share them).

``scope_where`` turns a ``Scope`` into SQL true exactly where ``Scope.matches`` is (the contract
tests check both on the same recordings); the hold, request and request-item codecs decode a
row or raise ``BadRow`` of their table.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from recd.adapters.sqlite.rows import COLUMNS, decodes, from_us, row_to_recording, to_us
from recd.core.holds import Hold, HoldState
from recd.core.model import Recording
from recd.core.requestinfo import RequestInfo
from recd.core.requests import scope_from_json
from recd.core.requeststate import ItemOutcome, RequestItem, RequestState
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


HOLD_COLUMNS = (
    "id, licence, case_ref, reason, scope, placed_at, placed_by, until, state, released_at, "
    "released_by, release_reason, due_from"
)


def _us(value: datetime | None) -> int | None:
    return None if value is None else to_us(value)


def _time(value: int | None) -> datetime | None:
    return None if value is None else from_us(value)


@decodes("holds")
def row_to_hold(row: tuple[Any, ...]) -> Hold:
    (
        hid,
        licence,
        case_ref,
        reason,
        scope,
        placed_at,
        placed_by,
        until,
        state,
        released_at,
        released_by,
        release_reason,
        due_from,
    ) = row
    return Hold(
        id=hid,
        scope=scope_from_json(licence, json.loads(scope), allow_empty=True),
        case=case_ref,
        reason=reason,
        placed_at=from_us(placed_at),
        placed_by=placed_by,
        until=_time(until),
        state=HoldState(state),
        released_at=_time(released_at),
        released_by=released_by,
        release_reason=release_reason,
        due_from=_time(due_from),
    )


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


@decodes("requests")
def request_from_row(row: tuple[Any, ...]) -> StoredRequest:
    rid, licence, state, document, digest, info, updated = row
    return StoredRequest(
        rid,
        licence,
        RequestState(state),
        json.loads(document),
        digest,
        RequestInfo.from_json(json.loads(info)),
        from_us(updated),
    )


REQUEST_COLUMNS = "id, licence, state, document, digest, info, updated"


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


@decodes("request_items")
def item_from_row(row: tuple[Any, ...]) -> RequestItem:
    rid, outcome, data = row
    extra = json.loads(data)
    extra["holds"] = tuple(extra.get("holds", ()))
    if extra.get("time") is not None:
        extra["time"] = from_us(extra["time"])
    return RequestItem(recording_id=rid, outcome=ItemOutcome(outcome), **extra)


def item_data(item: RequestItem) -> str:
    data = {
        "location": item.location,
        "licence": item.licence,
        "size": item.size,
        "sha256": item.sha256,
        "method": item.method,
        "effective": item.effective,
        "ineffective_reason": item.ineffective_reason,
        "time": _us(item.time),
        "audit_seq": item.audit_seq,
        "holds": list(item.holds),
        "note": item.note,
        "s3": None if item.s3 is None else dict(item.s3),
    }
    return json.dumps({k: v for k, v in data.items() if v not in (None, [])}, sort_keys=True)
