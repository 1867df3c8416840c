"""The catalogue's row codecs (recd.adapters.sqlite.rows): times stored as integer
microseconds convert back exactly. The codecs' refusal of a row that does not decode is
in test_corrupt.py; the codecs round-trip every record through the contract suites.
"""

from __future__ import annotations

from datetime import UTC, datetime

from recd.adapters.sqlite.rows import from_us, to_us


def test_time_conversion_is_exact() -> None:
    when = datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=UTC)
    assert from_us(to_us(when)) == when
    assert to_us(datetime(1970, 1, 1, tzinfo=UTC)) == 0
