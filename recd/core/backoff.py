"""Retry delays: capped exponential backoff with full jitter.

The wait before retry ``n`` (1 for the first retry) is drawn uniformly from
``[0, min(cap, base * 2 ** (n - 1)))`` ("Full Jitter" in the AWS Architecture Blog's
"Exponential Backoff And Jitter", the backoff AWS and MinIO advise for ``SlowDown``). A
throttled store refuses every client of a busy prefix at the same moment; a deterministic
backoff would bring them all back at the same moment too, while drawing each wait from the
whole window spreads them out. The cap bounds a single wait however many retries are allowed.

Pure: the caller draws the random number (``draw``, uniform in [0, 1)) from its own source
and passes it in, as decisions here are given ``now`` rather than reading the clock.
"""

from __future__ import annotations

import math


def ceiling(attempt: int, base: float, cap: float) -> float:
    """``min(cap, base * 2 ** (attempt - 1))``, in seconds: the window retry ``attempt`` (from
    1) draws its wait from. Never overflows, whatever ``attempt``. Raises ``ValueError`` for an
    ``attempt`` below 1, or a ``base`` or ``cap`` that is negative or not finite."""
    if attempt < 1:
        raise ValueError(f"retry attempts count from 1, not {attempt}")
    if not (0.0 <= base < math.inf and 0.0 <= cap < math.inf):
        raise ValueError(f"backoff base and cap must be finite and >= 0, not {base} and {cap}")
    if base == 0.0 or cap <= base:  # 2 ** (attempt - 1) >= 1: capped from the first retry
        return min(base, cap)
    # By binary exponents, so that no product is formed that may not fit a float: base is
    # m * 2 ** e (0.5 <= m < 1), and once e + attempt - 1 passes the cap's exponent the
    # product is at least the power of two above the cap; below it, it fits and is exact.
    mantissa, exponent = math.frexp(base)
    shifted = exponent + attempt - 1
    if shifted > math.frexp(cap)[1]:
        return cap
    return min(cap, math.ldexp(mantissa, shifted))


def full_jitter(attempt: int, base: float, cap: float, draw: float) -> float:
    """Seconds to wait before retry ``attempt`` (from 1): ``draw * ceiling(attempt, base,
    cap)``, so below the ceiling unless that is 0 (or below 1e-307 s, where rounding may reach
    it). ``draw`` is the caller's uniform random number in [0, 1); ``ValueError`` for one
    outside it, and as ``ceiling``."""
    if not 0.0 <= draw < 1.0:
        raise ValueError(f"draw must be in [0, 1), not {draw}")
    return draw * ceiling(attempt, base, cap)
