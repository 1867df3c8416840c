"""The implementations each contract suite runs on, as fixture parameters.

An implementation joins by adding its name to ``CATALOGUES`` and a branch to
``open_catalogue``: every role suite in this directory then runs on it too (borgstore's
``tests/test_backends.py`` style). "postgres" runs on a fresh database of the session's test
server (``tests.pg``), and skips, naming the package, where the server binaries are missing.
Sources and erasers run on every kind of place in ``PLACES`` (``tests.contracts.places``) the
same way, and the audit log on each kind in ``AUDIT_LOGS`` (``tests.contracts.chains``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recd.adapters.sqlite.catalogue import SqliteCatalogue
from recd.adapters.sqlite.reader import SqliteReader
from recd.ports.catalogue import Catalogue
from recd.ports.reader import CatalogueReader
from tests.contracts.chains import AUDIT_LOGS, Chain, open_chain
from tests.contracts.places import PLACES, Place, open_place
from tests.pg import PgDatabase

CATALOGUES = ["sqlite", "postgres"]


def open_catalogue(kind: str, request: pytest.FixtureRequest) -> tuple[Catalogue, CatalogueReader]:
    """A new, empty catalogue of ``kind`` and a reader beside it."""
    if kind == "postgres":
        from recd.adapters.postgres.catalogue import PostgresCatalogue
        from recd.adapters.postgres.reader import PostgresReader

        database: PgDatabase = request.getfixturevalue("pg_database")
        return PostgresCatalogue(database.url), PostgresReader(database.url)
    assert kind == "sqlite", kind
    path: Path = request.getfixturevalue("tmp_path")
    catalogue = SqliteCatalogue(path / "catalog.db")
    return catalogue, SqliteReader(path / "catalog.db")


@pytest.fixture(params=CATALOGUES)
def catalogue(request: pytest.FixtureRequest) -> Iterator[Catalogue]:
    cat, reader = open_catalogue(request.param, request)
    reader.close()
    yield cat
    cat.close()


@pytest.fixture(params=CATALOGUES)
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[Catalogue, CatalogueReader]]:
    cat, reader = open_catalogue(request.param, request)
    yield cat, reader
    reader.close()
    cat.close()


@pytest.fixture(params=PLACES)
def place(request: pytest.FixtureRequest) -> Iterator[Place]:
    """A directory, or a bucket on the moto server, with its ``Source`` and ``Eraser``."""
    yield from open_place(request.param, request)


@pytest.fixture(params=AUDIT_LOGS)
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    """A new, empty audit log: the file of a state directory, or the table of a database."""
    yield from open_chain(request.param, request)
