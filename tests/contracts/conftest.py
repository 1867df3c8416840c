"""The implementations each contract suite runs on, as fixture parameters.

A second implementation (the PostgreSQL catalogue of the next issue) joins by adding its name
to ``CATALOGUES`` and a branch to ``open_catalogue``: every role suite in this directory then
runs on it too (borgstore's ``tests/test_backends.py`` style). Sources and erasers run on every
kind of place in ``PLACES`` (``tests.contracts.places``) the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recd.adapters.sqlite.catalogue import SqliteCatalogue
from recd.adapters.sqlite.reader import SqliteReader
from recd.ports.catalogue import Catalogue
from recd.ports.reader import CatalogueReader
from tests.contracts.places import PLACES, Place, open_place

CATALOGUES = ["sqlite"]


def open_catalogue(kind: str, path: Path) -> tuple[Catalogue, CatalogueReader]:
    """A new catalogue of ``kind`` in ``path`` and a reader beside it."""
    assert kind == "sqlite", kind
    catalogue = SqliteCatalogue(path / "catalog.db")
    return catalogue, SqliteReader(path / "catalog.db")


@pytest.fixture(params=CATALOGUES)
def catalogue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalogue]:
    cat, reader = open_catalogue(request.param, tmp_path)
    reader.close()
    yield cat
    cat.close()


@pytest.fixture(params=CATALOGUES)
def pair(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Catalogue, CatalogueReader]]:
    cat, reader = open_catalogue(request.param, tmp_path)
    yield cat, reader
    reader.close()
    cat.close()


@pytest.fixture(params=PLACES)
def place(request: pytest.FixtureRequest) -> Iterator[Place]:
    """A directory, or a bucket on the moto server, with its ``Source`` and ``Eraser``."""
    yield from open_place(request.param, request)
