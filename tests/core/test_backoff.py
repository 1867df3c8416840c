"""recd.core.backoff: capped exponential backoff with full jitter, the draw given."""

from __future__ import annotations

import sys
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recd.core.backoff import ceiling, full_jitter

#: The largest draw random.random() gives.
ALMOST_ONE = 1.0 - 2.0**-53
#: Windows from which the largest draw still rounds below: normal floats, with room to spare.
TINY = 2 * sys.float_info.min

attempts = st.integers(min_value=1, max_value=10**30)
seconds = st.floats(min_value=0.0, max_value=sys.float_info.max, allow_subnormal=False)
draws = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


@pytest.mark.parametrize(
    ("attempt", "draw", "expected"),
    [
        (1, 0.0, 0.0),
        (1, 0.5, 0.1),  # windows 0.2, 0.4, 0.8, 1.6, 3.2, then the cap of 5
        (2, 0.5, 0.2),
        (3, 0.5, 0.4),
        (4, 0.5, 0.8),
        (5, 0.5, 1.6),
        (6, 0.5, 2.5),
        (7, 0.5, 2.5),
        (10**6, 0.5, 2.5),
        (4, 0.25, 0.4),
    ],
)
def test_full_jitter_is_the_draw_times_the_capped_window(
    attempt: int, draw: float, expected: float
) -> None:
    assert full_jitter(attempt, 0.2, 5.0, draw) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("attempt", "base", "cap", "expected"),
    [
        (1, 0.2, 10.0, 0.2),
        (4, 0.2, 10.0, 1.6),
        (7, 0.2, 10.0, 10.0),  # 12.8 capped
        (1, 3.0, 2.0, 2.0),  # a cap below the base caps the first retry too
        (1, 0.0, 10.0, 0.0),
        (9, 0.2, 0.0, 0.0),
        (1025, 1.0, sys.float_info.max, sys.float_info.max),  # 2 ** 1024 is no float
        (10**100, 5e-324, 1.0, 1.0),
        (1075, 5e-324, 1.0, 1.0),  # the smallest float doubled 1074 times is 1.0
        (1074, 5e-324, 1.0, 0.5),
    ],
)
def test_ceiling(attempt: int, base: float, cap: float, expected: float) -> None:
    assert ceiling(attempt, base, cap) == expected


@given(attempts, seconds, seconds, draws)
def test_a_delay_lies_in_its_window_for_any_attempt(
    attempt: int, base: float, cap: float, draw: float
) -> None:
    window = ceiling(attempt, base, cap)
    assert 0.0 <= window <= cap
    delay = full_jitter(attempt, base, cap, draw)
    assert 0.0 <= delay <= window
    assert delay < window or window < TINY


@given(st.integers(min_value=1, max_value=5000), seconds, seconds)
def test_the_window_is_min_of_cap_and_doubled_base(attempt: int, base: float, cap: float) -> None:
    exact = Fraction(base) * 2 ** (attempt - 1)  # in exact arithmetic, where nothing overflows
    assert ceiling(attempt, base, cap) == (cap if exact >= cap else float(exact))


@given(st.integers(min_value=2, max_value=200), st.floats(min_value=1e-3, max_value=60.0))
def test_windows_double_until_the_cap(attempt: int, base: float) -> None:
    cap = base * 2**10
    before, now = ceiling(attempt - 1, base, cap), ceiling(attempt, base, cap)
    assert now == (2 * before if attempt <= 11 else cap)


@given(attempts, seconds, seconds)
def test_the_largest_draw_stays_below_a_nonzero_window(
    attempt: int, base: float, cap: float
) -> None:
    window = ceiling(attempt, base, cap)
    assert full_jitter(attempt, base, cap, ALMOST_ONE) < window or window < TINY


def test_the_draw_is_passed_in_and_spread_over_the_window() -> None:
    # Two clients failing together and drawing differently wait differently: the spread is the
    # draw's, nothing inside picks one.
    delays = {full_jitter(3, 0.2, 5.0, draw / 10) for draw in range(10)}
    assert len(delays) == 10
    assert min(delays) == 0.0
    assert max(delays) == pytest.approx(0.72)


@pytest.mark.parametrize(
    ("attempt", "base", "cap", "draw", "message"),
    [
        (0, 0.2, 5.0, 0.5, "retry attempts count from 1, not 0"),
        (1, -0.2, 5.0, 0.5, "backoff base and cap must be finite and >= 0, not -0.2 and 5.0"),
        (
            1,
            0.2,
            float("inf"),
            0.5,
            "backoff base and cap must be finite and >= 0, not 0.2 and inf",
        ),
        (
            1,
            float("nan"),
            5.0,
            0.5,
            "backoff base and cap must be finite and >= 0, not nan and 5.0",
        ),
        (1, 0.2, 5.0, 1.0, "draw must be in [0, 1), not 1.0"),
        (1, 0.2, 5.0, -0.1, "draw must be in [0, 1), not -0.1"),
    ],
)
def test_bad_arguments(attempt: int, base: float, cap: float, draw: float, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        full_jitter(attempt, base, cap, draw)
    assert str(caught.value) == message
