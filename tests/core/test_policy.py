"""Verdicts: hold > verified request > rolling retention, decided at an explicit `now`."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from recd.core.model import Classification, Recording, State
from recd.core.policy import KeepReason, Outcome, Verdict, verdict
from tests.core.helpers import NOW


def rec(deadline: datetime | None) -> Recording:
    return Recording(
        "id", "pbx", "a.wav", 1, 2, 3, 4,
        Classification("L", NOW - timedelta(days=40)), deadline, State.PRESENT, NOW,
    )  # fmt: skip


EARLY, LATE, SOON = NOW - timedelta(days=1), NOW + timedelta(days=9), NOW + timedelta(seconds=1)
ERASE, KEEP = Outcome.ERASE, Outcome.KEEP


@pytest.mark.parametrize(
    ("deadline", "holds", "request_id", "expected"),
    [
        (NOW, (), None, Verdict(ERASE, "retention", NOW)),
        (EARLY, (), None, Verdict(ERASE, "retention", EARLY)),
        (SOON, (), None, Verdict(KEEP, KeepReason.NOT_DUE, SOON)),
        (None, (), None, Verdict(KEEP, KeepReason.NO_DEADLINE, None)),
        (NOW, ("H1",), None, Verdict(KEEP, KeepReason.HELD, NOW, held_by=("H1",))),
        (NOW, ("H1",), "R1", Verdict(KEEP, KeepReason.HELD, NOW, held_by=("H1",))),
        (None, (), "R1", Verdict(ERASE, "request:R1", None, request_id="R1")),
        (LATE, (), "R1", Verdict(ERASE, "request:R1", LATE, request_id="R1")),
    ],
)
def test_verdict_precedence(
    deadline: datetime | None, holds: tuple[str, ...], request_id: str | None, expected: Verdict
) -> None:
    assert verdict(rec(deadline), NOW, holds=holds, request_id=request_id) == expected
