"""The verdict on one recording at ``now``: hold > verified request > rolling retention.

Pure: given the recording, the holds and request that apply to it, and ``now``. The verdict
carries its reason, so logs, the sweep summary and (later) `recctl show` explain themselves.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from recd.core.model import Recording


class Outcome(enum.StrEnum):
    ERASE = "erase"
    KEEP = "keep"


class KeepReason(enum.StrEnum):
    NOT_DUE = "not yet due"
    NO_DEADLINE = "no deadline"
    HELD = "held"


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    reason: str  # "retention", "request:<id>", or a KeepReason
    deadline: datetime | None
    held_by: tuple[str, ...] = ()
    request_id: str | None = None


def verdict(
    recording: Recording,
    now: datetime,
    *,
    holds: Sequence[str] = (),
    request_id: str | None = None,
) -> Verdict:
    """Decide one recording. ``holds`` are the ids of legal holds whose scope matches it;
    ``request_id`` names a verified early-deletion request whose scope matches it."""
    deadline = recording.deadline
    if holds:
        return Verdict(Outcome.KEEP, KeepReason.HELD, deadline, held_by=tuple(holds))
    if request_id is not None:
        return Verdict(Outcome.ERASE, f"request:{request_id}", deadline, request_id=request_id)
    if deadline is None:
        return Verdict(Outcome.KEEP, KeepReason.NO_DEADLINE, None)
    if deadline > now:
        return Verdict(Outcome.KEEP, KeepReason.NOT_DUE, deadline)
    return Verdict(Outcome.ERASE, "retention", deadline)
