"""How the PostgreSQL catalogue names its database in messages (recd.adapters.postgres.errors):
what an operator needs to find it, never the password."""

from __future__ import annotations

import pytest

from recd.adapters.postgres.errors import describe


@pytest.mark.parametrize(
    ("url", "named"),
    [
        (
            "postgresql://recd@db1.example.com/recd",
            'database "recd" on db1.example.com as user "recd"',
        ),
        ("postgresql://recd:hunter2@db1:5433/cat", 'database "cat" on db1:5433 as user "recd"'),
        ("postgres://db1:5432,db2:5433/cat", 'database "cat" on db1:5432, db2:5433'),
        ("postgresql:///cat?host=/run/postgresql", 'database "cat" on /run/postgresql'),
        ("postgresql:///cat?password=hunter2", 'database "cat" on the default unix socket'),
        ("postgresql://db1/cat?sslpassword=x&sslmode=require", 'database "cat" on db1'),
    ],
)
def test_a_url_is_named_by_database_servers_and_user(url: str, named: str) -> None:
    assert describe(url) == named
    assert "hunter2" not in describe(url)


def test_a_url_that_does_not_parse_is_not_repeated() -> None:
    assert describe("postgresql://a:b@h:notaport/x?=") == (
        "the PostgreSQL catalogue (its URL does not parse)"
    )
