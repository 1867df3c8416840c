"""Release a tripped mass-deletion breaker (SPEC section 7), audited with who released it."""

from __future__ import annotations

import logging
from datetime import datetime

from recd.core.audit import AuditDraft
from recd.errors import NotAllowedInState
from recd.ports.audit import AuditLog
from recd.ports.records import Breaker
from recd.ports.sweeping import BreakerCatalogue

logger = logging.getLogger(__name__)


def release_breaker(
    catalogue: BreakerCatalogue, audit: AuditLog, licence: str, actor: str, now: datetime
) -> Breaker:
    """Let the next sweep erase what the breaker held back; returns the breaker released."""
    tripped = catalogue.breakers().get(licence)
    with catalogue.together():
        if tripped is None or not catalogue.release_breaker(licence, now, actor):
            raise NotAllowedInState(f"no tripped mass-deletion breaker for licence {licence}")
        details = {"due": tripped.due, "recordings": tripped.total}
        audit.append([AuditDraft("breaker.released", licence, details, actor=actor)], now)
    logger.warning(
        "breaker for %s released by %s: the next sweep erases its %d due recordings",
        licence,
        actor,
        tripped.due,
    )
    return tripped
