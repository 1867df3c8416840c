"""The test PostgreSQL (tests/pg.py): answers on its socket only, runs unprivileged, gives each
test its own database, and leaves nothing behind; without its binaries a test says what to
install."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from bench import pgserver
from tests import pg, tools

REPO = Path(__file__).resolve().parents[1]
CI_RUN = REPO / ".ci" / "run"


def _socket_inodes(pid: int) -> set[str]:
    """The inodes of every socket the process holds open."""
    fd_dir = Path(f"/proc/{pid}/fd")
    links = (os.readlink(fd_dir / fd) for fd in os.listdir(fd_dir))
    return {link[len("socket:[") : -1] for link in links if link.startswith("socket:[")}


def _inodes_in(table: str) -> set[str]:
    """The inode column of /proc/net/tcp, tcp6 or unix (one socket per line after the header)."""
    path = Path("/proc/net") / table
    if not path.exists():  # a kernel without IPv6
        return set()
    column = 6 if table == "unix" else 9
    return {line.split()[column] for line in path.read_text().splitlines()[1:]}


def test_the_server_answers_on_its_unix_socket_and_on_no_tcp_port(postgres: pg.Postgres) -> None:
    with psycopg.connect(postgres.url()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
        assert conn.execute("SHOW unix_socket_directories").fetchone() == (
            str(postgres.socket_dir),
        )
    assert (postgres.socket_dir / ".s.PGSQL.5432").is_socket()
    held = _socket_inodes(postgres.postmaster_pid())
    assert held & _inodes_in("unix")  # the inodes are read right: its listening socket is there
    assert held & (_inodes_in("tcp") | _inodes_in("tcp6")) == set()


def test_the_server_runs_as_nobody_under_root_else_as_this_user(postgres: pg.Postgres) -> None:
    status = Path(f"/proc/{postgres.postmaster_pid()}/status").read_text()
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    expected = 65534 if os.geteuid() == 0 else os.geteuid()  # Debian's nobody
    assert {int(uid) for uid in uids} == {expected}
    assert postgres.socket_dir.stat().st_uid == expected
    assert postgres.socket_dir.parent == Path(tempfile.gettempdir())  # not pytest's 0700 one


def test_each_database_is_its_own_and_empty(postgres: pg.Postgres) -> None:
    first, second = pg.create_database(postgres), pg.create_database(postgres)
    try:
        assert first.name != second.name
        with psycopg.connect(first.url) as conn:
            conn.execute("CREATE TABLE marks (key text)")
            conn.execute("INSERT INTO marks VALUES ('a')")
        with psycopg.connect(second.url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (second.name,)
            assert conn.execute("SELECT to_regclass('marks')").fetchone() == (None,)
    finally:
        pg.drop_database(postgres, first.name)
        pg.drop_database(postgres, second.name)
    with psycopg.connect(postgres.url()) as conn:
        names = {first.name, second.name}
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s)", [list(names)]
        )
        assert rows.fetchall() == []


def test_pg_database_is_this_tests_own(pg_database: pg.PgDatabase) -> None:
    with psycopg.connect(pg_database.url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (pg_database.name,)
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone() == (0,)


CHILD_OPTIONS = ("-q", "-p", "no:cacheprovider", "-p", "tests.pg")


def _gone(pid: int) -> bool:
    """Whether the process has exited within 10 seconds (the postmaster removes its pid file,
    which ``pg_ctl stop`` waits for, a moment before it exits)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":  # exited; its parent (init, after pg_ctl's shell) has yet to reap it
            return True
        time.sleep(0.05)
    return False


SESSION = """
import json, os
from pathlib import Path

import psycopg

REPORT = Path(os.environ["PG_REPORT"])


def test_one(postgres, pg_database):
    report = {"dir": str(postgres.socket_dir), "pid": postgres.postmaster_pid(),
              "database": pg_database.name}
    REPORT.write_text(json.dumps(report))
    psycopg.connect(pg_database.url).close()  # left open would not stop its drop either


def test_two_the_first_tests_database_is_gone(postgres):
    name = json.loads(REPORT.read_text())["database"]
    with psycopg.connect(postgres.url()) as conn:
        rows = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        assert rows.fetchall() == []


def test_three_fails(postgres):
    raise AssertionError("a failed test still stops the server")
"""


def test_a_session_stops_its_server_and_removes_its_directory_even_after_a_failure(
    postgres: pg.Postgres, tmp_path: Path
) -> None:
    """A child pytest starts its own server beside this session's: two runs side by side."""
    (tmp_path / "test_session.py").write_text(textwrap.dedent(SESSION))
    report = tmp_path / "report.json"
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "PG_REPORT": str(report)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *CHILD_OPTIONS, "test_session.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 2 passed" in done.stdout
    child = json.loads(report.read_text())
    assert child["dir"] != str(postgres.socket_dir)
    assert not Path(child["dir"]).exists()
    assert _gone(child["pid"])
    with psycopg.connect(postgres.url()) as conn:  # this session's server is untouched
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_failed_initdb_fails_with_its_output() -> None:
    pg.binaries()
    base = pg.make_base()
    try:
        (base / "data").mkdir()
        (base / "data" / "stale").touch()
        with pytest.raises(pytest.fail.Exception, match=r"^initdb failed \(1\): .*not empty"):
            pg.start(base)
    finally:
        shutil.rmtree(base)


def test_the_url_survives_a_socket_directory_with_spaces() -> None:
    server = pg.Postgres(socket_dir=Path("/tmp/a b%"), data_dir=Path("/tmp/a b%/data"))
    assert server.url("db") == "postgresql:///db?host=/tmp/a%20b%25&user=recd"
    assert conninfo_to_dict(server.url("db")) == {
        "dbname": "db",
        "host": "/tmp/a b%",
        "user": "recd",
    }


@pytest.fixture
def no_postgres(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A machine without PostgreSQL: nothing in Debian's directory nor on PATH."""
    monkeypatch.setattr(pgserver, "DEBIAN_ROOT", tmp_path / "lib")
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    monkeypatch.setattr(tools, "_SBIN", ())
    monkeypatch.setattr(tools, "REQUIRED", False)
    return tmp_path


def _executables(directory: Path, *names: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_text("#!/bin/sh\n")
        (directory / name).chmod(0o755)


def test_missing_binaries_skip_naming_the_package(no_postgres: Path) -> None:
    reason = (
        r"^initdb missing: apt-get install postgresql "
        r"\(looked in /usr/lib/postgresql/\*/bin and on PATH\)$"
    )
    with pytest.raises(pytest.skip.Exception, match=reason):
        pg.binaries()
    _executables(no_postgres / "path", "initdb", "pg_ctl")
    with pytest.raises(
        pytest.skip.Exception, match=r"^postgres missing: apt-get install postgresql"
    ):
        pg.binaries()


def test_missing_binaries_fail_where_ci_requires_every_tool(
    no_postgres: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tools, "REQUIRED", True)
    with pytest.raises(pytest.fail.Exception, match=r"RECD_TEST_REQUIRE_TOOLS is set"):
        pg.binaries()


def test_the_highest_complete_debian_version_wins_over_path(no_postgres: Path) -> None:
    lib = no_postgres / "lib"
    _executables(lib / "9.6" / "bin", *pg.BINARIES)
    _executables(lib / "13" / "bin", *pg.BINARIES)
    _executables(lib / "16" / "bin", "initdb", "pg_ctl")  # half an upgrade: no server
    _executables(no_postgres / "path", *pg.BINARIES)
    assert pg.binaries() == {name: str(lib / "13" / "bin" / name) for name in pg.BINARIES}


def test_ci_installs_the_server_without_creating_or_starting_a_cluster() -> None:
    script = CI_RUN.read_text()
    install = script.index("--force-confold postgresql")
    assert script.index('echo "create_main_cluster = false" >>"$conf"') < install
    assert script.index("exit 101") < install
    assert "compgen -G '/etc/postgresql/*/main'" in script[install:]  # and says if it did


def test_down_stops_the_server_and_starts_it_again_on_the_same_socket_and_data(
    stoppable: pg.Postgres, stoppable_database: pg.PgDatabase
) -> None:
    with psycopg.connect(stoppable_database.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE marks (key text)")
        conn.execute("INSERT INTO marks VALUES ('kept')")
    before = stoppable.postmaster_pid()
    with pg.down(stoppable):
        assert not (stoppable.socket_dir / ".s.PGSQL.5432").exists()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(stoppable_database.url, connect_timeout=2)
    assert stoppable.postmaster_pid() != before
    with psycopg.connect(stoppable_database.url) as conn:
        assert conn.execute("SELECT key FROM marks").fetchall() == [("kept",)]
