"""Legal holds (SPEC section 5): a rule over a licence's recordings, never a snapshot.

A hold is *active* from its placing until an administrator releases it or its ``until`` passes
(then recd releases it as *expired*). While any active hold matches a recording, nothing erases
it: neither retention nor an early-deletion request. When the last hold on a recording goes, the
recording becomes due at ``max(deadline, release + holds.release_grace)``, so a mistaken release
can be undone before anything is lost.

Pure: given the holds and ``now``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from recd.core.model import Recording
from recd.core.scope import Scope


class HoldState(enum.StrEnum):
    ACTIVE = "active"
    RELEASED = "released"  # by an administrator
    EXPIRED = "expired"  # its ``until`` passed; released by recd


@dataclass(frozen=True, slots=True)
class Hold:
    id: str  # "H-0007": given by the catalogue when the hold is placed
    scope: Scope
    case: str
    reason: str
    placed_at: datetime
    placed_by: str
    until: datetime | None = None
    state: HoldState = HoldState.ACTIVE
    released_at: datetime | None = None
    released_by: str | None = None
    release_reason: str | None = None
    due_from: datetime | None = None  # released: what it held is not erased before this

    @property
    def licence(self) -> str:
        return self.scope.licence

    @property
    def active(self) -> bool:
        return self.state is HoldState.ACTIVE

    def expired_at(self, now: datetime) -> bool:
        """An active hold whose ``until`` has come: recd releases it now."""
        return self.active and self.until is not None and self.until <= now


def holding(holds: Iterable[Hold], rec: Recording) -> tuple[str, ...]:
    """The ids of the active holds that keep ``rec``."""
    return tuple(h.id for h in holds if h.active and h.scope.matches(rec))


def due_after_release(
    deadline: datetime | None, released: datetime, grace: timedelta
) -> datetime | None:
    """When a recording whose last hold was released at ``released`` becomes due."""
    if deadline is None:
        return None
    return max(deadline, released + grace)


def next_expiry(holds: Iterable[Hold]) -> datetime | None:
    """The earliest ``until`` of an active hold, for the daemon's wake-up."""
    times = [h.until for h in holds if h.active and h.until is not None]
    return min(times, default=None)
