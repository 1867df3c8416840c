"""What only the SQLite reader promises: a read-only connection, totals of a catalogue that
predates them filled in by the migration, and a clear refusal of a file it cannot read."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from recd.adapters.sqlite.catalogue import SCHEMA_VERSION, SqliteCatalogue
from recd.adapters.sqlite.reader import SqliteReader
from recd.adapters.sqlite.schema import MIGRATIONS
from recd.errors import StateError
from recd.ports.reader import Totals


def test_totals_of_a_catalogue_that_predates_them(tmp_path: Path) -> None:
    """Schema 2 fills the totals table from the rows a schema-1 catalogue already had."""
    db = sqlite3.connect(tmp_path / "catalog.db")
    db.executescript(MIGRATIONS[1] + "PRAGMA user_version=1;")
    db.execute(
        "INSERT INTO recordings VALUES ('x', 'pbx', 'a.wav', '', 1, 1, 70, 0, 'L1', 0, NULL, "
        "'{}', 'present', 0, 0, NULL, NULL)"
    )
    db.commit()
    db.close()
    SqliteCatalogue(tmp_path / "catalog.db").close()
    with SqliteReader(tmp_path / "catalog.db") as reader:
        assert reader.totals() == [Totals("L1", 1, 70)]


def test_reader_cannot_write_and_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    SqliteCatalogue(tmp_path / "catalog.db").close()
    with SqliteReader(tmp_path / "catalog.db") as reader:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader._db.execute("DELETE FROM recordings")
    with pytest.raises(StateError, match="cannot read the catalogue"):
        SqliteReader(tmp_path / "absent.db")
    db = sqlite3.connect(tmp_path / "old.db")
    db.execute("PRAGMA user_version=1")
    db.close()
    with pytest.raises(StateError, match=f"catalogue schema 1, this recd reads {SCHEMA_VERSION}"):
        SqliteReader(tmp_path / "old.db")
