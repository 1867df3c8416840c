"""Keep stored deadlines in step with the configured retention of each licence."""

from __future__ import annotations

import functools
import logging
from datetime import datetime

from recd.config.load import Config
from recd.core.periods import Period, add_period
from recd.ports.scanning import PolicyCatalogue

logger = logging.getLogger(__name__)


def policy_key(period: Period | None) -> str:
    """A stable text for a retention rule; deadlines are recomputed when it changes."""
    if period is None:
        return "keep"
    if period.never:
        return "never"
    return f"{period.months}mo+{period.seconds}s"


def deadline(started: datetime, period: Period | None) -> datetime | None:
    return None if period is None else add_period(started, period)


def apply_policies(config: Config, catalogue: PolicyCatalogue) -> int:
    """Recompute deadlines of every licence whose retention changed; returns rows updated."""
    stored = catalogue.policies()
    updated = 0
    for licence in catalogue.licences():
        period = config.period_for(licence)
        key = policy_key(period)
        if stored.get(licence) == key:
            continue
        count = catalogue.set_deadlines(licence, key, functools.partial(deadline, period=period))
        if licence in stored:
            logger.info(
                "retention of %s changed to %s: %d deadlines recomputed",
                licence or "unclassified recordings",
                "keep" if period is None else period.text,
                count,
            )
        updated += count
    return updated
