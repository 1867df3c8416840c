"""Shared by the serving tests (tests/daemon/test_serving.py, test_fdpassing.py): a started
``BoundedServer`` on a real listening socket, Unix or loopback TCP, and a bounded wait.

``serve`` always stops its server (with a short grace) when the block ends; its limits are long
(``PATIENT``) and its descriptor reserve plentiful unless a test asks otherwise, so no test
waits on a timeout it does not name."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from recd.core.admission import Limits
from recd.daemon.serving import BoundedServer

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
