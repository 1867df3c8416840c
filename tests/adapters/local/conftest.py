"""Fixtures of the LocalEraser tests (test_erase, test_checks, test_probes, test_overwrite):
a file-descriptor leak check each of those modules applies to every test, an eraser on
the test's source root, and a 5-second alarm for a test that could block on an open.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from recd.adapters.local.erase import LocalEraser


@pytest.fixture
def no_fd_leaks() -> Iterator[None]:
    before = sorted(os.listdir("/proc/self/fd"))
    yield
    assert sorted(os.listdir("/proc/self/fd")) == before


@pytest.fixture
def eraser(root: Path) -> Iterator[LocalEraser]:
    with LocalEraser(root, chunk_size=64 * 1024) as e:
        yield e


@pytest.fixture
def timeout() -> Iterator[None]:
    """Fail instead of hanging: a blocking open is interrupted after 5 seconds."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError("blocked")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(5)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
