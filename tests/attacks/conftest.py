"""Fixtures the attack modules share (their helpers are in tests/attacks/helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.attacks.helpers import Writer


@pytest.fixture
def writers() -> Iterator[list[Writer]]:
    """Writer processes a test starts; each is closed at the end, whatever happened."""
    started: list[Writer] = []
    yield started
    for writer in started:
        writer.close()
