"""A throwaway PostgreSQL on a unix socket only, for the benchmarks and the tests (tests/pg.py).

``running(settings)`` runs ``initdb`` into a fresh directory made by ``tempfile.mkdtemp`` (see
``make_base``) and starts the server with ``pg_ctl``, listening on a unix socket in that
directory and on no TCP port, so two runs on one machine never collide; afterwards (failures
included) it stops the server and removes the directory. ``settings`` are appended to
``postgresql.conf``: the tests' server turns durability off, the benchmarks' keeps it on.

The server binaries come from Debian's ``/usr/lib/postgresql/<version>/bin`` (the highest
version that has all of them) or PATH; a missing one raises ``Missing`` naming it. PostgreSQL
refuses to run as root, so under root the server runs as ``nobody``, owning its directory. A
command that fails raises ``ServerError`` with its output and the server log's tail.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

#: Where Debian installs each major version's server binaries (not on PATH).
DEBIAN_ROOT = Path("/usr/lib/postgresql")
BINARIES = ("initdb", "pg_ctl", "postgres")
#: The superuser initdb creates; clients connect as it, over the socket, trusted.
USER = "recd"
#: The account the server runs as when started by root.
UNPRIVILEGED = "nobody"
#: No TCP at all, whatever else the caller sets.
LISTEN = {"listen_addresses": ""}
#: UTF-8 in the C locale on every machine; no fsync of the fresh cluster (it is thrown away).
INITDB_OPTIONS = ("-E", "UTF8", "--locale=C", "--no-sync")
#: Wait for start and stop, silently, up to 60 s: a loaded machine, not a healthy one, needs it.
PG_CTL_WAIT = ("-w", "-s", "-t", "60")


class ServerError(Exception):
    """The server could not be set up, started or stopped (the message says why)."""


class Missing(ServerError):
    """A server binary is neither in Debian's directory nor on PATH."""

    def __init__(self, binary: str) -> None:
        super().__init__(f"{binary} missing")
        self.binary = binary


@dataclass(frozen=True)
class Postgres:
    """A running server: its unix socket's directory, its data, and the user to connect as."""

    socket_dir: Path
    data_dir: Path
    user: str = USER

    def url(self, dbname: str = "postgres") -> str:
        """The libpq URL of one database on this server, over the socket:
        ``postgresql:///DB?host=/tmp/recd-pg-x&user=recd``."""
        host = quote(str(self.socket_dir), safe="/")
        return f"postgresql:///{quote(dbname, safe='')}?host={host}&user={self.user}"

    def postmaster_pid(self) -> int:
        """The running postmaster's process id (first line of ``postmaster.pid``)."""
        return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])


def binaries(which: Callable[[str], str | None] = shutil.which) -> dict[str, str]:
    """The paths of initdb, pg_ctl and postgres, from the highest Debian version that has all
    three, else found by ``which``; ``Missing`` names the first one found nowhere."""
    versions = [d for d in DEBIAN_ROOT.glob("*/bin") if all((d / b).is_file() for b in BINARIES)]
    if versions:
        best = max(versions, key=lambda d: _version_key(d.parent.name))
        return {name: str(best / name) for name in BINARIES}
    found: dict[str, str] = {}
    for name in BINARIES:
        path = which(name)
        if path is None:
            raise Missing(name)
        found[name] = path
    return found


def _version_key(name: str) -> tuple[int, ...]:
    """``"9.6"`` → (9, 6), so version 15 sorts above 9.6; a name without digits sorts first."""
    return tuple(int(part) for part in re.findall(r"\d+", name))


def account() -> pwd.struct_passwd | None:
    """The account the server must run as: ``nobody`` under root, else None (this user)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(UNPRIVILEGED)
    except KeyError:
        raise ServerError(
            f"no {UNPRIVILEGED!r} account: running as root, which PostgreSQL refuses"
        ) from None


def _run(args: list[str], runner: pwd.struct_passwd | None, cwd: Path) -> None:
    """Run one server command (as ``runner`` when given); ServerError with its output."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
    done = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        user=None if runner is None else runner.pw_uid,
        group=None if runner is None else runner.pw_gid,
        extra_groups=None if runner is None else [],
    )
    if done.returncode != 0:
        log = cwd / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        lines = f"{done.stderr.strip()}\n{tail}".strip()
        raise ServerError(f"{Path(args[0]).name} failed ({done.returncode}): {lines}")


def _conf_value(value: str) -> str:
    """A postgresql.conf string literal."""
    return "'" + value.replace("'", "''") + "'"


def start(base: Path, settings: Mapping[str, str], paths: Mapping[str, str]) -> Postgres:
    """initdb into ``base/data`` and start the server on a socket in ``base`` with ``settings``
    (and no TCP); ``base`` exists, owned by the account the server runs as."""
    runner = account()
    data = base / "data"
    _run(
        [paths["initdb"], "-D", str(data), "-U", USER, "-A", "trust", *INITDB_OPTIONS],
        runner,
        base,
    )
    conf = {**settings, **LISTEN, "unix_socket_directories": str(base)}
    with (data / "postgresql.conf").open("a") as out:
        out.write("\n# bench/pgserver.py\n")
        out.writelines(f"{key} = {_conf_value(value)}\n" for key, value in conf.items())
    _run(
        [paths["pg_ctl"], "-D", str(data), "-l", str(base / "server.log"), *PG_CTL_WAIT, "start"],
        runner,
        base,
    )
    return Postgres(socket_dir=base, data_dir=data)


def stop(server: Postgres, paths: Mapping[str, str]) -> None:
    """Stop the server (fast: roll back open transactions, close connections); it may be gone."""
    if (server.data_dir / "postmaster.pid").exists():
        _run(
            [paths["pg_ctl"], "-D", str(server.data_dir), *PG_CTL_WAIT, "-m", "fast", "stop"],
            account(),
            server.socket_dir,
        )


def resume(server: Postgres, paths: Mapping[str, str]) -> None:
    """Start a stopped ``server`` again on its data, socket directory and settings."""
    log = server.socket_dir / "server.log"
    _run(
        [paths["pg_ctl"], "-D", str(server.data_dir), "-l", str(log), *PG_CTL_WAIT, "start"],
        account(),
        server.socket_dir,
    )


def make_base() -> Path:
    """A fresh directory in the system's temporary directory (short: a socket path has at most
    107 bytes), owned by the account the server will run as (which could not enter root's
    0700 directories)."""
    base = Path(tempfile.mkdtemp(prefix="recd-pg-"))
    runner = account()
    if runner is not None:
        os.chown(base, runner.pw_uid, runner.pw_gid)
    return base


@contextlib.contextmanager
def running(
    settings: Mapping[str, str], which: Callable[[str], str | None] = shutil.which
) -> Iterator[Postgres]:
    """A server with ``settings`` for the duration of the block; stopped and its directory
    removed afterwards. ``Missing`` before anything is made when a binary is missing."""
    paths = binaries(which)
    base = make_base()
    try:
        server = start(base, settings, paths)
        try:
            yield server
        finally:
            stop(server, paths)
    finally:
        shutil.rmtree(base, ignore_errors=True)
