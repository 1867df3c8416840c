"""recd.config.catalogue: ``[catalogue] url`` (a libpq URL, its shape only) and ``daemon.node``.

Real recd.toml files in tmp_path, read by ``load``; every problem asserted word for word.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from recd.config.catalogue import read_node
from recd.config.load import CatalogueSettings, load
from recd.config.tables import Table
from recd.core.pgurl import PostgresURL
from recd.errors import ConfigProblem
from tests.config.helpers import main_problems, write

PASSFILE = (
    "catalogue.url: must not hold a password: put the password in a password file instead: "
    "PGPASSFILE=FILE in recd's environment (systemctl edit recd), or passfile=FILE in the "
    "URL's query"
)
SCHEME = (
    "catalogue.url: must be a PostgreSQL URL starting with postgresql:// or postgres://, such as "
    '"postgresql://recd@db1.example.com/recd"'
)
NODE_RULE = 'up to 64 letters, digits, ".", "_" and "-", starting with a letter or digit'


def _url(tmp_path: Path, url: str) -> PostgresURL | None:
    path = write(tmp_path / "recd.toml", f"[catalogue]\nurl = '{url}'\n")
    return load(path).catalogue.url


def test_without_a_url_the_catalogue_stays_sqlite(tmp_path: Path) -> None:
    assert load(write(tmp_path / "recd.toml", "")).catalogue == CatalogueSettings(None)
    assert load(write(tmp_path / "recd.toml", "[catalogue]\n")).catalogue.url is None
    assert not load(write(tmp_path / "recd.toml", "[catalogue]\n")).catalogue.shared
    shared = write(tmp_path / "recd.toml", '[catalogue]\nurl = "postgresql://recd@db1/recd"\n')
    assert load(shared).catalogue.shared


def test_messages_name_the_audit_chain_where_it_is(tmp_path: Path) -> None:
    """A file on one host; the audit table of the database on a shared catalogue."""
    state = '[daemon]\nstate_dir = "{tmp}/state"\n'
    config = load(write(tmp_path / "recd.toml", state))
    log = tmp_path / "state" / "audit.log"
    assert (config.audit_place, config.audit_named) == (str(log), f"the audit log {log}")
    shared = state + '[catalogue]\nurl = "postgresql://recd@db1/recd"\n'
    config = load(write(tmp_path / "recd.toml", shared))
    table = 'the audit table of database "recd" on db1 as user "recd"'
    assert (config.audit_place, config.audit_named) == (table, table)


@pytest.mark.parametrize(
    ("url", "database", "servers", "user", "shown"),
    [
        ("postgresql://recd@db1.example.com/recd", "recd", ("db1.example.com",), "recd",
         'database "recd" on db1.example.com as user "recd"'),
        ("postgres://db1:5433/recd", "recd", ("db1:5433",), None, 'database "recd" on db1:5433'),
        ("postgresql:///recd?host=/run/postgresql", "recd", ("/run/postgresql",), None,
         'database "recd" on /run/postgresql'),
        ("postgresql://%2Frun%2Fpostgresql/recd", "recd", ("/run/postgresql",), None,
         'database "recd" on /run/postgresql'),
        ("postgresql:///recd", "recd", (), None, 'database "recd" on the default unix socket'),
        ("postgresql://:5433/recd", "recd", ("the default unix socket, port 5433",), None,
         'database "recd" on the default unix socket, port 5433'),
        ("postgresql://[::1]:5433/recd", "recd", ("[::1]:5433",), None,
         'database "recd" on [::1]:5433'),
        ("postgresql://db1:5433,db2/recd?target_session_attrs=read-write&sslmode=verify-full",
         "recd", ("db1:5433", "db2"), None, 'database "recd" on db1:5433, db2'),
        ("postgresql://db1,db2/recd?port=5433", "recd", ("db1:5433", "db2:5433"), None,
         'database "recd" on db1:5433, db2:5433'),
        ("postgresql://db1/?dbname=calls&user=rec%64&passfile=/etc/recd/pgpass", "calls",
         ("db1",), "recd", 'database "calls" on db1 as user "recd"'),
    ],
)  # fmt: skip
def test_good_urls(
    tmp_path: Path,
    url: str,
    database: str,
    servers: tuple[str, ...],
    user: str | None,
    shown: str,
) -> None:
    found = _url(tmp_path, url)
    assert found == PostgresURL(url, database, servers, user)
    assert str(found) == shown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("url = 'mysql://recd@db1/recd'", f'{SCHEME}, got "mysql://"'),
        ("url = 'POSTGRESQL://db1/recd'", f'{SCHEME}, got "POSTGRESQL://"'),
        ("url = 'host=db1 dbname=recd'", SCHEME),
        ("url = 'postgresql://db1'",
         'catalogue.url: names no database: write it after the host, as in '
         '"postgresql://recd@db1.example.com/recd"'),
        ("url = 'postgresql://db1/'",
         'catalogue.url: names no database: write it after the host, as in '
         '"postgresql://recd@db1.example.com/recd"'),
        ("url = 'postgresql://recd:s3cret@db1/recd'", PASSFILE),
        ("url = 'postgresql://recd:@db1/recd'", PASSFILE),
        ("url = 'postgresql://db1/recd?sslmode=require&password=s3cret'", PASSFILE),
        ("url = 'postgresql://db1/recd?sslpassword=s3cret'", PASSFILE),
        ("url = 'postgresql://db1/recd?pass%77ord=s3cret'", PASSFILE),
        ("url = 'postgres://recd:s3cret@db1/recd%zz'", PASSFILE),
        ("url = 'postgresql://db1:99999/recd'",
         'catalogue.url: port must be a number from 1 to 65535, got "99999"'),
        ("url = 'postgresql://db1:pg/recd'",
         'catalogue.url: port must be a number from 1 to 65535, got "pg"'),
        ("url = 'postgresql://db1,db2/recd?port=1,2,3'",
         "catalogue.url: gives 3 ports for 2 hosts"),
        ("url = 'postgresql://[::1/recd'",
         'catalogue.url: write an IPv6 address in brackets, as in "[::1]:5432"'),
        ("url = 'postgresql://db1/recd?sslmode'",
         'catalogue.url: query parameter "sslmode" is not key=value (join several with &)'),
        ("url = 'postgresql://db1/my calls'",
         "catalogue.url: must not contain spaces or control characters (write a space as %20)"),
        ("url = 'postgresql://db1/recd%2'",
         'catalogue.url: has a "%" that is not followed by two hex digits (or is %00)'),
        ("url = 'postgresql://db1/recd%00'",
         'catalogue.url: has a "%" that is not followed by two hex digits (or is %00)'),
        ("url = 5", "catalogue.url: expected a string, got integer"),
        ("url = ' '", "catalogue.url: must not be empty"),
        ("uri = 'postgresql://db1/recd'", 'catalogue.uri: unknown key (did you mean "url"?)'),
    ],
)  # fmt: skip
def test_bad_urls(tmp_path: Path, text: str, expected: str) -> None:
    found = main_problems(tmp_path, f"[catalogue]\n{text}\n")
    assert found == [expected]
    assert not any("s3cret" in line for line in found), "a problem repeated the password"


def test_catalogue_must_be_a_table(tmp_path: Path) -> None:
    assert main_problems(tmp_path, "catalogue = 'postgresql://db1/recd'") == [
        "catalogue: expected a table, got string"
    ]


def test_node_defaults_to_the_host_name(tmp_path: Path) -> None:
    assert load(write(tmp_path / "recd.toml", "")).daemon.node == socket.gethostname()


@pytest.mark.parametrize("node", ["pbx-a", "PBX_1", "node1.example.com", "7", "a" * 64])
def test_good_nodes(tmp_path: Path, node: str) -> None:
    assert load(write(tmp_path / "recd.toml", f"[daemon]\nnode = '{node}'\n")).daemon.node == node


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("node = 'pbx a'", f'daemon.node: must be {NODE_RULE}, got "pbx a"'),
        ("node = '-pbx'", f'daemon.node: must be {NODE_RULE}, got "-pbx"'),
        ("node = 'pbx/1'", f'daemon.node: must be {NODE_RULE}, got "pbx/1"'),
        ("node = 'knoten-ü'", f'daemon.node: must be {NODE_RULE}, got "knoten-ü"'),
        (f"node = '{'a' * 65}'", f'daemon.node: must be {NODE_RULE}, got "{"a" * 65}"'),
        ("node = ''", "daemon.node: must not be empty"),
        ("node = 1", "daemon.node: expected a string, got integer"),
        ("nodes = 'pbx-a'", 'daemon.nodes: unknown key (did you mean "node"?)'),
    ],
)
def test_bad_nodes(tmp_path: Path, text: str, expected: str) -> None:
    assert main_problems(tmp_path, f"[daemon]\n{text}\n") == [expected]


def test_a_host_name_unfit_for_a_node_matters_only_to_a_shared_catalogue() -> None:
    """Nothing changes on one host; with a shared catalogue the operator names the node."""
    problems: list[ConfigProblem] = []
    assert read_node(Table("recd.toml", "daemon", {}, problems), "my host", shared=False) == (
        "my host"
    )
    assert problems == []
    read_node(Table("recd.toml", "daemon", {}, problems), "my host", shared=True)
    assert [str(p) for p in problems] == [
        'recd.toml: daemon.node: the host name "my host" cannot name this node in the shared '
        f"catalogue; set daemon.node ({NODE_RULE})"
    ]
    problems.clear()
    named = Table("recd.toml", "daemon", {"node": "pbx-a"}, problems)
    assert read_node(named, "my host", shared=True) == "pbx-a"
    assert problems == []
