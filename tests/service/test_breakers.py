"""recd.service.breakers: releasing a tripped mass-deletion breaker lets the next sweep erase and is
audited; releasing one that is not tripped is refused."""

from __future__ import annotations

import pytest

from recd.core.safety import SafetySettings
from recd.errors import ExitCode
from tests.estate import Estate


def test_released_breaker_lets_the_next_sweep_erase_then_rearms(estate: Estate) -> None:
    from recd.daemon.once import release_breaker

    for i in range(3):
        estate.write(f"L1/old{i}.wav", age_days=31)
    estate.configure(safety=SafetySettings(max_due_fraction=0.5, min_breaker_count=2))
    assert estate.sweep().erased == 0
    assert release_breaker(estate.config, estate.clock, "L1", "alice") is ExitCode.OK
    released = estate.audit()[-1]
    assert (released["action"], released["actor"], released["subject"]) == (
        "breaker.released", "alice", "L1",
    )  # fmt: skip
    assert released["details"] == {"due": 3, "recordings": 3}
    report = estate.sweep()
    assert (report.erased, report.licences["L1"].breaker) == (3, False)
    for i in range(4):  # re-armed: a new mass of due recordings trips it again
        estate.write(f"L1/again{i}.wav", age_days=31)
    assert estate.sweep().licences["L1"].breaker is True


def test_releasing_a_breaker_that_is_not_tripped_is_refused(estate: Estate) -> None:
    from recd.daemon.once import release_breaker
    from recd.errors import NotAllowedInState

    with pytest.raises(NotAllowedInState) as exc:
        release_breaker(estate.config, estate.clock, "L1", "alice")
    assert str(exc.value) == "no tripped mass-deletion breaker for licence L1"
    assert exc.value.exit_code == 3
