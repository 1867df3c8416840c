"""Shared fixtures: a clean environment, a fake clock, an empty source root, a listener for a
daemon's sd_notify messages, the root-only skip, and the ``tools`` marker (a test that needs
an absent tool skips, naming its package; see ``tests/tools.py``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import tools, userns
from tests.fakes import FakeClock, NotifyListener

# The fake admin-socket daemon's fixtures (sock_dir, daemon, private_daemon) for recctl tests;
# a real S3 endpoint (moto's server on loopback: s3_endpoint, make_bucket) for S3 tests; a real
# PostgreSQL on a unix socket (postgres, pg_database) for the shared catalogue's tests.
pytest_plugins = ["tests.fakedaemon", "tests.s3server", "tests.foreign", "tests.legal", "tests.pg"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the caller's RECD_* or NOTIFY_SOCKET variables."""
    for name in list(os.environ):
        if name.startswith("RECD_") or name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM"):
            monkeypatch.delenv(name)
    yield


@pytest.fixture(autouse=True)
def recd_logger() -> Iterator[None]:
    """A test that runs ``recd.daemon.main.main`` configures the ``recd`` logger (a stderr handler
    on the stream pytest captured for that test, no propagation); put it back afterwards, so
    later tests neither write to a closed stream nor lose their records to caplog."""
    logger = logging.getLogger("recd")
    saved = (list(logger.handlers), logger.level, logger.propagate, logger.disabled)
    yield
    logger.handlers[:], logger.level, logger.propagate, logger.disabled = saved


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (loop mounts, other uids)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(tryfirst=True)  # before any fixture: the limits hold for all of the test
def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("tools"):
        tools.need(*marker.args)
    limits = item.get_closest_marker("userns")
    if userns.INSIDE and limits is not None:
        userns.set_limits(limits.kwargs)


def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A ``userns`` test runs in a child pytest inside a new user namespace (tests/userns.py)."""
    if userns.INSIDE or pyfuncitem.get_closest_marker("userns") is None:
        return None
    userns.run_in_child(pyfuncitem)
    return True


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty directory to use as a source root (a module may define its own)."""
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[NotifyListener]:
    """Where a daemon under test sends its sd_notify messages (read as they arrive)."""
    sock = NotifyListener(str(tmp_path / "notify"))
    yield sock
    sock.close()
