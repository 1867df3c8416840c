"""``recd.core.pgurl``: a libpq URL's shape, checked with no connection, for the config and recctl
alike (their wording around it is tested with each: tests/config/test_catalogue.py,
tests/cli/test_audittable.py)."""

from __future__ import annotations

import pytest

from recd.core.pgurl import REFUSAL, PostgresURL, parse_postgres_url
from recd.errors import InvalidValue

ADVICE = "use the advice given"


def parse(text: str) -> PostgresURL:
    return parse_postgres_url(text, passfile=ADVICE)


@pytest.mark.parametrize(
    ("text", "database", "servers", "user"),
    [
        ("postgresql://recd@db1/recd", "recd", ("db1",), "recd"),
        ("postgres://db1:5433,db2/cat", "cat", ("db1:5433", "db2"), None),
        ("postgresql://[::1]:5432/recd", "recd", ("[::1]:5432",), None),
        ("postgresql:///recd?host=/run/postgresql&user=r", "recd", ("/run/postgresql",), "r"),
        ("postgresql:///x?dbname=other", "other", (), None),
        ("postgresql://%2Fvar%2Frun/recd", "recd", ("/var/run",), None),
    ],
)
def test_a_url_gives_what_libpq_will_use(
    text: str, database: str, servers: tuple[str, ...], user: str | None
) -> None:
    url = parse(text)
    assert (url.text, url.database, url.servers, url.user) == (text, database, servers, user)


def test_it_is_shown_without_the_query() -> None:
    url = parse("postgresql://recd@db1:5433/recd?sslmode=require")
    assert str(url) == 'database "recd" on db1:5433 as user "recd"'
    assert str(parse("postgresql:///recd")) == 'database "recd" on the default unix socket'


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://recd:s3cret@db1/recd",
        "postgresql://db1/recd?password=s3cret",
        "postgresql://db1/recd?sslmode=verify-full&sslpassword=s3cret",
        "postgresql://db1/recd?pass%77ord=s3cret",
    ],
)
def test_a_password_is_refused_with_the_callers_advice_and_never_repeated(text: str) -> None:
    with pytest.raises(InvalidValue) as raised:
        parse(text)
    assert str(raised.value) == f"{REFUSAL}: {ADVICE}"
    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("mysql://db1/recd", "must be a PostgreSQL URL"),
        ("postgresql://db1/", "names no database"),
        ("postgresql://db1:99999/recd", "port must be a number from 1 to 65535"),
        ("postgresql://db1/re cd", "must not contain spaces"),
        ("postgresql://db1/recd%zz", 'has a "%" that is not followed by two hex digits'),
        ("postgresql://db1,db2/recd?port=1,2,3", "gives 3 ports for 2 hosts"),
    ],
)
def test_a_bad_shape_says_what_is_wrong(text: str, start: str) -> None:
    with pytest.raises(InvalidValue, match=f"^{start}"):
        parse(text)
