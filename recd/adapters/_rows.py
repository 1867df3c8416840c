"""Row codecs of the catalogue's recordings, intents, mirror and breaker tables, and times.

Pure, and shared by both catalogue adapters (SQLite and PostgreSQL store the same values), their
writers and their readers: the codecs, and the values an upsert stores for a recording a scan
saw (``scanned_values``, ``found_values``; each adapter gives how it stores a path). A row no
codec accepts is a
``BadRow`` of its table (``decodes``), which the adapters turn into ``CatalogueCorrupt``: a
codec never returns a half-decoded value. Times are integer microseconds since the Unix epoch.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from recd.core.fastclass import Found
from recd.core.holds import Hold, holding
from recd.core.model import Classification, Provenance, Recording, State
from recd.errors import RecdError
from recd.ports.records import Breaker, Intent, Known, Mirrored
from recd.ports.source import DirStamp

P = ParamSpec("P")
R = TypeVar("R")


class BadRow(Exception):
    """A row of ``table`` that no codec accepts: the catalogue is corrupt (the adapters turn
    this into ``CatalogueCorrupt`` naming the file)."""

    def __init__(self, table: str, problem: str) -> None:
        self.table = table
        self.problem = problem
        super().__init__(f"table {table}: {problem}")


#: What a row codec raises on a value it cannot take (a flipped byte in JSON, a state, a time).
_UNDECODABLE = (ValueError, TypeError, KeyError, OverflowError, RecdError)


def decodes(table: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A row codec of ``table``: what it cannot decode is a ``BadRow`` of that table."""

    def wrap(codec: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(codec)
        def decode(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return codec(*args, **kwargs)
            except _UNDECODABLE as exc:
                raise BadRow(table, f"a row does not decode ({_one_line(exc)})") from exc

        return decode

    return wrap


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@decodes("meta")
def mark_from_json(value: str) -> tuple[int | None, str | None]:
    """The ``audit_mark`` meta row: (seq, hash), either None when unknown."""
    data = json.loads(value)
    if not isinstance(data, dict):
        raise TypeError(f"audit_mark {value!r}")
    seq, digest = data.get("seq"), data.get("hash")
    if not (seq is None or type(seq) is int) or not (digest is None or isinstance(digest, str)):
        raise ValueError(f"audit_mark {value!r}")
    return seq, digest


COLUMNS = (
    "id, source, location, dev, ino, size, mtime_ns, licence, started, deadline, fields, state, "
    "first_seen, skip_reason, held, not_before, ctime_ns, btime_ns"
)


def path_param(path: str) -> str | bytes:
    """A location or directory as the catalogue stores it: text when it is UTF-8, else its
    bytes (a BLOB: a file name that is not UTF-8, surrogate-escaped as ``os.fsdecode`` gives).

    One representation per name, so ``=`` finds it; SQLite sorts every BLOB after every TEXT,
    so ordering and ``>`` paging stay one total order.
    """
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return path.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate no file name decodes to
            return path.encode("utf-8", "surrogatepass")
    return path


def path_value(value: str | bytes) -> str:
    """A stored location or directory back as the service's text (``path_param``'s inverse)."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(when: datetime) -> int:
    """Exact integer microseconds since the epoch (no float rounding)."""
    delta = when - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, UTC).replace(microsecond=value % 1_000_000)


#: ``json.dumps(..., separators=(",", ":"))`` without building an encoder per row.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":")).encode
#: What that encoder writes for a string (ASCII, escaped).
_JSON_STR = json.encoder.encode_basestring_ascii
#: A provenance as JSON, per distinct provenance (a source's rows share a handful).
_PROVENANCE_JSON: dict[tuple[tuple[str, Provenance], ...], str] = {}


def fields_json(c: Classification) -> str:
    """The classified fields beside licence and start time, as compact JSON: ``call_id``,
    ``extension``, ``caller``, ``callee``, ``duration``, ``format`` (those not None) and
    ``provenance``, in that order; exactly what ``json.dumps`` of them gives (a test checks),
    in a third of its time: this runs once per file indexed."""
    return encode_fields(
        c.call_id,
        c.extension,
        c.caller,
        c.callee,
        c.duration,
        c.format,
        tuple(c.provenance.items()),
    )


def encode_fields(
    call_id: str | None,
    extension: str | None,
    caller: str | None,
    callee: str | None,
    duration: float | None,
    fmt: str | None,
    provenance_items: tuple[tuple[str, Provenance], ...],
) -> str:
    """``fields_json`` of these values (``provenance_items``: the provenance's items)."""
    parts = [
        f'"{name}":{_JSON_STR(value)}'
        for name, value in (
            ("call_id", call_id),
            ("extension", extension),
            ("caller", caller),
            ("callee", callee),
        )
        if value is not None
    ]
    if duration is not None:
        parts.append(f'"duration":{_COMPACT_JSON(duration)}')
    if fmt is not None:
        parts.append(f'"format":{_JSON_STR(fmt)}')
    provenance = _PROVENANCE_JSON.get(provenance_items)
    if provenance is None:
        provenance = _COMPACT_JSON({k: str(v) for k, v in provenance_items})
        if len(_PROVENANCE_JSON) < 1024:
            _PROVENANCE_JSON[provenance_items] = provenance
    parts.append(f'"provenance":{provenance}')
    return "{" + ",".join(parts) + "}"


@decodes("recordings")
def row_to_recording(row: tuple[Any, ...]) -> Recording:
    (
        rid,
        source,
        location,
        dev,
        ino,
        size,
        mtime_ns,
        licence,
        started,
        deadline,
        fields,
        state,
        first_seen,
        skip_reason,
        held,
        not_before,
        ctime_ns,
        btime_ns,
    ) = row
    extra = json.loads(fields)
    provenance = {k: Provenance(v) for k, v in extra.pop("provenance", {}).items()}
    classification = Classification(
        licence=licence, started=from_us(started), provenance=provenance, **extra
    )
    return Recording(
        id=rid,
        source=source,
        relpath=path_value(location),
        dev=dev,
        ino=ino,
        size=size,
        mtime_ns=mtime_ns,
        classification=classification,
        deadline=None if deadline is None else from_us(deadline),
        state=State(state),
        first_seen=from_us(first_seen),
        skip_reason=skip_reason,
        held=bool(held),
        not_before=None if not_before is None else from_us(not_before),
        ctime_ns=ctime_ns,
        btime_ns=btime_ns,
    )


@decodes("recordings")
def row_to_known(row: tuple[Any, ...]) -> tuple[str, Known]:
    """``(id, dev, ino, size, mtime_ns, state, ctime_ns, btime_ns)`` as ``in_dir`` reads it."""
    rid, dev, ino, size, mtime_ns, state, ctime_ns, btime_ns = row
    return rid, Known(dev, ino, size, mtime_ns, State(state), ctime_ns, btime_ns)


@decodes("dir_stamps")
def row_to_stamp(row: tuple[Any, ...]) -> DirStamp:
    """``(dev, ino, mtime_ns, ctime_ns, subdirs, files, bytes)`` as ``dir_stamp`` reads it."""
    dev, ino, mtime_ns, ctime_ns, subdirs, files, size = row
    names = path_value(subdirs)
    return DirStamp(
        dev, ino, mtime_ns, ctime_ns, tuple(names.split("/")) if names else (), files, size
    )


@decodes("intents")
def row_to_intent(row: tuple[Any, ...]) -> Intent:
    rid, recording_id, audit_offset, temp_name, plan, created = row
    return Intent(rid, recording_id, audit_offset, temp_name, json.loads(plan), from_us(created))


@decodes("s3_legal_holds")
def row_to_mirrored(row: tuple[Any, ...]) -> Mirrored:
    rid, key, ino, versions = row
    return Mirrored(rid, key, ino, tuple((v, bool(o)) for v, o in json.loads(versions)))


BREAKER_COLUMNS = "licence, tripped_at, due, total, released_at, released_by"


@decodes("breakers")
def row_to_breaker(row: tuple[Any, ...]) -> Breaker:
    licence, tripped_at, due, total, released_at, released_by = row
    released = None if released_at is None else from_us(released_at)
    return Breaker(licence, from_us(tripped_at), due, total, released, released_by)


#: A path as an adapter stores it (``path_param`` for SQLite).
PathCodec = Callable[[str], Any]


def recording_values(
    r: Recording, now_us: int, held: bool, floor: datetime | None, path: PathCodec
) -> tuple[Any, ...]:
    """The values of one recording a scan saw, in the upsert's column order: ``id, source,
    location, dir, dev, ino, size, mtime_ns, licence, started, deadline, fields, first_seen,
    indexed_at, held, ctime_ns, btime_ns, not_before`` (the deadline floored at ``floor``)."""
    return (
        r.id,
        r.source,
        path(r.relpath),
        path(r.relpath.rpartition("/")[0]),
        r.dev,
        r.ino,
        r.size,
        r.mtime_ns,
        r.classification.licence,
        to_us(r.classification.started),
        None if r.deadline is None else to_us(max(r.deadline, floor or r.deadline)),
        fields_json(r.classification),
        to_us(r.first_seen),
        now_us,
        1 if held else 0,
        r.ctime_ns,
        r.btime_ns,
        None if floor is None else to_us(floor),
    )


def found_values(found: Found, now_us: int, path: PathCodec) -> tuple[Any, ...]:
    """``recording_values`` of ``found.recording(now)`` (not held, no floor), from its plain
    values: a first index builds no ``Recording`` or ``datetime`` per file."""
    rid, facts, c = found
    return (
        rid,
        facts.source,
        path(facts.relpath),
        path(facts.relpath.rpartition("/")[0]),
        facts.dev,
        facts.ino,
        facts.size,
        facts.mtime_ns,
        c.licence,
        c.started_us,
        c.deadline_us,
        encode_fields(c.call_id, c.extension, c.caller, c.callee, None, c.format, c.provenance),
        now_us,
        now_us,
        0,
        facts.ctime_ns,
        facts.btime_ns,
        None,
    )


def scanned_values(
    rows: Sequence[Recording],
    now: datetime,
    active: Sequence[Hold],
    released: Sequence[Hold],
    path: PathCodec,
) -> list[tuple[Any, ...]]:
    """``recording_values`` of recordings a scan saw at ``now``: held where an ``active`` hold
    matches, the deadline floored at the latest ``due_from`` still ahead of a ``released``
    hold that matches (a hold, and a release's grace, are rules: they cover what comes later)."""
    now_us = to_us(now)
    floors = [(h.scope, h.due_from) for h in released if h.due_from and h.due_from > now]
    return [
        recording_values(r, now_us, bool(active and holding(active, r)), floor, path)
        for r in rows
        for floor in [max((due for scope, due in floors if scope.matches(r)), default=None)]
    ]


def plain(active: Sequence[Hold], released: Sequence[Hold], now: datetime) -> bool:
    """Whether rows indexed at ``now`` need no hold rule: no hold is active, and no released
    one's grace runs past ``now`` (``insert_new`` may then store ``found_values`` as they are)."""
    return not active and not any(h.due_from and h.due_from > now for h in released)
