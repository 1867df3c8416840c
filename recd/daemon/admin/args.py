"""The arguments of an admin request, checked: each check returns the typed value or raises a
one-line ``UsageError`` naming the argument (``limit: a whole number from 1 to ...``).

Arguments arrive as the JSON object of ``recd.protocol.Request.args``; ``Args`` is that object,
the only place the admin commands see untyped values. A missing optional argument is ``None``
(or the documented default); a present one of the wrong JSON type is refused, never coerced.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias

from recd.core.model import State
from recd.core.times import parse_iso
from recd.errors import UsageError
from recd.ports.reader import ListQuery

#: A request's arguments, as decoded from JSON.
Args: TypeAlias = Mapping[str, Any]

MAX_LIMIT = 1_000_000


def text(args: Args, name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value:
        raise UsageError(f"{name}: a non-empty text value is required")
    return value


def opt_text(args: Args, name: str) -> str | None:
    return None if args.get(name) is None else text(args, name)


def flag(args: Args, name: str) -> bool:
    value = args.get(name, False)
    if not isinstance(value, bool):
        raise UsageError(f"{name}: true or false expected")
    return value


def opt_time(args: Args, name: str) -> datetime | None:
    value = opt_text(args, name)
    if value is None:
        return None
    try:
        return parse_iso(value).astimezone(UTC)
    except ValueError:
        raise UsageError(f"{name}: not an ISO 8601 time with a zone: {value!r}") from None


def recording_state(args: Args) -> State | None:
    """``state``: a recording state, ``present`` by default; ``all`` is ``None``."""
    value = args.get("state", "present")
    if value == "all":
        return None
    try:
        return State(value)
    except ValueError:
        raise UsageError(f"state: one of present, erased, missing, all; not {value!r}") from None


def limit(args: Args) -> int:
    value = args.get("limit", 1000)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_LIMIT:
        raise UsageError(f"limit: a whole number from 1 to {MAX_LIMIT}, not {value!r}")
    return value


def list_query(args: Args) -> ListQuery:
    """The filters of ``ls``."""
    query = ListQuery(
        licence=opt_text(args, "licence"),
        unclassified=flag(args, "unclassified"),
        due_before=opt_time(args, "due_before"),
        state=recording_state(args),
        limit=limit(args),
    )
    if query.unclassified and query.licence is not None:
        raise UsageError("--licence and --unclassified exclude each other")
    return query
