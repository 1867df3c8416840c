"""Shared by the daemon tests: for the serving tests (test_serving.py, test_fdpassing.py) a
started ``BoundedServer`` on a real listening socket, Unix or loopback TCP, and a bounded wait;
for the in-process daemon tests (test_loop.py, test_sweeps.py, test_scans.py, ...) ``make`` (a
``Daemon`` on an estate, notifying a listener), ``drain`` (the notifications so far), ``ask`` (an
admin command answered in-process) and ``ALICE``; for the metrics tests (test_metrics.py,
test_collector.py, test_httpendpoint.py) the snapshot ``BASE`` and ``snap`` (one changed),
``value`` (a sample), ``address`` and ``scrape`` (over real loopback HTTP).

``serve`` always stops its server (with a short grace) when the block ends; its limits are long
(``PATIENT``) and its descriptor reserve plentiful unless a test asks otherwise, so no test
waits on a timeout it does not name."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recd.adapters.systemd import Notifier
from recd.core.admission import Limits
from recd.core.model import Mode
from recd.core.requeststate import RequestState
from recd.daemon.admin.dispatch import Admin
from recd.daemon.collector import LicenceTotals, S3Totals, Snapshot, SourceState
from recd.daemon.control import Caller
from recd.daemon.loop import Daemon
from recd.daemon.metrics import Metrics
from recd.daemon.serving import BoundedServer
from recd.ports.records import Actor
from recd.protocol import Request
from tests.estate import Estate
from tests.fakes import NotifyListener

#: Long deadlines: no test here waits on a timeout unless it says so.
PATIENT = Limits(connections=4, idle=30.0, request=30.0, reply=30.0, max_request=1024)
PLENTY = 10**6  # free descriptors, for a server whose descriptor reserve is not under test


def wait_until(what: str, done: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``done()`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.01)


def unix_listener(path: Path) -> socket.socket:
    """A listening Unix stream socket bound at ``path``."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    return listener


@contextlib.contextmanager
def serve(
    endpoint: object,
    listener: socket.socket | None = None,
    limits: Limits = PATIENT,
    free: Callable[[], int] = lambda: PLENTY,
) -> Iterator[tuple[BoundedServer, list[str]]]:
    """A started server on ``listener`` (a loopback TCP one by default), and what it counted."""
    counted: list[str] = []
    listener = listener or socket.create_server(("127.0.0.1", 0))
    server = BoundedServer(listener, endpoint, limits, count=counted.append, free=free)  # type: ignore[arg-type]
    server.start()
    try:
        yield server, counted
    finally:
        server.stop(grace=0.1)


def make(estate: Estate, listener: NotifyListener, **kwargs: object) -> Daemon:
    return Daemon(estate.config, estate.clock, Notifier(listener.path), **kwargs)  # type: ignore[arg-type]


def drain(listener: NotifyListener) -> list[str]:
    while listener.receive(timeout=0.05) is not None:
        pass
    out, listener.messages = listener.messages, []
    return out


def ask(daemon: Daemon, command: str, **args: object) -> Any:
    caller = Caller(os.getpid(), 0, 0, ())
    return Admin(daemon).handle(Request(command, dict(args)), caller).unwrap()


ALICE = Actor("alice", 1001, admin=True)


T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


BASE = Snapshot(
    licences=(
        LicenceTotals("acme", recordings=3, bytes=3000, breaker=False),
        LicenceTotals(None, recordings=2, bytes=200, breaker=False),
        LicenceTotals("zeta", recordings=5, bytes=50, breaker=True),
    ),
    held=4,
    overdue=1,
    next_deadline=T0,
    sources=(
        SourceState(
            "pbx", "directory", last_scan=T0, scan_seconds=2.5, degraded=True, scan_interval=21600
        ),
        SourceState(
            "bucket",
            "s3",
            last_scan=None,
            scan_seconds=None,
            degraded=False,
            objects=S3Totals(objects=7, versions=12, delete_markers=2, bytes=4096),
            scan_interval=300,
        ),
    ),
    clock_guard=None,
    holds_active=6,
    requests={RequestState.RECEIVED: 2, RequestState.PARTIAL: 1},
    mode=Mode.ENFORCE,
    audit_log_bytes=12345,
    audit_segments=3,
)


def snap(**changes: object) -> Snapshot:
    return dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def address(m: Metrics) -> tuple[str, int] | None:
    return m.address  # read through a call so that mypy does not narrow it across serve/close


def scrape(m: Metrics) -> str:
    assert m.address is not None
    host, port = m.address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text: str = response.read().decode()
    return text
