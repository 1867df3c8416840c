"""client.call against real Unix sockets: a fake daemon thread, a dead socket file, no socket.

Every failure is one ``RecdError`` with the exit code recctl returns and a message asserted
word for word.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recd.cli import client
from recd.errors import DaemonUnavailable, ExitCode, PermissionDenied, RecdError
from recd.protocol import ErrorKind, ProtocolError, RemoteError, Reply, Request
from tests.fakedaemon import CLOSE, NOBODY, Delay, ReadPart, socket_path

STATUS = Request("status")


def failure(path: Path, request: Request = STATUS, timeout: float | None = 30.0) -> RecdError:
    with pytest.raises(RecdError) as exc:
        client.call(path, request, timeout=timeout)
    return exc.value


# the exchange -----------------------------------------------------------------------------------


def test_sends_one_request_and_returns_the_reply(daemon):
    daemon.answer = Reply.success([{"id": "a"}], truncated=True)
    request = Request("ls", {"licence": "Zoë", "limit": 5})
    assert client.call(daemon.path, request) == Reply(True, [{"id": "a"}], truncated=True)
    assert daemon.request == request
    assert daemon.raw == [b'{"v":1,"command":"ls","args":{"licence":"Zo\\u00eb","limit":5}}\n']


def test_an_error_reply_is_returned_for_the_caller_to_unwrap(daemon):
    daemon.answer = Reply.failure(ErrorKind.NOT_FOUND, "no recording with id 1f2e")
    reply = client.call(daemon.path, Request("show", {"id": "1f2e"}))
    assert reply == Reply(False, error=ErrorKind.NOT_FOUND, message="no recording with id 1f2e")
    with pytest.raises(RemoteError) as exc:
        reply.unwrap()
    assert (str(exc.value), exc.value.exit_code) == ("no recording with id 1f2e", 3)


def test_waits_without_a_timeout(daemon):
    daemon.answer = Reply.success({"done": True})
    assert client.call(daemon.path, Request("scan"), timeout=None).result == {"done": True}


def test_reads_a_large_reply_to_the_end(daemon):
    rows = [{"id": f"{n:020x}", "location": "/srv/rec/" + "x" * 200} for n in range(20000)]
    daemon.answer = Reply.success(rows)
    assert client.call(daemon.path, Request("ls")).result == rows


def test_a_reply_over_the_limit_is_refused(daemon, monkeypatch):
    assert client.MAX_REPLY == 256 * 1024 * 1024
    monkeypatch.setattr(client, "MAX_REPLY", 2 * 1024 * 1024)  # the same code, less memory
    daemon.answer = Reply.success("x" * (3 * 1024 * 1024))
    error = failure(daemon.path)
    assert (type(error), error.exit_code) == (RecdError, 1)
    assert str(error) == (
        "recd's reply is larger than 2 MiB; ask for less (for a listing, a smaller --limit)"
    )


def test_a_refused_request_still_gets_its_reply(daemon):
    # The daemon reads part of an oversized request, answers why and closes: recctl's write
    # fails with EPIPE, and the reply is read all the same.
    daemon.answer = ReadPart(
        65536, Reply.failure(ErrorKind.USAGE, "the request is larger than 65536 bytes")
    )
    reply = client.call(daemon.path, Request("ls", {"licence": "x" * (8 << 20)}))
    assert reply == Reply.failure(ErrorKind.USAGE, "the request is larger than 65536 bytes")


# failures ---------------------------------------------------------------------------------------


def test_no_socket_means_the_daemon_is_not_running(sock_dir):
    path = sock_dir / "recd.sock"
    error = failure(path)
    assert type(error) is DaemonUnavailable
    assert error.exit_code == ExitCode.UNAVAILABLE
    assert int(error.exit_code) == 69
    assert str(error) == (
        f"recd is not running: cannot connect to {path} (no such socket); "
        "start it with `systemctl start recd`"
    )


def test_a_socket_nobody_listens_on_is_refused(sock_dir):
    path = sock_dir / "recd.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))  # bound, never listening: what a crashed daemon leaves behind
    error = failure(path)
    assert (type(error), error.exit_code) == (DaemonUnavailable, 69)
    assert str(error) == (
        f"recd is not running: cannot connect to {path} (connection refused); "
        "start it with `systemctl start recd`"
    )


def test_a_path_through_a_file_is_not_running(sock_dir):
    (sock_dir / "run").touch()
    path = sock_dir / "run" / "recd.sock"
    error = failure(path)
    assert (type(error), error.exit_code) == (DaemonUnavailable, 69)
    assert str(error) == (
        f"recd is not running: cannot connect to {path} (a part of the path is not a "
        "directory); start it with `systemctl start recd`"
    )


def test_a_full_backlog_is_unavailable(sock_dir):
    path = socket_path(sock_dir)
    with socket.socket(socket.AF_UNIX) as busy, socket.socket(socket.AF_UNIX) as first:
        busy.bind(str(path))
        busy.listen(0)  # accepts one pending connection and never serves it
        first.connect(str(path))
        error = failure(path)
    assert (type(error), error.exit_code) == (DaemonUnavailable, 69)
    assert str(error) == (
        f"recd is not accepting connections on {path} (its queue is full); try again shortly"
    )


def test_other_connect_errors_name_the_socket(sock_dir):
    path = sock_dir / ("x" * 120)
    error = failure(path)
    assert (type(error), error.exit_code) == (RecdError, 1)
    assert str(error) == f"cannot connect to recd at {path}: AF_UNIX path too long"


def test_a_daemon_that_does_not_answer_times_out(daemon):
    daemon.answer = Delay(30)
    started = time.monotonic()
    error = failure(daemon.path, timeout=0.2)
    assert time.monotonic() - started < 5
    assert (type(error), error.exit_code) == (RecdError, 1)
    assert str(error) == (
        f"recd did not answer within 0.2 s on {daemon.path}; it may be busy or stuck "
        "(see `journalctl -u recd`)"
    )


def test_the_timeout_covers_the_whole_exchange(daemon):
    # Spent before the request is sent: no read may start.
    error = failure(daemon.path, timeout=0.0)
    assert str(error).startswith("recd did not answer within 0 s on ")


def test_a_connection_closed_without_a_reply(daemon):
    daemon.answer = CLOSE
    error = failure(daemon.path)
    assert (type(error), error.exit_code) == (RecdError, 1)
    assert str(error) == "recd closed the connection without replying (see `journalctl -u recd`)"


def test_a_connection_reset_without_a_reply(daemon):
    daemon.answer = ReadPart(1, CLOSE)  # closed with the request unread: ECONNRESET
    error = failure(daemon.path)
    assert str(error) == "recd closed the connection without replying (see `journalctl -u recd`)"


@pytest.mark.parametrize(
    ("answer", "message", "kind"),
    [
        (b"hello\n", "the reply is not JSON: Expecting value: line 1 column 1 (char 0)", "usage"),
        (
            b'{"v": 1, "ok": tr',
            "the reply is not JSON: Expecting value: line 1 column 16 (char 15)",
            "usage",
        ),
        (b"[1]\n", "the reply is not a JSON object", "usage"),
        (
            b'{"v": 2, "ok": true}\n',
            "the reply speaks admin protocol version 2; this recd speaks 1: use the recctl "
            "that came with this recd",
            "unsupported",
        ),
        (b'{"v": 1, "ok": false}\n', "the reply is neither a result nor an error", "failed"),
    ],
)
def test_a_reply_that_is_not_the_protocol(daemon, answer, message, kind):
    daemon.answer = answer
    error = failure(daemon.path)
    assert type(error) is ProtocolError
    assert (str(error), error.kind, error.exit_code) == (message, kind, 1)


@contextlib.contextmanager
def as_nobody() -> Iterator[None]:
    """Run as uid/gid 65534 (nobody) until the block ends; the real uid stays root's."""
    groups = os.getgroups()
    os.setgroups([])
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(groups)


@pytest.mark.root
def test_a_socket_the_caller_may_not_use(private_daemon):
    """A real EACCES from connect(2), with the effective uid nobody's."""
    with as_nobody():
        with pytest.raises(PermissionDenied) as exc:
            client.call(private_daemon.path, STATUS)
    assert exc.value.exit_code == ExitCode.NO_PERMISSION
    assert int(exc.value.exit_code) == 77
    assert str(exc.value) == (
        f"permission denied: cannot connect to {private_daemon.path}; run recctl as root or as "
        "a member of recd's admin group (daemon.admin_group, default recd-admin)"
    )
    assert private_daemon.requests == []
