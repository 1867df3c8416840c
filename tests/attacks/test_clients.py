"""Clients that hold recd's resources: floods of idle connections, slowloris, a client that never
reads its reply, a huge request, half-closes, descriptors run out, a stop with clients stuck.

The first tests attack the admin socket and the metrics port in-process with short limits (real
sockets, real threads); the last floods a real `recd` subprocess on its default limits while a
recording falls due (issue 13, point 10).
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recd.cli.client import call
from recd.config.types import Listen
from recd.core.admission import Limits
from recd.core.model import Mode
from recd.daemon.collector import Snapshot
from recd.daemon.control import Caller, ControlServer
from recd.daemon.metrics import Metrics
from recd.daemon.serving import BoundedServer
from recd.protocol import ErrorKind, RemoteError, Reply, Request, decode_reply, encode_request
from tests.e2e.helpers import env, recctl, wait_until, write_due_at, write_estate
from tests.fakes import NotifyListener

GROUP = "root" if os.geteuid() == 0 else str(os.getegid())
SHORT = Limits(connections=4, idle=1.5, request=3.0, reply=3.0, max_request=64 * 1024)


def echo(request: Request, caller: Caller) -> Reply:
    if request.command == "big":
        return Reply.success({"data": "x" * (16 * 1024 * 1024)})
    return Reply.success({"command": request.command})


class Gate:
    """A handler that holds every request until ``open``: the requests recd is answering."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.waiting = 0

    def __call__(self, request: Request, caller: Caller) -> Reply:
        self.waiting += 1
        self.event.wait(30)
        return Reply.success({"command": request.command})


@pytest.fixture
def sockdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="recd-attack-"))
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


@contextlib.contextmanager
def admin(
    path: Path, handler: object = echo, limits: Limits = SHORT
) -> Iterator[tuple[ControlServer, list[str]]]:
    counted: list[str] = []
    server = ControlServer(path, GROUP, handler, limits=limits, count=counted.append)  # type: ignore[arg-type]
    server.start()
    try:
        yield server, counted
    finally:
        server.stop()


def connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(path))
    return sock


def read_all(sock: socket.socket, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    data = bytearray()
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return bytes(data)


def status_ok(path: Path) -> bool:
    result: object = call(path, Request("status", {}), timeout=5).unwrap()
    return result == {"command": "status"}


# -- slow clients -------------------------------------------------------------------------------


def test_slowloris_is_dropped_at_the_request_deadline(sockdir: Path) -> None:
    """One byte a second never pauses long enough for the idle timeout; the request deadline
    still ends it, with a reply saying why, while other clients are served."""
    with admin(sockdir / "recd.sock") as (server, counted), connect(server.path) as slow:
        started = time.monotonic()
        closed = None
        for byte in encode_request(Request("status", {}))[:-1]:
            try:
                slow.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            assert status_ok(server.path)
            if select.select([slow], [], [], 1.0)[0]:
                closed = time.monotonic() - started
                break
        reply = decode_reply(read_all(slow))
    assert closed is not None and 2.9 <= closed < 4.5, closed
    assert reply == Reply.failure(
        ErrorKind.UNAVAILABLE,
        "recd dropped the connection: it did not send its request within 3 s",
    )
    assert counted == ["timeout"]


def test_a_client_that_never_reads_its_reply_is_dropped(sockdir: Path) -> None:
    """A 16 MiB reply fills the socket's buffers; the client not taking it is dropped after the
    idle pause and holds no worker and no slot meanwhile."""
    with admin(sockdir / "recd.sock") as (server, counted), connect(server.path) as stuck:
        stuck.sendall(encode_request(Request("big", {})))
        stuck.shutdown(socket.SHUT_WR)
        for _ in range(10):  # 10 workers' worth of requests go through while it is stuck
            assert status_ok(server.path)
        wait_until("the stuck reader dropped", lambda: counted == ["timeout"], timeout=10)
        data = read_all(stuck)
    assert 0 < len(data) < 16 * 1024 * 1024  # what the kernel had buffered, then the end


def test_a_huge_request_is_refused_after_reading_a_bounded_amount(sockdir: Path) -> None:
    with admin(sockdir / "recd.sock") as (server, _), connect(server.path) as client:
        sent = 0
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, TimeoutError):
            while sent < 256 * 1024 * 1024:
                sent += client.send(b"x" * 1024 * 1024)
        reply = decode_reply(read_all(client))
        assert status_ok(server.path)
    assert sent < 16 * 1024 * 1024  # recd stopped reading: the sender could not go on
    assert reply == Reply.failure(ErrorKind.USAGE, "the request is larger than 65536 bytes")


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        (b"", "empty request"),
        (
            b'{"version": 1, "comm',
            "the request is not JSON: Unterminated string starting at: line 1 column 16 (char 15)",
        ),
    ],
)
def test_a_half_close_ends_the_request(sockdir: Path, sent: bytes, message: str | None) -> None:
    """A client that half-closes has said all it will: recd answers what it got at once."""
    with admin(sockdir / "recd.sock") as (server, counted), connect(server.path) as client:
        client.sendall(sent)
        client.shutdown(socket.SHUT_WR)
        started = time.monotonic()
        reply = decode_reply(read_all(client))
        assert time.monotonic() - started < 1.0
    assert (reply.ok, reply.message) == (False, message)
    assert counted == []


# -- too many clients ---------------------------------------------------------------------------


def test_at_the_limit_a_newcomer_displaces_the_slowest_idle_client(sockdir: Path) -> None:
    with admin(sockdir / "recd.sock") as (server, counted):
        idle = [connect(server.path) for _ in range(4)]
        time.sleep(0.1)
        try:
            assert status_ok(server.path)  # at the limit: the oldest idle one made room
            assert select.select(idle[:1], [], [], 5)[0] == idle[:1]
            assert decode_reply(read_all(idle[0])) == Reply.failure(
                ErrorKind.UNAVAILABLE,
                "recd dropped the connection: it was the slowest to send its request of 4 held",
            )
            assert select.select(idle[1:], [], [], 0.2)[0] == []
        finally:
            for sock in idle:
                sock.close()
    assert counted == ["limit"]


def test_when_every_slot_is_being_answered_the_excess_is_refused_and_logged_once(
    sockdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gate = Gate()
    with admin(sockdir / "recd.sock", gate) as (server, counted):
        held = [connect(server.path) for _ in range(4)]
        try:
            for sock in held:
                sock.sendall(encode_request(Request("wait", {})))
            wait_until("4 requests being answered", lambda: gate.waiting == 4)
            caplog.clear()
            for _ in range(50):
                with pytest.raises(RemoteError) as exc:
                    call(server.path, Request("status", {}), timeout=5).unwrap()
            assert str(exc.value) == (
                "recd is busy: too many connections (4, the limit); try again shortly"
            )
            assert exc.value.exit_code == 69
            gate.event.set()
            for sock in held:
                assert decode_reply(read_all(sock)) == Reply.success({"command": "wait"})
        finally:
            gate.event.set()
            for sock in held:
                sock.close()
    assert counted == ["limit"] * 50
    lines = [r.getMessage() for r in caplog.records if r.name == "recd.daemon.serving"]
    assert lines == [
        "admin socket: refusing connections: too many connections (4, the limit); "
        "recd_connections_refused_total counts them (logged once per burst)"
    ]


class Echo:
    name = "echo"

    def complete(self, data: bytes, eof: bool) -> bool:
        return eof or b"\n" in data

    def answer(self, conn: socket.socket, request: bytes) -> bytes:
        return request

    def refusal(self, why: str, *, busy: bool) -> bytes:
        return f"refused: {why}\n".encode()


@contextlib.contextmanager
def echo_server(free: object, limits: Limits = SHORT) -> Iterator[tuple[BoundedServer, list[str]]]:
    listener = socket.create_server(("127.0.0.1", 0))
    counted: list[str] = []
    server = BoundedServer(listener, Echo(), limits, count=counted.append, free=free)  # type: ignore[arg-type]
    server.start()
    try:
        yield server, counted
    finally:
        server.stop()


def ask(server: BoundedServer, data: bytes = b"ping\n") -> bytes:
    with socket.create_connection(server.listener.getsockname(), timeout=10) as sock:
        sock.sendall(data)
        return read_all(sock)


def test_descriptors_kept_for_erasing_are_never_taken_by_a_connection() -> None:
    free = [1000]
    with echo_server(lambda: free[0]) as (server, counted):
        assert ask(server) == b"ping\n"
        free[0] = SHORT.fd_reserve
        assert ask(server) == (
            b"refused: recd is busy: too few file descriptors left (kept for erasing); "
            b"try again shortly\n"
        )
        free[0] = 1000
        assert ask(server) == b"ping\n"
    assert counted == ["descriptors"]


def test_accept_failing_with_emfile_backs_off_with_one_line_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With no descriptor left even for ``accept``, recd waits and tries again: one log line,
    no traceback, no busy loop; the clients queued meanwhile are served afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with echo_server(lambda: 10**6) as (server, _):
        clients = [socket.socket() for _ in range(SHORT.connections)]
        used = len(os.listdir("/proc/self/fd"))
        fillers: list[int] = []
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (used + 8, hard))
            with contextlib.suppress(OSError):
                while True:
                    fillers.append(os.open(os.devnull, os.O_RDONLY))
            caplog.clear()
            for sock in clients:
                sock.settimeout(10)
                sock.connect(server.listener.getsockname())
                sock.sendall(b"ping\n")
            time.sleep(1.5)  # accept fails, backs off, fails again
        finally:
            for fd in fillers:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        try:
            assert [read_all(sock) for sock in clients] == [b"ping\n"] * len(clients)
        finally:
            for sock in clients:
                sock.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "recd.daemon.serving"]
    assert lines == [
        "echo: cannot accept connections: Too many open files; trying again every 1 s "
        "(logged once per burst)"
    ]
    assert not any(r.exc_info for r in caplog.records)


# -- stopping -----------------------------------------------------------------------------------


def test_stop_never_waits_on_a_client(sockdir: Path) -> None:
    """Idle clients, a client not reading a 16 MiB reply and a request recd itself is still
    answering: stop returns within its grace and the socket file is gone."""
    gate = Gate()
    server = ControlServer(sockdir / "recd.sock", GROUP, gate)
    server.start()
    clients = [connect(server.path) for _ in range(20)]
    try:
        clients[0].sendall(encode_request(Request("wait", {})))
        wait_until("a request being answered", lambda: gate.waiting == 1)
        started = time.monotonic()
        server.stop()
        took = time.monotonic() - started
        assert took < 2.0, took
        assert not server.path.exists()
        assert select.select(clients[1:], [], [], 5)[0] == clients[1:]  # all closed
    finally:
        gate.event.set()
        for sock in clients:
            sock.close()


# -- the metrics port ---------------------------------------------------------------------------


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    m = Metrics(lambda: Snapshot((), 0, 0, None, (), None, 0, {}, Mode.ENFORCE))
    m.serve(Listen("127.0.0.1", 0), limits=SHORT)
    yield m
    m.close()


def http(m: Metrics, data: bytes, *, half_close: bool = True) -> bytes:
    assert m.address is not None
    with socket.create_connection(m.address, timeout=10) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return read_all(sock)


def test_metrics_slowloris_gets_408(metrics: Metrics) -> None:
    assert metrics.address is not None
    with socket.create_connection(metrics.address, timeout=10) as slow:
        for byte in b"GET /metrics HTTP/1.1\r\n":
            with contextlib.suppress(OSError):
                slow.send(bytes([byte]))
            if select.select([slow], [], [], 1.0)[0]:
                break
        reply = read_all(slow)
    assert reply.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), reply
    assert reply.endswith(
        b"\r\n\r\nrecd dropped the connection: it did not send its request within 3 s\n"
    )
    assert (
        metrics.registry.get_sample_value(
            "recd_connections_refused_total", {"endpoint": "metrics", "reason": "timeout"}
        )
        == 1.0
    )


def test_metrics_huge_head_gets_431(metrics: Metrics) -> None:
    reply = http(metrics, b"GET /metrics HTTP/1.1\r\nX: " + b"y" * 100_000, half_close=False)
    assert reply.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), reply[:80]


@pytest.mark.parametrize(
    ("sent", "status"),
    [
        (b"GET /metrics HTTP/1.1\r\nHost: x", b"200 OK"),  # the head cut short by a half-close
        (b"GET /met", b"400 Bad Request"),
        (b"", b"400 Bad Request"),
    ],
)
def test_metrics_half_close(metrics: Metrics, sent: bytes, status: bytes) -> None:
    assert http(metrics, sent).startswith(b"HTTP/1.1 " + status + b"\r\n")


def test_metrics_flood_displaces_idle_connections_and_scrapes_go_on(metrics: Metrics) -> None:
    assert metrics.address is not None
    idle = [socket.create_connection(metrics.address, timeout=10) for _ in range(200)]
    try:
        reply = http(metrics, b"GET /metrics HTTP/1.1\r\n\r\n", half_close=False)
        assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\nrecd_held_recordings 0.0\n" in reply
    finally:
        for sock in idle:
            sock.close()
    refused = metrics.registry.get_sample_value(
        "recd_connections_refused_total", {"endpoint": "metrics", "reason": "limit"}
    )
    assert refused is not None and refused >= 196


# -- a real daemon under a flood ----------------------------------------------------------------

FLOOD = 1100
DAEMON_NOFILE = 1024  # systemd's default soft limit, made the hard one too: nothing to raise


def start_recd(config: Path, listener: NotifyListener, log: Path) -> subprocess.Popen[bytes]:
    """`python -m recd` with RLIMIT_NOFILE 1024:1024, as a unit with LimitNOFILE=1024."""
    code = (
        "import resource, runpy, sys; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({DAEMON_NOFILE}, {DAEMON_NOFILE})); "
        f"sys.argv = ['recd', '--config', {str(config)!r}]; "
        "runpy.run_module('recd', run_name='__main__', alter_sys=True)"
    )
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-c", code],
            env={**env(), "NOTIFY_SOCKET": listener.path},
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip


class Flood:
    """Keeps ``count`` idle connections open to each address: one that recd closes is opened
    again at once, as an attacker would."""

    def __init__(self, unix: Path, tcp: tuple[str, int], count: int) -> None:
        self.unix, self.tcp, self.count = unix, tcp, count
        self.socks: list[tuple[socket.socket, bool]] = []
        self.reopened = 0
        self.stopped = threading.Event()
        self.ready = threading.Event()  # every connection opened once
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, unix: bool) -> socket.socket | None:
        sock = socket.socket(socket.AF_UNIX if unix else socket.AF_INET)
        sock.settimeout(2)
        give_up = time.monotonic() + 2
        while True:
            try:
                sock.connect(str(self.unix) if unix else self.tcp)
            except BlockingIOError:  # the Unix backlog is full: an attacker tries again
                if time.monotonic() < give_up:
                    continue
                sock.close()
                return None
            except OSError:
                sock.close()
                return None
            sock.setblocking(False)
            return sock

    def _run(self) -> None:
        for unix in (True, False):
            for _ in range(self.count):
                if (sock := self._open(unix)) is not None:
                    self.socks.append((sock, unix))
        self.ready.set()
        while not self.stopped.is_set():
            poll = select.poll()  # select() stops at descriptor 1023
            for sock, _ in self.socks:
                poll.register(sock, select.POLLIN)
            ready = {fd for fd, _ in poll.poll(200)}
            kept = []
            for sock, unix in self.socks:
                if sock.fileno() in ready:
                    sock.close()
                    if (again := self._open(unix)) is not None:
                        kept.append((again, unix))
                        self.reopened += 1
                else:
                    kept.append((sock, unix))
            self.socks = kept
            time.sleep(0.05)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(10)
        for sock, _ in self.socks:
            sock.close()


@pytest.fixture
def many_descriptors() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * FLOOD + 1024
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"needs {wanted} file descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_daemon_flooded_on_both_endpoints_erases_on_time_answers_and_stops_at_once(
    tmp_path: Path, many_descriptors: None
) -> None:
    """1,100 idle connections to the admin socket and 1,100 to the metrics port, re-opened as
    recd closes them, on a recd limited to 1,024 descriptors: a recording falling due meanwhile
    is erased on time, `recctl status` answers, the metrics scrape, the log keeps to a few
    lines without a traceback, and SIGTERM ends recd in well under systemd's timeout."""
    config = write_estate(tmp_path, listen="127.0.0.1:0")
    due = write_due_at(tmp_path, "L1/due.wav", time.time() + 15)
    log = tmp_path / "recd.log"
    listener = NotifyListener(str(tmp_path / "notify"))
    proc = start_recd(config, listener, log)
    flood = None
    try:
        listener.wait_for("READY=1", timeout=60)
        found = re.search(r"metrics served at http://127\.0\.0\.1:(\d+)/metrics", log.read_text())
        assert found, log.read_text()
        port = int(found[1])
        flood = Flood(tmp_path / "recd.sock", ("127.0.0.1", port), FLOOD)
        flood.thread.start()
        assert flood.ready.wait(60)
        opened = len(flood.socks)
        time.sleep(1)
        status = recctl("--socket", str(tmp_path / "recd.sock"), "status")
        assert status.returncode == 0, status.stderr
        scraped = scrape_once(port)
        wait_until(
            "the due recording erased",
            lambda: not (tmp_path / "recordings/L1/due.wav").exists(),
            timeout=max(5.0, due.timestamp() - time.time() + 5),
        )
        late = time.time() - due.timestamp()
        assert late < 3.0, f"erased {late:.1f} s after its deadline"
        assert flood.reopened > 0  # recd closed connections, and the flood came back
        status = recctl("--socket", str(tmp_path / "recd.sock"), "status")
        assert status.returncode == 0, status.stderr
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        took = time.monotonic() - started
    finally:
        if flood is not None:
            flood.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()
    assert took < 5.0, f"SIGTERM took {took:.1f} s"
    assert opened > 1.9 * FLOOD  # the attacker got its connections (and recd shed them)
    assert 'recd_connections_refused_total{endpoint="metrics",reason="limit"}' in scraped
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    assert len(text.splitlines()) < 30, text[-3000:]
    assert len(text) < 8 * 1024


def scrape_once(port: int) -> str:
    """One scrape through the flood: a scraper's request is never the slowest, so never the one
    displaced; a refusal would show as an error here."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: recd\r\n\r\n")
        reply = read_all(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
    return body.decode()
