"""The daemon's end of the admin socket: who is calling, may they, decode, answer, encode.

The socket is created under a temporary name, given mode 0660 and the admin group, and then
renamed into place, so it is never reachable with looser permissions. Connections are served
by ``recd.daemon.serving``: one thread reads every request without blocking, within ``LIMITS``
(a few
connections at once, a deadline for the request and for taking the reply, a bounded size), and
a few workers answer them. The caller is identified by ``SO_PEERCRED`` (and its supplementary
groups by ``SO_PEERGROUPS``), checked against ``daemon.admin_group``, and its one request is
handed to the handler with that identity, which the audit log records as the actor. Root and
the daemon's own user are always allowed; the file permissions keep everyone else out before
they can even connect, and this check stands behind them if the mode is loosened.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import logging
import os
import pwd
import secrets
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recd.core.admission import Burst, Limits
from recd.daemon.serving import Answer, BoundedServer, Count
from recd.errors import PermissionDenied, RecdError, StateError, os_reason
from recd.protocol import (
    MAX_REQUEST,
    ErrorKind,
    ProtocolError,
    Reply,
    Request,
    decode_request,
    encode_reply,
    kind_of,
)

logger = logging.getLogger(__name__)

SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)  # Linux >= 4.13
_UCRED = struct.Struct("3i")  # pid, uid, gid
#: recctl sends its request at once and reads its reply to the end; a listing of a million
#: rows (256 MiB at most) still goes in well under ``reply``. Workers: requests that wait for
#: the daemon's loop (a scan, a request's run) hold one each, reads (status, ls) do not wait.
LIMITS = Limits(connections=32, idle=5.0, request=10.0, reply=120.0, max_request=MAX_REQUEST)
WORKERS = 4
#: Connections the kernel queues before recd accepts them (capped by net.core.somaxconn): a
#: burst waits there, costing recd no descriptor, instead of failing with EAGAIN.
BACKLOG = 512
STOP_GRACE = 1.0  # seconds a reply already being written may take once recd is stopping


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is on the other end of a connection, as the kernel says."""

    pid: int
    uid: int
    gid: int
    groups: tuple[int, ...]

    @property
    def user(self) -> str:
        """The user name recorded as the audit actor (``uid 1234`` if it has none)."""
        try:
            return pwd.getpwuid(self.uid).pw_name
        except KeyError:
            return f"uid {self.uid}"


Handler = Callable[[Request, Caller], Reply]


def peer_of(conn: socket.socket) -> Caller:
    pid, uid, gid = _UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    try:
        raw = conn.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 1024)
        groups = struct.unpack(f"{len(raw) // 4}I", raw[: len(raw) // 4 * 4])
    except OSError:  # more than 256 groups, or an old kernel: ask /proc instead
        groups = _proc_groups(pid)
    return Caller(pid, uid, gid, tuple(groups))


def _proc_groups(pid: int) -> tuple[int, ...]:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Groups:"):
                    return tuple(int(g) for g in line.split()[1:])
    except OSError:
        pass
    return ()


def admin_gid(group: str) -> int | None:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return None


class ControlServer:
    """Serves the admin socket at ``path`` until ``stop``; ``handler`` answers each request.

    ``count`` is told of every connection refused or dropped ("limit", "descriptors",
    "timeout"), for ``recd_connections_refused_total``."""

    def __init__(
        self,
        path: Path,
        admin_group: str,
        handler: Handler,
        *,
        limits: Limits = LIMITS,
        count: Count | None = None,
    ) -> None:
        self.path = path
        self.admin_group = admin_group
        self.handler = handler
        self.gid = admin_gid(admin_group)
        self.limits = limits
        self._count = count
        self._server: BoundedServer | None = None
        self._refusals = Burst()
        self._log_lock = threading.Lock()  # workers log refusals concurrently
        self._ino: tuple[int, int] | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Bind the socket (replacing a stale one) and start accepting connections."""
        self._clear_stale()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        temp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}")
        try:
            sock.bind(str(temp))
            os.chmod(temp, 0o660)
            if self.gid is not None:
                try:
                    os.chown(temp, -1, self.gid)
                except PermissionError as exc:
                    raise StateError(self._not_a_member(exc)) from exc
            os.rename(temp, self.path)
            sock.listen(BACKLOG)
        except (OSError, StateError) as exc:
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(temp)
            if isinstance(exc, StateError):
                raise
            hint = ""
            if exc.errno == errno.ENOENT and not self.path.parent.is_dir():
                hint = f" (create {self.path.parent}; under systemd RuntimeDirectory=recd does)"
            raise StateError(
                f"daemon.socket {self.path}: cannot serve the admin socket: {os_reason(exc)}{hint}"
            ) from exc
        st = os.stat(self.path, follow_symlinks=False)
        self._ino = (st.st_dev, st.st_ino)
        if self.gid is None:
            logger.warning(
                "admin group %s does not exist: only root can use recctl (create it with "
                "`groupadd --system %s`)",
                self.admin_group,
                self.admin_group,
            )
        self._server = BoundedServer(
            sock,
            _AdminEndpoint(self),
            self.limits,
            workers=WORKERS,
            count=self._count,
            thread_name="recd-control",
        )
        self._server.start()
        logger.info("admin socket listening at %s", self.path)

    def _not_a_member(self, exc: OSError) -> str:
        """Why the socket cannot be given the admin group: a process not running as root may
        give its files only to a group it is a member of (run as ``User=recd``, recd must be
        in ``daemon.admin_group``)."""
        user = Caller(os.getpid(), os.geteuid(), os.getegid(), ()).user
        group = self.admin_group
        return (
            f"daemon.socket {self.path}: cannot give the admin socket to group {group} "
            f"(daemon.admin_group): {os_reason(exc)}; the daemon's user {user} must be a member "
            f"of {group}: add SupplementaryGroups={group} to the unit, or run "
            f"`usermod -aG {group} {user}`, then restart recd"
        )

    def stop(self) -> None:
        """Stop accepting, close every connection (a reply being written gets ``STOP_GRACE``
        seconds), remove the socket file; never waits on a client."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stop(STOP_GRACE)
        self._remove_socket_file()

    def _clear_stale(self) -> None:
        """Remove a socket file left by a recd that is gone; refuse if one still answers."""
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateError(f"daemon.socket {self.path}: {os_reason(exc)}") from exc
        if not stat.S_ISSOCK(st.st_mode):
            raise StateError(f"daemon.socket {self.path}: exists and is not a socket; not touched")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            probe.connect(str(self.path))
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                raise StateError(f"daemon.socket {self.path}: {os_reason(exc)}") from exc
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            logger.info("removed a stale admin socket at %s", self.path)
            return
        finally:
            probe.close()
        raise StateError(f"daemon.socket {self.path}: another recd is serving it")

    def _remove_socket_file(self) -> None:
        """Unlink the socket file, but only if it is still ours."""
        try:
            st = os.stat(self.path, follow_symlinks=False)
            if (st.st_dev, st.st_ino) == self._ino:
                os.unlink(self.path)
        except OSError:
            pass

    # -- serving ------------------------------------------------------------------------------

    def answer(self, conn: socket.socket, data: bytes) -> Reply:
        """The reply to the request ``data`` received on ``conn`` (on a worker thread)."""
        caller = peer_of(conn)
        try:
            self.authorise(caller)
            request = decode_request(_request_line(data))
        except RecdError as exc:
            self._log_refusal(caller, exc)
            return Reply.failure(kind_of(exc), str(exc))
        try:
            return self.handler(request, caller)
        except RecdError as exc:
            return Reply.failure(kind_of(exc), str(exc))
        except Exception as exc:
            logger.exception("admin command %r from %s failed", request.command, caller.user)
            return Reply.failure(
                ErrorKind.FAILED,
                f"internal error in recd ({type(exc).__name__}); see `journalctl -u recd`",
            )

    def _log_refusal(self, caller: Caller, exc: RecdError) -> None:
        """A warning for the first refused request of a burst, debug for the rest: a client
        connecting and closing in a loop must not flood the journal."""
        with self._log_lock:
            now = time.monotonic()
            self._refusals.ended(now)  # one quiet for long enough is over: the next is logged
            first = self._refusals.note(now)
        if first:
            logger.warning(
                "admin request from %s (pid %d) refused: %s (more refusals within %g s are "
                "logged at debug level)",
                caller.user,
                caller.pid,
                exc,
                self._refusals.quiet,
            )
        else:
            logger.debug("admin request from %s (pid %d) refused: %s", caller.user, caller.pid, exc)

    def authorise(self, caller: Caller) -> None:
        if caller.uid in (0, os.geteuid()):
            return
        if self.gid is not None and self.gid in (caller.gid, *caller.groups):
            return
        raise PermissionDenied(
            f"permission denied: user {caller.user} is not in the admin group {self.admin_group}"
        )


class _AdminEndpoint:
    """The admin protocol for ``recd.daemon.serving``: one line of JSON in, one reply out."""

    name = "admin socket"

    def __init__(self, server: ControlServer) -> None:
        self.server = server

    def complete(self, data: bytes, eof: bool) -> bool:
        return eof or b"\n" in data

    def answer(self, conn: socket.socket, request: bytes) -> Answer:
        reply = self.server.answer(conn, request)
        if reply.fds:
            return encode_reply(reply), reply.fds
        return encode_reply(reply)

    def refusal(self, why: str, *, busy: bool) -> bytes:
        return encode_reply(Reply.failure(ErrorKind.UNAVAILABLE, why))


def _request_line(data: bytes) -> bytes:
    """The request: up to the first newline (or end of file; more than ``MAX_REQUEST`` bytes
    is left whole, for ``decode_request`` to refuse)."""
    if not data:
        raise ProtocolError("empty request")
    return data.partition(b"\n")[0]
