"""A real PostgreSQL for tests: one server per test session, on a unix socket only.

Load it as a pytest plugin (``pytest_plugins = ["tests.pg"]`` or ``-p tests.pg``).
``postgres`` runs ``initdb`` into a fresh directory made by ``tempfile.mkdtemp`` and starts the
server with ``pg_ctl``, listening on a unix socket in that directory and on no TCP port, so two
test runs on one machine never collide; at the end of the session (failed tests included) it
stops the server and removes the directory. ``pg_database`` gives each test its own empty
database, dropped afterwards.

The server binaries come from Debian's ``/usr/lib/postgresql/<version>/bin`` (the highest
version) or PATH; without them the test skips naming the package, or fails under
``RECD_TEST_REQUIRE_TOOLS`` (tests/tools.py). PostgreSQL refuses to run as root, so under root
(CI) the server runs as ``nobody``, owning its directory. Durability is off (``fsync``,
``full_page_writes``, ``synchronous_commit``): a crash of a test server loses nothing of value.
psycopg is imported inside the fixtures, as a run that needs no PostgreSQL should not pay for it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests import tools

#: Where Debian installs each major version's server binaries (not on PATH).
DEBIAN_ROOT = Path("/usr/lib/postgresql")
BINARIES = ("initdb", "pg_ctl", "postgres")
#: The superuser initdb creates; every test connects as it, over the socket, trusted.
USER = "recd"
#: The account the server runs as when the tests run as root.
UNPRIVILEGED = "nobody"
#: The server's settings: no TCP at all, and no durability a test needs.
SETTINGS = {
    "listen_addresses": "",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "shared_buffers": "16MB",
    "max_wal_senders": "0",
    "wal_level": "minimal",
}
#: UTF-8 in the C locale on every machine; no fsync of a cluster thrown away at the end.
INITDB_OPTIONS = ("-E", "UTF8", "--locale=C", "--no-sync")
#: Wait for start and stop, silently, up to 60 s: a loaded CI machine, not a healthy one, needs it.
PG_CTL_WAIT = ("-w", "-s", "-t", "60")
_serial = itertools.count()


@dataclass(frozen=True)
class Postgres:
    """A running test server: its unix socket's directory, and the user to connect as."""

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


@dataclass(frozen=True)
class PgDatabase:
    """One test's own database: its name and libpq URL."""

    name: str
    url: str


def binaries() -> dict[str, str]:
    """The paths of initdb, pg_ctl and postgres, from the highest Debian version that has all
    three, else from PATH; a missing one skips the test naming the package (tests/tools.py)."""
    versions = [d for d in DEBIAN_ROOT.glob("*/bin") if all((d / b).is_file() for b in BINARIES)]
    if versions:
        best = max(versions, key=lambda d: _version_key(d.parent.name))
        return {name: str(best / name) for name in BINARIES}
    found = {name: tools.which(name) for name in BINARIES}
    for name, path in found.items():
        if path is None:
            tools.unavailable(tools.missing(name))
    return {name: path for name, path in found.items() if path is not None}


def _version_key(name: str) -> tuple[int, ...]:
    """``"9.6"`` → (9, 6), so version 15 sorts above 9.6; a name without digits sorts first."""
    return tuple(int(part) for part in re.findall(r"\d+", name))


def _account() -> pwd.struct_passwd | None:
    """The account the server must run as: ``nobody`` under root, else None (this user)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(UNPRIVILEGED)
    except KeyError:
        pytest.fail(f"no {UNPRIVILEGED!r} account: the tests run as root, which PostgreSQL refuses")


def _run(args: list[str], account: pwd.struct_passwd | None, cwd: Path) -> None:
    """Run one server command (as ``account`` when given), failing with its output."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
    done = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        user=None if account is None else account.pw_uid,
        group=None if account is None else account.pw_gid,
        extra_groups=None if account is None else [],
    )
    if done.returncode != 0:
        log = cwd / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        lines = f"{done.stderr.strip()}\n{tail}".strip()
        pytest.fail(f"{Path(args[0]).name} failed ({done.returncode}): {lines}", pytrace=False)


def _conf_value(value: str) -> str:
    """A postgresql.conf string literal."""
    return "'" + value.replace("'", "''") + "'"


def start(base: Path) -> Postgres:
    """initdb into ``base/data`` and start the server on a socket in ``base``; ``base`` exists,
    owned by the account the server runs as."""
    paths = binaries()
    account = _account()
    data = base / "data"
    _run(
        [paths["initdb"], "-D", str(data), "-U", USER, "-A", "trust", *INITDB_OPTIONS],
        account,
        base,
    )
    settings = {**SETTINGS, "unix_socket_directories": str(base)}
    with (data / "postgresql.conf").open("a") as conf:
        conf.write("\n# tests/pg.py\n")
        conf.writelines(f"{key} = {_conf_value(value)}\n" for key, value in settings.items())
    _run(
        [paths["pg_ctl"], "-D", str(data), "-l", str(base / "server.log"), *PG_CTL_WAIT, "start"],
        account,
        base,
    )
    return Postgres(socket_dir=base, data_dir=data)


def stop(server: Postgres) -> None:
    """Stop the server (fast: roll back open transactions, close connections); it may be gone."""
    pg_ctl = binaries()["pg_ctl"]
    if (server.data_dir / "postmaster.pid").exists():
        _run(
            [pg_ctl, "-D", str(server.data_dir), *PG_CTL_WAIT, "-m", "fast", "stop"],
            _account(),
            server.socket_dir,
        )


def make_base() -> Path:
    """A fresh directory in the system's temporary directory (short: a socket path has at most
    107 bytes), owned by the account the server will run as; pytest's own ``tmp_path`` is 0700
    root's, which ``nobody`` could not enter."""
    base = Path(tempfile.mkdtemp(prefix="recd-pg-"))
    account = _account()
    if account is not None:
        os.chown(base, account.pw_uid, account.pw_gid)
    return base


@contextlib.contextmanager
def running() -> Iterator[Postgres]:
    """A server for the duration of the block; stopped and its directory removed afterwards."""
    binaries()  # skip before making anything when the binaries are missing
    base = make_base()
    try:
        server = start(base)
        try:
            yield server
        finally:
            stop(server)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One PostgreSQL server for the whole session, on a unix socket only (see the module)."""
    with running() as server:
        yield server


def create_database(server: Postgres) -> PgDatabase:
    """A new empty database with a unique name."""
    import psycopg
    from psycopg import sql

    name = f"recd_test_{next(_serial)}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return PgDatabase(name=name, url=server.url(name))


def drop_database(server: Postgres, name: str) -> None:
    """Drop a test's database, closing what the test left connected to it."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def pg_database(postgres: Postgres) -> Iterator[PgDatabase]:
    """This test's own empty database on the session's server, dropped afterwards."""
    database = create_database(postgres)
    try:
        yield database
    finally:
        drop_database(postgres, database.name)
