"""Mass-deletion breakers as the audit log records them (SPEC 7 and 8).

``replay_breakers`` reads ``breaker.tripped``, ``breaker.released`` and ``breaker.rearmed`` into
the breakers still standing, starting from ``known`` (what a catalogue already holds; empty for a
full rebuild). An entry a breaker already reflects changes nothing, so replaying a log in one go
or in slices, or twice, gives the same. A released breaker is gone once a retention erase of its
licence follows the release (that sweep re-armed it, as ``breaker.rearmed`` says in newer logs):
re-armed, it trips again if a mass of recordings is still due. A release of a breaker the log
never tripped is reported in ``problems``.

Pure: given the entries; no I/O, no clock reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from recd.core.audit import AuditEntry
from recd.core.text import UNCLASSIFIED
from recd.core.times import parse_time

TRIPPED = "breaker.tripped"
RELEASED = "breaker.released"
REARMED = "breaker.rearmed"


@dataclass(frozen=True, slots=True)
class BreakerRecord:
    """A breaker as the catalogue stores it (``recd.ports.Breaker``)."""

    licence: str
    tripped_at: datetime
    due: int
    total: int
    released_at: datetime | None = None
    released_by: str | None = None
    tripped_seq: int = 0  # the entries that tripped, released, re-armed it (0: none/unknown)
    released_seq: int = 0
    rearmed_seq: int = 0  # re-armed: no longer standing (kept so the replay stays idempotent)


@dataclass(frozen=True, slots=True)
class ReplayedBreakers:
    breakers: Mapping[str, BreakerRecord]  # re-armed ones included
    problems: tuple[str, ...] = ()

    @property
    def standing(self) -> dict[str, BreakerRecord]:
        """The breakers a catalogue keeps: tripped, or released and not yet re-armed."""
        return {k: b for k, b in self.breakers.items() if not b.rearmed_seq}

    @property
    def tripped(self) -> int:
        return sum(1 for b in self.standing.values() if b.released_at is None)


def replay_breakers(
    entries: Iterable[AuditEntry], known: Mapping[str, BreakerRecord]
) -> ReplayedBreakers:
    """The breakers ``known`` becomes with ``entries`` (in log order) applied: tripped ones
    stop their licence's erasure; released ones let the next sweep through, until it re-arms
    them (``breaker.rearmed``, or in an older log a retention erase of the licence)."""
    breakers = dict(known)
    problems: list[str] = []
    for entry in entries:
        breaker_entry(breakers, entry, problems)
    return ReplayedBreakers(breakers, tuple(problems))


def breaker_entry(
    breakers: dict[str, BreakerRecord], entry: AuditEntry, problems: list[str]
) -> None:
    if entry.action == "erase.done" and entry.details.get("reason") == "retention":
        licence = entry.details.get("licence")
        _rearm(breakers, licence if isinstance(licence, str) else UNCLASSIFIED, entry)
    elif entry.action in (TRIPPED, RELEASED, REARMED):
        seen = breakers.get(entry.subject)
        if seen is None or entry.seq > max(seen.tripped_seq, seen.released_seq, seen.rearmed_seq):
            _breaker(breakers, entry, problems)


def _breaker(breakers: dict[str, BreakerRecord], entry: AuditEntry, problems: list[str]) -> None:
    label, d = entry.subject, entry.details
    if entry.action == TRIPPED:
        breakers[label] = BreakerRecord(
            label,
            parse_time(entry.time),
            _int(d.get("due")),
            _int(d.get("recordings")),
            tripped_seq=entry.seq,
        )
    elif entry.action == REARMED:
        _rearm(breakers, label, entry)
    elif (tripped := breakers.get(label)) is None or tripped.rearmed_seq:
        problems.append(
            f"seq {entry.seq}: releases the breaker of {label}, never tripped in this log; ignored"
        )
    elif tripped.released_at is None:
        at = parse_time(entry.time)
        breakers[label] = replace(
            tripped, released_at=at, released_by=entry.actor, released_seq=entry.seq
        )


def _rearm(breakers: dict[str, BreakerRecord], label: str, entry: AuditEntry) -> None:
    """The sweep a release let through ran (it erased, or said so): the breaker is re-armed."""
    breaker = breakers.get(label)
    if breaker is None or breaker.released_at is None or breaker.rearmed_seq:
        return
    if entry.seq > breaker.released_seq:
        breakers[label] = replace(breaker, rearmed_seq=entry.seq)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
