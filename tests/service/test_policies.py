"""recd.service.policies: stored deadlines follow the configured retention of each licence."""

from __future__ import annotations

from dataclasses import replace

from recd.core.periods import parse_period
from tests.estate import Estate


def test_shortening_retention_recomputes_deadlines(estate: Estate) -> None:
    f = estate.write("L2/forty.wav", age_days=40)
    assert estate.sweep().erased == 0
    l2 = replace(estate.config.licences["L2"], retention=parse_period("30d"))
    estate.configure(licences={**estate.config.licences, "L2": l2})
    assert estate.sweep().erased == 1
    assert not f.exists()
