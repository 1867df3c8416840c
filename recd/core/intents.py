"""``erase.intent`` entries in both of their shapes (SPEC sections 7 and 8).

An erase is announced in the audit log, written and flushed, before its irreversible step.
Older recd wrote one entry per recording: subject the recording id, details the plan's with
``intent`` (the id its ``erase.done``/``erase.failed`` entry carries too). recd now writes one
entry per batch: subject and ``batch`` the batch's id, the plan details every recording of the
batch shares (``reason``, ``method``...) and ``recordings``: for each, ``id`` (the recording),
``intent``, ``location`` (with ``location_bytes`` for a path that is not UTF-8), ``deadline``
when it has one, and its other details (``size``, an S3 key's ``versions``...). Each recording
still gets its own outcome entry. ``announced`` reads either shape, so that recovery,
checks and ``recctl audit ls`` take old logs as they are.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from recd.core.audit import AuditEntry

INTENT = "erase.intent"

#: The details every recording of a batch intent states itself, even when they are all equal.
PER_RECORDING = ("location", "location_bytes", "deadline")
#: The keys a batch intent's details give the batch itself (never a plan's detail).
BATCH_KEYS = ("batch", "recordings")


@dataclass(frozen=True, slots=True)
class Announced:
    """One recording an ``erase.intent`` entry announces."""

    intent: str  # the id its outcome entry carries
    recording: str  # the recording's id
    details: Mapping[str, Any]  # what the entry says of it (a batch's shared details merged)


def batch_details(
    batch: str, plans: Sequence[tuple[str, str, Mapping[str, Any]]]
) -> dict[str, Any]:
    """The details of the ``erase.intent`` of batch ``batch``, given each erase's (recording
    id, intent id, plan details). Nothing of a plan is lost: a detail every plan has with one
    value (``reason``, ``method``, ``effective``, mostly ``licence``) is said once for the
    batch, the others (and ``PER_RECORDING``) in each recording's item, after ``id`` and
    ``intent``."""
    first = plans[0][2] if plans else {}
    shared = {
        k: v
        for k, v in first.items()
        if k not in PER_RECORDING
        and k not in BATCH_KEYS
        and all(k in d and d[k] == v for _, _, d in plans)
    }
    recordings = [
        {k: v for k, v in d.items() if k not in shared} | {"id": rec, "intent": intent}
        for rec, intent, d in plans
    ]
    return {"batch": batch, **shared, "recordings": recordings}


def announced(entry: AuditEntry) -> list[Announced]:
    """The recordings ``entry`` announces: none unless it is an ``erase.intent``; one for the
    per-recording shape; each of ``recordings`` for a batch."""
    if entry.action != INTENT:
        return []
    d = entry.details
    recordings = d.get("recordings")
    if isinstance(recordings, list):
        shared = {k: v for k, v in d.items() if k not in BATCH_KEYS}
        out = []
        for item in recordings:
            if not isinstance(item, dict):
                continue
            intent, rec = item.get("intent"), item.get("id")
            if isinstance(intent, str) and isinstance(rec, str):
                out.append(Announced(intent, rec, shared | item))
        return out
    intent = d.get("intent")
    return [Announced(intent, entry.subject, d)] if isinstance(intent, str) else []


def batch_summary(details: Mapping[str, Any]) -> dict[str, Any] | None:
    """A batch intent's details in brief for one line: how many recordings and the directory
    they share (``under``) instead of the list; None for any other details."""
    recordings = details.get("recordings")
    if not isinstance(recordings, list):
        return None
    places = [r["location"] for r in recordings if isinstance(r, dict) and "location" in r]
    brief = {k: v for k, v in details.items() if k != "recordings"}
    brief["recordings"] = len(recordings)
    if places and all(isinstance(p, str) for p in places):
        brief["under"] = _directory(places)
    return brief


def _directory(places: list[str]) -> str:
    """The directory every one of ``places`` is in, with its ``/`` (``""`` when none)."""
    parts = [p.split("/")[:-1] for p in places]
    common = parts[0]
    for other in parts[1:]:
        n = 0
        while n < min(len(common), len(other)) and common[n] == other[n]:
            n += 1
        common = common[:n]
    return "/".join(common) + "/" if common else ""
