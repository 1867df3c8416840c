"""A catalogue database that cannot be reached (PostgreSQL, ``[catalogue] url``): the wait.

While the server is down or refuses, recd holds no runtime: nothing is scanned, claimed or
erased, and nothing is lost (recordings stay where they are; their deadlines are acted on once
the database is back). One error line when the wait begins (and when its reason changes), the
reason in ``STATUS=`` and in every admin command's answer, and tries to open the state again
with capped exponential backoff (full jitter, ``recd.core.backoff``), so a database down for an
hour is not hammered by every host at the same second and recd never crash-loops.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime

from recd.core.backoff import full_jitter
from recd.core.times import format_human_time
from recd.errors import CatalogueUnreachable
from recd.ports.clock import Clock

logger = logging.getLogger(__name__)

#: The first try again after up to 1 s, then twice as long each time, at most 60 s apart: a
#: database back after a restart is used within a minute.
RETRY_BASE = 1.0
RETRY_CAP = 60.0


class CatalogueWait:
    """While ``problem`` is set the catalogue's database cannot be reached."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.problem: str | None = None
        self.retry_at = 0.0  # monotonic time of the next try
        self._since: datetime | None = None
        self._failures = 0

    def failed(self, exc: CatalogueUnreachable) -> None:
        """A try failed: log it when the wait begins or its reason changes; set the next."""
        problem = str(exc)
        self._failures += 1
        if self.problem is None:
            self._since = self.clock.now()
        if problem != self.problem:
            logger.error(
                "%s; nothing is scanned or erased until it can be reached (retrying with "
                "backoff, at most %d s apart)",
                problem,
                RETRY_CAP,
            )
        self.problem = problem
        delay = full_jitter(min(self._failures, 64), RETRY_BASE, RETRY_CAP, random.random())  # noqa: S311 (spreads hosts' retries; not a secret)
        self.retry_at = self.clock.monotonic() + delay

    def due(self) -> bool:
        return self.clock.monotonic() >= self.retry_at

    def wait(self) -> float:
        """Seconds until the next try."""
        return max(0.0, self.retry_at - self.clock.monotonic())

    def ended(self) -> None:
        """The state opened again."""
        if self.problem is None:
            return
        since = format_human_time(self._since or self.clock.now())
        logger.warning(
            "catalogue database reachable again after %d failed tries since %s: scanning "
            "and erasing resume",
            self._failures,
            since,
        )
        self.problem, self._since, self._failures = None, None, 0

    def unreachable(self) -> CatalogueUnreachable:
        """What an admin command gets while waiting."""
        return CatalogueUnreachable(f"{self.problem}; nothing is erased until it is back")
