"""The clock at start checked against the evidence the state holds (``recd.daemon.evidence``):
a clock behind the last audit entry erases nothing."""

from __future__ import annotations

from datetime import timedelta

from tests.daemon.helpers import drain, make
from tests.estate import Estate
from tests.fakes import NotifyListener


def test_start_with_the_clock_behind_the_audit_log_erases_nothing(
    estate: Estate, listener: NotifyListener
) -> None:
    assert estate.once()[0] == 0  # audit entries written at "now"
    f = estate.write("L1/due.wav", age_days=31)
    estate.clock.set(estate.clock.now() - timedelta(minutes=10))
    daemon = make(estate, listener)
    daemon.start()
    try:
        assert f.exists()
        assert daemon.clock_problem == "wall clock is 10m behind the last audit entry"
        assert "STATUS=erasing paused: wall clock is 10m behind the last audit entry" in drain(
            listener
        )
    finally:
        daemon.stop()
