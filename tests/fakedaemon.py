"""A fake recd admin socket: a real Unix socket served by a thread, with canned answers.

``FakeDaemon`` listens on a socket in a short temporary directory (a Unix socket path must fit
in 108 bytes, which pytest's ``tmp_path`` may not), answers every connection with its current
``answer`` and records what it was sent. An answer is one of:

- a ``Reply``: sent encoded with ``protocol.encode_reply``, as the real daemon would;
- ``bytes``: sent as they are (garbage, a reply of another version, a reply cut short);
- ``CLOSE``: the connection is closed without a reply;
- ``Delay(seconds, answer)``: nothing is sent until ``seconds`` pass (or the fixture ends),
  then ``answer``; by default the connection is closed: a daemon that does not answer in time;
- ``ReadPart(n, answer)``: read only ``n`` bytes of the request, then answer: a daemon refusing
  a request that is too large.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from recd.adapters._closing import Closing
from recd.protocol import Reply, Request, decode_request, encode_reply


class _Close:
    pass


CLOSE = _Close()


@dataclass(frozen=True)
class Delay:
    seconds: float
    answer: Answer = CLOSE


@dataclass(frozen=True)
class ReadPart:
    size: int
    answer: Answer


Answer = Reply | bytes | _Close | Delay | ReadPart


@dataclass
class FakeDaemon(Closing):
    """Serves ``path`` until closed; ``requests`` holds each decoded request in order."""

    path: Path
    answer: Answer = field(default_factory=lambda: Reply.success(None))
    requests: list[Request] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(self.path))
        self._server.listen(8)
        self._server.settimeout(0.05)
        self._thread = threading.Thread(target=self._serve, name="fake-recd", daemon=True)
        self._thread.start()

    @property
    def request(self) -> Request:
        """The one request received (fails when there were none or several)."""
        assert len(self.requests) == 1, self.requests
        return self.requests[0]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5.0)
                # The client may give up first (a reply over its limit).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._answer(conn, self.answer)

    def _read(self, conn: socket.socket, size: int | None = None) -> None:
        data = bytearray()
        while size is None or len(data) < size:
            chunk = conn.recv(65536 if size is None else size - len(data))
            if not chunk:
                break
            data += chunk
        self.raw.append(bytes(data))
        if size is None and data:  # a client that gave up at once sends nothing
            self.requests.append(decode_request(bytes(data)))

    def _answer(self, conn: socket.socket, answer: Answer) -> None:
        if isinstance(answer, ReadPart):
            self._read(conn, answer.size)
            answer = answer.answer
        else:
            self._read(conn)
        if isinstance(answer, Delay):
            if self._stop.wait(answer.seconds):
                return
            answer = answer.answer
        if isinstance(answer, Reply):
            conn.sendall(encode_reply(answer))
        elif isinstance(answer, bytes):
            conn.sendall(answer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._server.close()


def short_dir() -> Iterator[Path]:
    """A temporary directory with a short path, removed afterwards (a generator fixture body)."""
    path = Path(tempfile.mkdtemp(prefix="recd-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def socket_path(directory: Path) -> Path:
    """Where a test's daemon socket goes; asserted short enough for ``sockaddr_un``."""
    path = directory / "recd.sock"
    assert len(os.fsencode(path)) < 108
    return path


NOBODY = 65534


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    yield from short_dir()


@pytest.fixture
def daemon(sock_dir: Path) -> Iterator[FakeDaemon]:
    with FakeDaemon(socket_path(sock_dir)) as fake:
        yield fake


@pytest.fixture
def private_daemon(sock_dir: Path) -> Iterator[FakeDaemon]:
    """A daemon whose socket is root's with mode 0600, in a directory anyone may search."""
    os.chmod(sock_dir, 0o755)
    with FakeDaemon(socket_path(sock_dir)) as fake:
        os.chmod(fake.path, 0o600)
        yield fake
