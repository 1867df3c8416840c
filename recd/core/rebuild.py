"""The legal holds as the audit log records them (SPEC section 8: the log is the record).

``replay_holds`` reads ``hold.placed`` and ``hold.released`` entries, in log order, into the
holds they describe: the same ids, scopes, times and actors, each active, released or expired.
A catalogue that was lost is given these holds back before anything is erased. A catalogue that
is behind the log (restored from a backup, or a crash before its audit mark moved) is given the
entries after its mark, replayed over the holds it has (``start``): a release of a hold placed
before the mark applies to it. Replay is idempotent: an entry the catalogue already reflects
gives the hold it already has.

When the log is unclear, the replay keeps longer, never shorter: a release whose entry has no
``due_from`` (written by an older recd) is taken as due ``grace`` after it; a scope that cannot be
read holds the whole licence; a release of a hold the log never placed is ignored. Each such
case is reported in ``Replayed.problems``. Every other action is ignored.

Pure: given the entries and the grace; no I/O, no clock reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from recd.core.audit import AuditEntry
from recd.core.holds import Hold, HoldState
from recd.core.requests import scope_from_json
from recd.core.scope import Scope
from recd.core.times import parse_time
from recd.errors import UsageError

PLACED = "hold.placed"
RELEASED = "hold.released"


@dataclass(frozen=True, slots=True)
class Replayed:
    """The holds the entries placed or released (as they stand after them), oldest placing
    first, and how far the log was read."""

    holds: tuple[Hold, ...]
    last_seq: int  # 0 for an empty log
    last_hash: str | None
    problems: tuple[str, ...] = ()

    @property
    def active(self) -> int:
        return sum(1 for h in self.holds if h.active)

    @property
    def released(self) -> int:
        return len(self.holds) - self.active


def replay_holds(
    entries: Iterable[AuditEntry], grace: timedelta, start: Iterable[Hold] = ()
) -> Replayed:
    """The holds ``entries`` (in log order: a whole log, or the entries after a catalogue's
    audit mark) place and release, over the holds ``start`` (the catalogue's, for the latter).
    Only the holds the entries touch are returned, in their state after the last entry."""
    holds: dict[str, Hold] = {h.id: h for h in start}
    touched: dict[str, None] = {}  # ordered: the order of the first entry touching each
    problems: list[str] = []
    last_seq, last_hash = 0, None
    for entry in entries:
        last_seq, last_hash = entry.seq, entry.hash
        if entry.action == PLACED:
            hold = _placed(entry, problems)
            if hold is not None:
                holds[hold.id] = hold
                touched[hold.id] = None
        elif entry.action == RELEASED:
            placed = holds.get(entry.subject)
            if placed is None:
                problems.append(f"seq {entry.seq}: releases hold {entry.subject}, never placed")
                continue
            holds[placed.id] = _released(placed, entry, grace, problems)
            touched[placed.id] = None
    changed = sorted((holds[i] for i in touched), key=lambda h: (h.placed_at, h.id))
    return Replayed(tuple(changed), last_seq, last_hash, tuple(problems))


def _placed(entry: AuditEntry, problems: list[str]) -> Hold | None:
    d = entry.details
    licence = d.get("licence")
    if not isinstance(licence, str) or not licence or not entry.subject:
        problems.append(f"seq {entry.seq}: hold.placed names no licence or hold id; ignored")
        return None
    try:
        raw = d.get("scope")
        scope = scope_from_json(licence, raw if isinstance(raw, Mapping) else {}, allow_empty=True)
    except (ValueError, UsageError) as exc:  # RequestInvalid included: keep more, never less
        problems.append(f"seq {entry.seq}: hold {entry.subject}'s scope ({exc}); held all of it")
        scope = Scope(licence)
    return Hold(
        id=entry.subject,
        scope=scope,
        case=_text(d.get("case")),
        reason=_text(d.get("reason")),
        placed_at=parse_time(entry.time),
        placed_by=entry.actor,
        until=_time(d.get("until"), entry, "until", problems),
    )


def _released(hold: Hold, entry: AuditEntry, grace: timedelta, problems: list[str]) -> Hold:
    d = entry.details
    at = parse_time(entry.time)
    due_from = _time(d.get("due_from"), entry, "due_from", problems)
    if due_from is None:  # an older recd's entry: its grace then is unknown, take today's
        due_from = at + grace
    return replace(
        hold,
        state=HoldState.EXPIRED if d.get("expired") is True else HoldState.RELEASED,
        released_at=at,
        released_by=entry.actor,
        release_reason=_text(d.get("reason")),
        due_from=due_from,
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _time(value: object, entry: AuditEntry, key: str, problems: list[str]) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(str(value))
    except ValueError:
        problems.append(f"seq {entry.seq}: {entry.action} {entry.subject}: {key} is not a time")
        return None
