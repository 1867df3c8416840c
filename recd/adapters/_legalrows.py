"""Row codecs of the catalogue's holds, requests and request items, shared by the catalogue
adapters (SQLite and PostgreSQL store them alike: times as integer microseconds, documents as
JSON text). A row no codec accepts is a ``BadRow`` of its table (``recd.adapters._rows``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from recd.adapters._rows import decodes, from_us, to_us
from recd.core.holds import Hold, HoldState
from recd.core.requestinfo import RequestInfo
from recd.core.requests import scope_from_json, scope_json
from recd.core.requeststate import ItemOutcome, RequestItem, RequestState
from recd.ports.records import StoredRequest

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


def hold_values(h: Hold) -> tuple[Any, ...]:
    """A hold's values in the order of ``HOLD_COLUMNS``."""
    return (
        h.id,
        h.licence,
        h.case,
        h.reason,
        json.dumps(scope_json(h.scope), sort_keys=True),
        to_us(h.placed_at),
        h.placed_by,
        _us(h.until),
        str(h.state),
        _us(h.released_at),
        h.released_by,
        h.release_reason,
        _us(h.due_from),
    )


REQUEST_COLUMNS = "id, licence, state, document, digest, info, updated"


def request_values(request: StoredRequest) -> tuple[Any, ...]:
    """A request's values in the order of ``REQUEST_COLUMNS``."""
    return (
        request.id,
        request.licence,
        str(request.state),
        json.dumps(request.document, sort_keys=True),
        request.digest,
        json.dumps(request.info.to_json(), sort_keys=True),
        to_us(request.updated),
    )


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
