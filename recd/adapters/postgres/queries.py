"""The PostgreSQL catalogue's scope, hold and request queries (the writer and readers share).

``scope_where`` turns a ``Scope`` into SQL true exactly where ``Scope.matches`` is (the
contract tests check both on the same recordings), on the ``call_id``, ``caller`` and
``callee`` columns that ``scope_keys`` fills: each a JSON string, the parties normalised.
"""

from __future__ import annotations

import json
from typing import Any

from recd.adapters._legalrows import (
    HOLD_COLUMNS,
    REQUEST_COLUMNS,
    item_from_row,
    request_from_row,
    row_to_hold,
)
from recd.adapters._rows import COLUMNS, to_us
from recd.adapters.postgres.store import Connection, recording
from recd.core.holds import Hold
from recd.core.model import Recording
from recd.core.requeststate import RequestItem, RequestState
from recd.core.scope import Scope, normalise_party
from recd.ports.records import StoredRequest


def _key(value: str | None) -> str | None:
    """A field as its column holds it: a JSON string (ASCII), so any name compares exactly."""
    return None if value is None else json.dumps(value)


def scope_keys(
    call_id: str | None, caller: str | None, callee: str | None
) -> tuple[str | None, str | None, str | None]:
    """The ``call_id``, ``caller`` and ``callee`` columns of a recording with these fields."""
    parties = (None if p is None else normalise_party(p) for p in (caller, callee))
    return (_key(call_id), *map(_key, parties))  # type: ignore[return-value]


def scope_where(scope: Scope, prefix: str = "") -> tuple[str, dict[str, Any]]:
    """A WHERE clause (and its named parameters) true exactly where ``scope.matches`` is;
    only recordings of the licence are read (``recordings_licence``)."""
    p = prefix
    args: dict[str, Any] = {f"{p}licence": scope.licence}
    clauses = [f"licence = %({p}licence)s"]
    if scope.recordings:
        args[f"{p}ids"] = sorted(scope.recordings)
        clauses.append(f"id = ANY(%({p}ids)s)")
    if scope.call_ids:
        args[f"{p}calls"] = sorted(json.dumps(c) for c in scope.call_ids)
        clauses.append(f"call_id = ANY(%({p}calls)s)")
    if scope.party is not None:
        args[f"{p}party"] = _key(normalise_party(scope.party))
        clauses.append(f"(caller = %({p}party)s OR callee = %({p}party)s)")
    if scope.start is not None:
        clauses.append(f"started >= %({p}start)s")
        args[f"{p}start"] = to_us(scope.start)
    if scope.end is not None:
        clauses.append(f"started < %({p}end)s")
        args[f"{p}end"] = to_us(scope.end)
    return " AND ".join(clauses), args


def select_holds(db: Connection, *, everything: bool = False) -> list[Hold]:
    where = "" if everything else " WHERE state = 'active'"
    cursor = db.execute(f"SELECT {HOLD_COLUMNS} FROM holds{where} ORDER BY n")  # noqa: S608
    return [row_to_hold(r) for r in cursor]


def select_hold(db: Connection, hold_id: str) -> Hold | None:
    row = db.execute(
        f"SELECT {HOLD_COLUMNS} FROM holds WHERE id = %s",  # noqa: S608
        (hold_id,),
    ).fetchone()
    return None if row is None else row_to_hold(row)


def count_matching(db: Connection, scope: Scope) -> int:
    """Present recordings ``scope`` matches."""
    where, args = scope_where(scope)
    row = db.execute(
        f"SELECT COUNT(*) FROM recordings WHERE state = 'present' AND {where}",  # noqa: S608
        args,
    ).fetchone()
    return 0 if row is None else int(row[0])


def select_matching(db: Connection, scope: Scope, limit: int) -> list[Recording]:
    """Recordings ``scope`` matches, in any state, in catalogue order."""
    where, args = scope_where(scope)
    cursor = db.execute(
        f"SELECT {COLUMNS} FROM recordings WHERE {where} ORDER BY n LIMIT %(limit)s",  # noqa: S608
        args | {"limit": limit},
    )
    return [recording(r) for r in cursor]


def select_requests(db: Connection, state: RequestState | None) -> list[StoredRequest]:
    where, args = ("", ()) if state is None else (" WHERE state = %s", (str(state),))
    cursor = db.execute(
        f"SELECT {REQUEST_COLUMNS} FROM requests{where} ORDER BY updated, id",  # noqa: S608
        args,
    )
    return [request_from_row(r) for r in cursor]


def select_request(db: Connection, request_id: str) -> StoredRequest | None:
    row = db.execute(
        f"SELECT {REQUEST_COLUMNS} FROM requests WHERE id = %s",  # noqa: S608
        (request_id,),
    ).fetchone()
    return None if row is None else request_from_row(row)


def select_items(db: Connection, request_id: str) -> list[RequestItem]:
    cursor = db.execute(
        "SELECT recording_id, outcome, data FROM request_items WHERE request_id = %s ORDER BY n",
        (request_id,),
    )
    return [item_from_row(r) for r in cursor]
