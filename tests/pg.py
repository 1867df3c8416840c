"""A real PostgreSQL for tests: one server per test session, on a unix socket only.

The server's machinery is ``bench/pgserver.py`` (the benchmarks start one too); this module
gives it the tests' settings and turns its errors into a skip or a failure.

Load it as a pytest plugin (``pytest_plugins = ["tests.pg"]`` or ``-p tests.pg``).
``postgres`` runs ``initdb`` into a fresh directory made by ``tempfile.mkdtemp`` and starts the
server with ``pg_ctl``, listening on a unix socket in that directory and on no TCP port, so two
test runs on one machine never collide; at the end of the session (failed tests included) it
stops the server and removes the directory. ``pg_database`` gives each test its own empty
database, dropped afterwards.

A test that takes the server away (``down``: ``pg_ctl stop -m fast``, then started again on the
same data, socket directory and port) uses ``stoppable``, a second server of its own, so that
the session's ``postgres`` never goes down under another test; ``stoppable_database`` is a
database on it.

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
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from bench import pgserver
from bench.pgserver import BINARIES, USER, Postgres
from tests import tools

__all__ = [
    "BINARIES", "USER", "PgDatabase", "Postgres", "binaries", "down", "make_base", "start",
]  # fmt: skip

#: The server's settings: no durability a test needs.
SETTINGS = {
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "shared_buffers": "16MB",
    "max_wal_senders": "0",
    "wal_level": "minimal",
}
_serial = itertools.count()


@dataclass(frozen=True)
class PgDatabase:
    """One test's own database: its name and libpq URL."""

    name: str
    url: str


def _failed(exc: pgserver.ServerError) -> NoReturn:
    """A missing binary skips the test naming its package (tests/tools.py); any other
    trouble fails it with the command's output."""
    if isinstance(exc, pgserver.Missing):
        tools.unavailable(tools.missing(exc.binary))
    pytest.fail(str(exc), pytrace=False)


def binaries() -> dict[str, str]:
    """The paths of initdb, pg_ctl and postgres (``pgserver.binaries``), or skip."""
    try:
        return pgserver.binaries(tools.which)
    except pgserver.ServerError as exc:
        _failed(exc)


def make_base() -> Path:
    """A fresh directory for a server, owned by the account it will run as (pytest's own
    ``tmp_path`` is 0700 root's, which ``nobody`` could not enter)."""
    try:
        return pgserver.make_base()
    except pgserver.ServerError as exc:
        _failed(exc)


def start(base: Path) -> Postgres:
    """initdb into ``base/data`` and start a test server on a socket in ``base``."""
    try:
        return pgserver.start(base, SETTINGS, binaries())
    except pgserver.ServerError as exc:
        _failed(exc)


@contextlib.contextmanager
def running() -> Iterator[Postgres]:
    """A test server for the duration of the block; stopped and its directory removed after."""
    try:
        with pgserver.running(SETTINGS, tools.which) as server:
            yield server
    except pgserver.ServerError as exc:
        _failed(exc)


def stop(server: Postgres) -> None:
    """Stop ``server`` the way an operator or a crash-restart does: ``pg_ctl stop -m fast``
    (open transactions rolled back, every session closed)."""
    try:
        pgserver.stop(server, binaries())
    except pgserver.ServerError as exc:
        _failed(exc)


def resume(server: Postgres) -> None:
    """Start a stopped ``server`` again: same data, socket directory and port."""
    try:
        pgserver.resume(server, binaries())
    except pgserver.ServerError as exc:
        _failed(exc)


@contextlib.contextmanager
def down(server: Postgres) -> Iterator[None]:
    """``server`` stopped for the block, started again after it (failures included)."""
    stop(server)
    try:
        yield
    finally:
        resume(server)


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


@pytest.fixture(scope="session")
def stoppable() -> Iterator[Postgres]:
    """A second server for the session, for the tests that stop it (``down``)."""
    with running() as server:
        yield server


@pytest.fixture
def stoppable_database(stoppable: Postgres) -> Iterator[PgDatabase]:
    """This test's own empty database on the ``stoppable`` server, dropped afterwards (the
    server is running again by then: ``down`` starts it on the way out)."""
    database = create_database(stoppable)
    try:
        yield database
    finally:
        drop_database(stoppable, database.name)
