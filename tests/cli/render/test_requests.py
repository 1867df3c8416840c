"""``recd.cli.render.requests``: a request's counts as one line, with the holds that kept
recordings."""

from __future__ import annotations

import pytest

from recd.cli.render.requests import counts_text


@pytest.mark.parametrize(
    ("counts", "holds", "text"),
    [
        ({}, [], "erased 0, held 0, failed 0, already gone 0"),
        ({"held": 2}, ["H-1", "H-2"], "erased 0, held 2 (H-1, H-2), failed 0, already gone 0"),
        ({"pending": 5}, [], "erased 0, held 0, failed 0, already gone 0, pending 5"),
    ],
)
def test_counts_text(counts, holds, text):
    zero = {"erased": 0, "held": 0, "failed": 0, "gone": 0, "pending": 0}
    assert counts_text(zero | counts, holds) == text
