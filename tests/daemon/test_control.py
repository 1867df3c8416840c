"""The admin socket server: real Unix sockets, real peer credentials, real other users."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from recd.cli.client import call
from recd.daemon.control import Caller, ControlServer, _proc_groups, peer_of
from recd.errors import NotFound, PermissionDenied, StateError
from recd.protocol import ErrorKind, Reply, Request

NOBODY = 65534
#: The admin group the servers here use: the test's own group, which it may give the socket.
GROUP = grp.getgrgid(os.getegid()).gr_name
USER = pwd.getpwuid(os.geteuid()).pw_name


def echo(request: Request, caller: Caller) -> Reply:
    if request.command == "missing":
        raise NotFound("no such thing")
    if request.command == "crash":
        raise ZeroDivisionError("boom")
    return Reply.success({"command": request.command, "args": request.args, "uid": caller.uid,
                          "user": caller.user})  # fmt: skip


@pytest.fixture
def sockdir() -> Iterator[Path]:
    """A directory other users may traverse (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="recd-control-"))
    path.chmod(0o711)
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


@pytest.fixture
def server(sockdir: Path) -> Iterator[ControlServer]:
    srv = ControlServer(sockdir / "recd.sock", GROUP, echo)
    srv.start()
    yield srv
    srv.stop()


def test_answers_one_request_per_connection_with_the_callers_identity(
    server: ControlServer,
) -> None:
    reply = call(server.path, Request("status", {"x": 1}))
    assert reply.unwrap() == {"command": "status", "args": {"x": 1}, "uid": os.getuid(),
                              "user": USER}  # fmt: skip
    assert call(server.path, Request("status")).ok  # and again: the server keeps serving


def test_socket_is_0660_owned_by_the_admin_group_and_removed_on_stop(
    server: ControlServer,
) -> None:
    st = os.stat(server.path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_gid == os.getegid()  # the admin group here: the test's own
    assert [p.name for p in server.path.parent.iterdir()] == ["recd.sock"]  # no temp left
    server.stop()
    assert not server.path.exists()
    server.stop()  # idempotent


def test_stop_when_the_socket_file_was_removed_meanwhile(server: ControlServer) -> None:
    """An operator (or a tmpfiles clean-up) removed the socket file: stop still stops."""
    server.path.unlink()
    server.stop()  # no FileNotFoundError: there is nothing of recd's left to remove
    assert list(server.path.parent.iterdir()) == []
    server.stop()


def test_stop_leaves_a_socket_file_that_another_recd_put_in_its_place(sockdir: Path) -> None:
    path = sockdir / "recd.sock"
    old = ControlServer(path, GROUP, echo)
    old.start()
    path.unlink()  # the old recd's file is gone: a new recd takes the name
    new = ControlServer(path, GROUP, echo)
    new.start()
    try:
        old.stop()
        assert call(path, Request("status")).ok  # the new recd's socket is left in place
    finally:
        new.stop()
    assert not path.exists()


def test_typed_errors_and_internal_failures_become_replies(server: ControlServer) -> None:
    missing = call(server.path, Request("missing"))
    assert (missing.ok, missing.error, missing.message) == (False, ErrorKind.NOT_FOUND,
                                                            "no such thing")  # fmt: skip
    crash = call(server.path, Request("crash"))
    assert crash.error is ErrorKind.FAILED
    assert crash.message == "internal error in recd (ZeroDivisionError); see `journalctl -u recd`"


def raw(path: Path, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(path))
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: sock.recv(65536), b""))


def test_garbage_and_other_protocol_versions_are_refused(server: ControlServer) -> None:
    assert raw(server.path, b"") == (
        b'{"v":1,"ok":false,"error":{"kind":"usage","message":"empty request"}}\n'
    )
    assert b'"kind":"usage","message":"the request is not JSON' in raw(server.path, b"{\n")
    assert b'"kind":"unsupported"' in raw(server.path, b'{"v": 2, "command": "status"}\n')


def test_a_stale_socket_is_replaced_a_live_one_or_other_file_refused(sockdir: Path) -> None:
    path = sockdir / "recd.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: a recd that was killed
    first = ControlServer(path, GROUP, echo)
    first.start()
    try:
        with pytest.raises(StateError, match="another recd is serving it"):
            ControlServer(path, GROUP, echo).start()
    finally:
        first.stop()
    path.write_text("not a socket")
    with pytest.raises(StateError, match="exists and is not a socket; not touched"):
        ControlServer(path, GROUP, echo).start()
    assert path.read_text() == "not a socket"


def test_cannot_bind_is_a_state_error(tmp_path: Path) -> None:
    with pytest.raises(StateError, match=r"cannot serve the admin socket: No such file"):
        ControlServer(tmp_path / "absent" / "recd.sock", GROUP, echo).start()


def test_a_missing_admin_group_leaves_root_only(
    sockdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    srv = ControlServer(sockdir / "recd.sock", "no-such-group-here", echo)
    srv.start()
    try:
        assert os.stat(srv.path).st_gid == os.getgid()
        assert "admin group no-such-group-here does not exist: only root can use recctl" in (
            caplog.text
        )
        with pytest.raises(PermissionDenied, match="user nobody is not in the admin group"):
            srv.authorise(Caller(1, NOBODY, NOBODY, ()))
    finally:
        srv.stop()


def test_authorisation_by_primary_or_supplementary_group(server: ControlServer) -> None:
    gid = os.getegid()
    server.authorise(Caller(1, NOBODY, gid, ()))
    server.authorise(Caller(1, NOBODY, NOBODY, (5, gid)))
    with pytest.raises(PermissionDenied, match=f"user nobody is not in the admin group {GROUP}$"):
        server.authorise(Caller(1, NOBODY, NOBODY, (5,)))
    assert Caller(1, 999_999, 0, ()).user == "uid 999999"


def test_peer_credentials_of_a_real_connection(server: ControlServer) -> None:
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        caller = peer_of(a)
    assert (caller.pid, caller.uid, caller.gid) == (os.getpid(), os.getuid(), os.getgid())
    assert set(caller.groups) == set(os.getgroups())
    assert set(_proc_groups(os.getpid())) == set(os.getgroups())
    assert _proc_groups(2**22 + 1) == ()  # no such process


def as_nobody(action: Callable[[], str]) -> str:
    """Run ``action`` in a forked child running as nobody; what it returns, or the error."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child; its result comes back through the pipe)
        os.close(read)
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            out = action()
        except Exception as exc:
            out = f"{type(exc).__name__}: {exc}"
        os.write(write, out.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        out = pipe.read().decode()
    os.waitpid(pid, 0)
    return out


def status_as_nobody(path: Path) -> str:
    """Connect as nobody; the reply, or the error met."""

    def status() -> str:
        reply = call(path, Request("status"), timeout=10)
        return f"{reply.ok} {reply.error} {reply.message}"

    return as_nobody(status)


@pytest.mark.root
def test_other_users_are_kept_out_by_the_mode_and_by_the_check(server: ControlServer) -> None:
    out = status_as_nobody(server.path)
    assert out.startswith("PermissionDenied: ")
    os.chmod(server.path, 0o666)  # an operator loosened it: the daemon still says no
    assert status_as_nobody(server.path) == (
        f"False permission-denied permission denied: user nobody is not in the admin group {GROUP}"
    )


@pytest.mark.root
def test_a_daemon_user_outside_the_admin_group_is_told_to_join_it() -> None:
    """Run as ``User=recd`` without ``SupplementaryGroups=``, recd may not give the socket to
    the admin group (EPERM): start fails with one line naming the socket, the group and the
    fix. A real unprivileged process (nobody, not in root's group) meets the real EPERM."""
    sockdir = Path(tempfile.mkdtemp(prefix="recd-control-"))
    os.chown(sockdir, NOBODY, NOBODY)
    group = grp.getgrgid(0).gr_name

    def start() -> str:
        ControlServer(sockdir / "recd.sock", group, echo).start()
        return "started"

    out = as_nobody(start)
    try:
        assert out == (
            f"StateError: daemon.socket {sockdir}/recd.sock: cannot give the admin socket to "
            f"group {group} (daemon.admin_group): Operation not permitted; the daemon's user "
            f"nobody must be a member of {group}: add SupplementaryGroups={group} to the unit, "
            f"or run `usermod -aG {group} nobody`, then restart recd"
        )
        assert os.listdir(sockdir) == []  # no temporary socket left behind
    finally:
        shutil.rmtree(sockdir)
