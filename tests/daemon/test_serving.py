"""recd.daemon.serving: the bounded one-request server under the admin socket and the metrics port.

Real listening sockets (Unix and loopback TCP), real client sockets and the server's real
threads; each test drives one error path or race a client can cause and checks what the client
and the log see. The end-to-end attacks (floods, slowloris, EMFILE) are tests/attacks.
"""

from __future__ import annotations

import contextlib
import functools
import resource
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from recd.core.admission import Burst, Limits
from recd.daemon import serving
from recd.daemon.httpendpoint import StartResponse, WsgiEndpoint
from recd.daemon.serving import FD_CEILING, BoundedServer, free_descriptors, raise_fd_limit
from tests import tools
from tests.daemon.helpers import PATIENT, PLENTY, serve, unix_listener, wait_until

ROOT = Path(__file__).resolve().parents[2]


class Lines:
    """A line protocol: a request ends at a newline (or at end of file, if ``eof_ends``); the
    reply echoes it. A request of exactly ``hold`` keeps the loop inside ``complete`` until
    ``release`` is set, so that a test can line events up for the loop's next wake-up."""

    name = "lines"

    def __init__(self, *, eof_ends: bool = True) -> None:
        self.eof_ends = eof_ends
        self.seen: list[bytes] = []  # every ``complete`` call's data, on the loop thread
        self.answered: list[bytes] = []
        self.holding = threading.Event()
        self.release = threading.Event()

    def complete(self, data: bytes, eof: bool) -> bool:
        self.seen.append(data)
        if data == b"hold" and not eof:
            self.holding.set()
            self.release.wait(10)
        return (eof and self.eof_ends) or b"\n" in data

    def answer(self, conn: socket.socket, request: bytes) -> bytes:
        self.answered.append(request)
        return b"echo " + request

    def refusal(self, why: str, *, busy: bool) -> bytes:
        return f"refused: {why}\n".encode()


def connect(server: BoundedServer) -> socket.socket:
    sock = socket.socket(server.listener.family, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(server.listener.getsockname())
    return sock


def read_all(sock: socket.socket) -> bytes:
    data = bytearray()
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return bytes(data)


def ask(server: BoundedServer, data: bytes) -> bytes:
    with connect(server) as sock:
        sock.sendall(data)
        return read_all(sock)


# -- descriptors --------------------------------------------------------------------------------


@pytest.fixture
def nofile() -> Iterator[tuple[int, int]]:
    """The process' RLIMIT_NOFILE, put back after the test."""
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield limits
    resource.setrlimit(resource.RLIMIT_NOFILE, limits)


def test_raise_fd_limit_lifts_the_soft_limit_to_the_hard_one_within_the_ceiling(
    nofile: tuple[int, int],
) -> None:
    _, hard = nofile
    wanted = FD_CEILING if hard == resource.RLIM_INFINITY else min(hard, FD_CEILING)
    low = min(256, wanted - 1)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))  # systemd's soft default, say
    assert raise_fd_limit() == (low, wanted)
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (wanted, hard)
    assert raise_fd_limit() == (wanted, wanted)  # already there: nothing to do
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (wanted, hard)


@pytest.mark.tools("unshare", "mount")
def test_without_proc_the_free_descriptors_are_the_whole_soft_limit() -> None:
    """In a mount namespace whose /proc is an empty tmpfs (a container without /proc), the
    count of open descriptors is unknown: the soft limit stands for the free ones."""
    code = (
        "import resource; from recd.daemon.serving import free_descriptors; "
        "_, hard = resource.getrlimit(resource.RLIMIT_NOFILE); "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (777, hard)); "
        "print(free_descriptors())"
    )
    done = subprocess.run(
        [tools.need("unshare"), "--user", "--map-root-user", "--mount", "--", "sh", "-c",
         'mount -t tmpfs none /proc || exit 99; exec "$0" -c "$1"', sys.executable, code],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    if done.returncode == 99 or (done.returncode != 0 and "unshare:" in done.stderr):
        tools.unavailable(f"no user and mount namespaces here: {done.stderr.strip()}")
    assert (done.returncode, done.stdout, done.stderr) == (0, "777\n", "")
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert 0 < free_descriptors() < soft  # with /proc: the ones open here are taken off


# -- lifecycle ----------------------------------------------------------------------------------


def test_stop_before_start_leaves_the_listener_and_a_second_stop_does_nothing() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    server = BoundedServer(listener, Lines(), PATIENT, free=lambda: PLENTY)
    server.stop()  # a daemon failing before it served: nothing to stop, nothing closed
    assert listener.fileno() >= 0
    server.start()
    try:
        assert ask(server, b"ping\n") == b"echo ping\n"
    finally:
        server.stop()
    assert listener.fileno() == -1
    server.stop()
    assert listener.fileno() == -1


# -- one exchange -------------------------------------------------------------------------------


def test_a_client_displaced_in_the_wake_up_its_bytes_arrive_is_not_read_after_closing(
    tmp_path: Path,
) -> None:
    """At the limit, a newcomer displaces the slowest client while that client's next bytes
    are waiting in the same wake-up: the closed connection is skipped, the loop goes on."""
    endpoint = Lines()
    accepted = [0]

    def free() -> int:
        accepted[0] += 1  # called once per accept, on the loop thread
        return PLENTY

    limits = Limits(connections=2, idle=30.0, request=30.0, reply=30.0, max_request=1024)
    with serve(endpoint, unix_listener(tmp_path / "s"), limits, free) as (server, counted):
        slow, holder = connect(server), None
        newcomer = None
        try:
            slow.sendall(b"a")
            wait_until("the slow client's byte read", lambda: b"a" in endpoint.seen)
            holder = connect(server)
            wait_until("the holder accepted", lambda: accepted[0] == 2)
            time.sleep(0.2)  # its first read (right after accept) found nothing yet
            holder.sendall(b"hold")
            assert endpoint.holding.wait(10)  # the loop is busy: the next events queue up
            newcomer = connect(server)  # first the listener becomes ready...
            slow.sendall(b"b")  # ...then the slow client
            endpoint.release.set()
            newcomer.sendall(b"ping\n")
            assert read_all(newcomer) == b"echo ping\n"
            assert read_all(slow) == (
                b"refused: recd dropped the connection: it was the slowest to send its "
                b"request of 2 held\n"
            )
            holder.sendall(b"\n")
            assert read_all(holder) == b"echo hold\n"
        finally:
            endpoint.release.set()
            for sock in (slow, holder, newcomer):
                if sock is not None:
                    sock.close()
    assert counted == ["limit"]
    assert b"ab" not in endpoint.seen  # the displaced client's late byte was never read
    assert endpoint.answered == [b"ping\n", b"hold\n"]


def test_a_connection_reset_mid_request_is_answered_with_what_arrived_and_frees_its_slot() -> None:
    """A client that resets (RST) after part of its request: the part is the request; the
    reply cannot be written to it, and that failure only closes the connection."""
    endpoint = Lines()
    with serve(endpoint) as (server, counted):
        client = connect(server)
        client.sendall(b"partial")
        wait_until("the part read", lambda: b"partial" in endpoint.seen)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # an RST, not a FIN
        wait_until("the part answered", lambda: endpoint.answered == [b"partial"])
        assert ask(server, b"next\n") == b"echo next\n"
        started = time.monotonic()
        server.stop(grace=10)  # the reset connection is gone: nothing to wait for
        assert time.monotonic() - started < 2
    assert counted == []


def test_a_client_that_closes_before_a_whole_request_gets_no_answer(tmp_path: Path) -> None:
    """For an endpoint whose request must end with a newline even at end of file (none of
    recd's own: theirs end at end of file too), a half-close without one ends the exchange."""
    endpoint = Lines(eof_ends=False)
    with serve(endpoint, unix_listener(tmp_path / "s")) as (server, counted):
        with connect(server) as client:
            client.sendall(b"no newline")
            client.shutdown(socket.SHUT_WR)
            assert read_all(client) == b""  # closed at once, without a reply
        assert ask(server, b"whole\n") == b"echo whole\n"
        started = time.monotonic()
        server.stop(grace=10)
        assert time.monotonic() - started < 2
    assert endpoint.answered == [b"whole\n"]
    assert counted == []


class FullOnce(socket.socket):
    """An accepted connection whose first write finds the kernel's buffer full (EAGAIN, as
    under memory pressure after the socket was reported writable)."""

    full = True

    def send(self, data: object, flags: int = 0) -> int:
        if self.full:
            self.full = False
            raise BlockingIOError(11, "Resource temporarily unavailable")
        return super().send(data, flags)  # type: ignore[arg-type]


class FullOnceListener(socket.socket):
    def accept(self) -> tuple[socket.socket, object]:
        fd, address = self._accept()  # type: ignore[attr-defined]
        return FullOnce(self.family, self.type, self.proto, fileno=fd), address


def test_a_write_that_would_block_waits_for_the_socket_and_the_reply_arrives_whole() -> None:
    """Nothing real makes a first write of a reply hit EAGAIN on demand: a socket whose
    first ``send`` raises it stands in."""
    listener = FullOnceListener(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    request = b"x" * 1000 + b"\n"
    with serve(Lines(), listener) as (server, counted):
        assert ask(server, request) == b"echo " + request
    assert counted == []


# -- HTTP ---------------------------------------------------------------------------------------


def show_headers(environ: dict[str, object], start_response: StartResponse) -> Iterable[bytes]:
    """A WSGI app: the path, the query and the HTTP_* variables it was given, one a line."""
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("a bug in the app")
    start_response("200 OK", [("Content-Type", "text/plain")])
    lines = [f"{environ['PATH_INFO']}?{environ['QUERY_STRING']}"]
    lines += sorted(f"{k}={v}" for k, v in environ.items() if k.startswith("HTTP_"))
    return ["\n".join(lines).encode()]


def test_http_header_lines_without_a_colon_are_ignored() -> None:
    with serve(WsgiEndpoint("metrics", show_headers)) as (server, _):
        reply = ask(
            server,
            b"GET /a%20b?x=1 HTTP/1.1\r\nHost: recd\r\nno colon on this line\r\n"
            b"X-Forwarded-For: 10.0.0.1\r\n\r\n",
        )
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert body == b"/a b?x=1\nHTTP_HOST=recd\nHTTP_X_FORWARDED_FOR=10.0.0.1"


def test_an_app_that_raises_drops_its_client_logs_the_traceback_and_serving_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with serve(WsgiEndpoint("metrics", show_headers)) as (server, counted):
        assert ask(server, b"GET /boom HTTP/1.1\r\n\r\n") == b""  # closed, no reply
        assert ask(server, b"GET /ok HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200 OK\r\n")
    failures = [r for r in caplog.records if r.name == "recd.daemon.serving"]
    assert [r.getMessage() for r in failures] == ["metrics: cannot answer a request"]
    assert failures[0].exc_info is not None
    assert str(failures[0].exc_info[1]) == "a bug in the app"
    assert counted == []


# -- the log ------------------------------------------------------------------------------------


def test_a_burst_of_refusals_is_logged_once_then_summed_up_once_it_is_over(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The first refusal of a burst is logged; once none came for the burst's quiet time, one
    line sums it up, unless it was a burst of one (its first line said it all)."""
    monkeypatch.setattr(serving, "Burst", functools.partial(Burst, quiet=0.3))  # not 10 s

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "recd.daemon.serving"]

    refused = (
        b"refused: recd is busy: too few file descriptors left (kept for erasing); "
        b"try again shortly\n"
    )
    first = (
        "lines: refusing connections: too few file descriptors left (kept for erasing); "
        "recd_connections_refused_total counts them (logged once per burst)"
    )
    summary = (
        "lines: 3 connections refused for want of file descriptors in 0 s, and none for 0.3 s now"
    )
    with serve(Lines(), free=lambda: 0) as (server, counted):
        for _ in range(3):
            assert ask(server, b"ping\n") == refused
        assert lines() == [first]
        wait_until("the burst summed up", lambda: len(lines()) == 2)
        assert lines() == [first, summary]
        assert ask(server, b"ping\n") == refused  # a new burst, of one
        time.sleep(1.0)  # three times its quiet time: over, and nothing to sum up
    assert lines() == [first, summary, first]
    assert counted == ["descriptors"] * 4
