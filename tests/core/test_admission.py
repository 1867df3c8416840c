"""The limit, timeout and burst decisions of the admin socket and the metrics port."""

from __future__ import annotations

import pytest

from recd.core.admission import Admission, Burst, Limits, Phase, Timing, admit

LIMITS = Limits(connections=4, idle=5.0, request=10.0, reply=60.0, fd_reserve=100)


@pytest.mark.parametrize(
    ("held", "reading", "free", "expected"),
    [
        (0, 0, 1000, Admission.ACCEPT),
        (3, 3, 1000, Admission.ACCEPT),  # below the limit: nobody is displaced
        (4, 1, 1000, Admission.DISPLACE),  # full: the slowest reader makes room
        (4, 0, 1000, Admission.LIMIT),  # full of requests being answered: refuse
        (9, 9, 1000, Admission.DISPLACE),  # over (limits lowered): still bounded
        (0, 0, 101, Admission.ACCEPT),
        (0, 0, 100, Admission.DESCRIPTORS),  # the reserve is erasing's, whatever the counts
        (4, 4, 5, Admission.DESCRIPTORS),
    ],
)
def test_admit(held: int, reading: int, free: int, expected: Admission) -> None:
    assert admit(held, reading, free, LIMITS) is expected


def test_a_reader_is_dropped_at_the_request_deadline_however_it_trickles() -> None:
    # slowloris: one byte a second keeps it from ever pausing 5 s, not from the 10 s deadline
    timing = Timing(Phase.READING, since=100.0, active=100.0)
    for t in range(101, 110):
        timing = Timing(Phase.READING, timing.since, float(t))
        assert timing.expired(t + 0.5, LIMITS) is None
    assert timing.expiry(LIMITS) == 110.0
    assert timing.expired(110.0, LIMITS) == "did not send its request within 10 s"


def test_a_silent_reader_is_dropped_after_the_idle_pause() -> None:
    timing = Timing(Phase.READING, since=100.0, active=101.0)
    assert timing.expiry(LIMITS) == 106.0
    assert timing.expired(105.9, LIMITS) is None
    assert timing.expired(106.0, LIMITS) == "paused 5 s while it should send its request"


def test_a_client_that_does_not_take_its_reply_is_dropped() -> None:
    stalled = Timing(Phase.WRITING, since=100.0, active=100.0)
    assert stalled.expired(105.0, LIMITS) == "paused 5 s while it should take its reply"
    trickling = Timing(Phase.WRITING, since=100.0, active=159.0)
    assert trickling.expired(160.0, LIMITS) == "did not take its reply within 60 s"


def test_no_timeout_while_recd_works_out_the_reply() -> None:
    handling = Timing(Phase.HANDLING, since=100.0, active=100.0)
    assert handling.expiry(LIMITS) is None
    assert handling.expired(1e9, LIMITS) is None


def test_a_burst_is_logged_once_and_summed_up_once_when_over() -> None:
    burst = Burst(quiet=10.0)
    assert burst.deadline() is None
    assert burst.note(100.0) is True
    assert [burst.note(100.0 + i / 100) for i in range(1, 1100)] == [False] * 1099
    assert burst.deadline() == pytest.approx(120.99)
    assert burst.ended(120.9) is None
    count, seconds = burst.ended(121.0) or (0, 0.0)
    assert count == 1100
    assert seconds == pytest.approx(10.99)
    assert burst.ended(200.0) is None  # summed up once
    assert burst.deadline() is None
    assert burst.note(300.0) is True  # the next burst is logged again
