"""recctl's end of the admin socket: connect, send one request, return the reply or raise.

One call is one connection (see ``recd.protocol``): connect to the daemon's Unix socket, send
the request, half-close, read the reply to end of file and decode it. Every way this can fail
becomes one ``RecdError`` whose message says what happened and what to do, and whose exit code
``recctl`` returns: the daemon not running is ``DaemonUnavailable`` (69), a socket the caller
may not use is ``PermissionDenied`` (77), anything else is a failure (1). A reply that is not
valid protocol raises ``ProtocolError``. An error the daemon *replied* with is not raised here:
``Reply.unwrap()`` raises it, so the caller decides when.

No argparse and no printing here; the timeout covers the whole exchange, not each read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import socket as _socket
import time
from pathlib import Path

from recd.errors import DaemonUnavailable, PermissionDenied, RecdError, os_reason
from recd.protocol import Reply, Request, decode_reply, encode_request

#: The largest reply read: roughly a million `ls` rows with short paths, fewer with long ones.
MAX_REPLY = 256 * 1024 * 1024
CHUNK = 1024 * 1024
DEFAULT_TIMEOUT = 30.0
#: Seconds to keep trying while the daemon's backlog is full (a burst of connections, or a
#: flood it is shedding): it empties within milliseconds unless recd is stuck.
CONNECT_PATIENCE = 1.0
ADMIN_GROUP = "recd-admin"
#: Descriptors read with one message (the daemon sends at most 250 per message; the kernel's
#: limit is 253), and received close-on-exec.
FDS_PER_MESSAGE = 253
_CLOEXEC = getattr(_socket, "MSG_CMSG_CLOEXEC", 0x40000000)

_NOT_RUNNING = {
    errno.ENOENT: "no such socket",
    errno.ECONNREFUSED: "connection refused",
    errno.ENOTDIR: "a part of the path is not a directory",
}


def _connect_error(path: Path, exc: OSError) -> RecdError:
    """The one-line error for a failed ``connect`` to ``path``."""
    if exc.errno in _NOT_RUNNING:
        return DaemonUnavailable(
            f"recd is not running: cannot connect to {path} ({_NOT_RUNNING[exc.errno]}); "
            "start it with `systemctl start recd`"
        )
    if exc.errno == errno.EAGAIN:
        return DaemonUnavailable(
            f"recd is not accepting connections on {path} (its queue is full); try again shortly"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return PermissionDenied(
            f"permission denied: cannot connect to {path}; run recctl as root or as a member "
            f"of recd's admin group (daemon.admin_group, default {ADMIN_GROUP})"
        )
    reason = os_reason(exc)
    return RecdError(f"cannot connect to recd at {path}: {reason}")


class _Exchange:
    """One connected socket with a deadline over the whole exchange."""

    def __init__(self, sock: _socket.socket, timeout: float | None, fds: bool = False) -> None:
        self.sock = sock
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.want_fds = fds
        self.fds: list[int] = []  # received beside the reply (SCM_RIGHTS), when wanted

    def _arm(self) -> None:
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.sock.settimeout(remaining)

    def send(self, data: bytes) -> None:
        try:
            self._arm()
            self.sock.sendall(data)
            self.sock.shutdown(_socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            # The daemon stopped reading early (a request it refuses, or it is stopping): it
            # may still have written why, so read on.
            pass

    def _recv(self) -> bytes:
        if not self.want_fds:
            # Descriptors nobody asked for are discarded by the kernel with a plain recv.
            return self.sock.recv(CHUNK)
        data, fds, _, _ = _socket.recv_fds(self.sock, CHUNK, FDS_PER_MESSAGE, _CLOEXEC)
        self.fds.extend(fds)
        return data

    def close_fds(self) -> None:
        fds, self.fds = self.fds, []
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def receive(self) -> bytes:
        data = bytearray()
        while True:
            self._arm()
            try:
                chunk = self._recv()
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return bytes(data)
            data += chunk
            if len(data) > MAX_REPLY:
                raise RecdError(
                    f"recd's reply is larger than {MAX_REPLY // (1024 * 1024)} MiB; "
                    "ask for less (for a listing, a smaller --limit)"
                )


def _connect(sock: _socket.socket, path: Path, timeout: float | None) -> None:
    patience = CONNECT_PATIENCE if timeout is None else min(timeout, CONNECT_PATIENCE)
    give_up = time.monotonic() + patience
    while True:
        try:
            sock.connect(str(path))
        except BlockingIOError:
            if time.monotonic() >= give_up:
                raise
            time.sleep(0.01)
        else:
            return


def call(
    socket: Path,
    request: Request,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    fds: bool = False,
) -> Reply:
    """Send ``request`` to the daemon listening on ``socket``; its decoded reply.

    ``timeout`` is in seconds over the whole exchange (0: already spent); ``None`` waits as long as
    the daemon takes, for commands such as a full scan. ``fds``: keep the file descriptors the
    daemon sends beside the reply, in ``Reply.fds`` (the caller closes them); without it they are
    never received. Raises ``DaemonUnavailable``, ``PermissionDenied`` or ``RecdError`` when there
    is no usable reply, and ``ProtocolError`` when the reply is not valid protocol.
    """
    with _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM) as sock:
        exchange = _Exchange(sock, timeout, fds)
        try:
            return _call(sock, socket, request, timeout, exchange)
        except BaseException:
            exchange.close_fds()
            raise


def _call(
    sock: _socket.socket,
    socket: Path,
    request: Request,
    timeout: float | None,
    exchange: _Exchange,
) -> Reply:
    try:
        # A Unix socket connects at once or fails at once (EAGAIN when the daemon's
        # backlog is full, tried again for CONNECT_PATIENCE), so only the exchange below
        # can time out.
        sock.settimeout(timeout)
        _connect(sock, socket, timeout)
    except OSError as exc:
        raise _connect_error(socket, exc) from None
    try:
        exchange.send(encode_request(request))
        data = exchange.receive()
    except TimeoutError:
        raise RecdError(
            f"recd did not answer within {timeout:g} s on {socket}; it may be busy or "
            "stuck (see `journalctl -u recd`)"
        ) from None
    # What a peer can cause, EPIPE and ECONNRESET, _Exchange handles; this is the kernel's.
    except OSError as exc:  # pragma: no cover (no way to provoke it on a Unix socket)
        reason = os_reason(exc)
        raise RecdError(f"lost the connection to recd at {socket}: {reason}") from None
    if not data:
        raise RecdError("recd closed the connection without replying (see `journalctl -u recd`)")
    reply = decode_reply(data)
    if exchange.fds:
        return dataclasses.replace(reply, fds=tuple(exchange.fds))
    return reply
