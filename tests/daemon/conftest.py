"""The daemon tests' shared fixtures: ``estate``, a fresh ``tests.estate.Estate`` on the test's
temporary directory and fake clock (a module that needs another estate defines its own), and
``metrics``, a ``Metrics`` on its own private registry over the snapshot ``helpers.BASE``,
closed after the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recd.daemon.metrics import Metrics
from tests.daemon.helpers import BASE
from tests.estate import Estate
from tests.fakes import FakeClock


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    return Estate(tmp_path, fake_clock)


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    m = Metrics(lambda: BASE)
    yield m
    m.close()
