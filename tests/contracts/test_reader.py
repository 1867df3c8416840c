"""The CatalogueReader contract: read-only queries beside a live writer (SQLite always)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from recd.adapters.sqlite.catalogue import SCHEMA_VERSION, SqliteCatalogue
from recd.adapters.sqlite.reader import SqliteReader
from recd.core.model import State
from recd.errors import StateError
from recd.ports import ListQuery, Totals
from tests.contracts.helpers import T0, rec


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[SqliteCatalogue, SqliteReader]]:
    writer = SqliteCatalogue(tmp_path / "catalog.db")
    reader = SqliteReader(tmp_path / "catalog.db")
    yield writer, reader
    reader.close()
    writer.close()


def test_totals_follow_every_kind_of_change(pair: tuple[SqliteCatalogue, SqliteReader]) -> None:
    writer, reader = pair
    a, b, c = rec("a.wav"), rec("b.wav"), rec("c.wav", licence=None, deadline=None)
    writer.upsert([a, b, c], T0)
    assert reader.totals() == [Totals(None, 1, 100), Totals("L1", 2, 200)]
    writer.upsert([replace(a, size=50, classification=replace(a.classification, licence="L2"))], T0)
    assert reader.totals() == [Totals(None, 1, 100), Totals("L1", 1, 100), Totals("L2", 1, 50)]
    writer.mark_missing([b.id])
    writer.upsert([replace(b, size=10)], T0)  # back again, smaller
    assert reader.totals() == [Totals(None, 1, 100), Totals("L1", 1, 10), Totals("L2", 1, 50)]
    writer.mark_dirs_missing("pbx", [""])
    assert reader.totals() == []


def test_totals_of_a_catalogue_that_predates_them(tmp_path: Path) -> None:
    """Schema 2 fills the totals table from the rows a schema-1 catalogue already had."""
    db = sqlite3.connect(tmp_path / "catalog.db")
    from recd.adapters.sqlite.schema import MIGRATIONS

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


def test_listing_orders_by_deadline_then_the_undated(
    pair: tuple[SqliteCatalogue, SqliteReader],
) -> None:
    writer, reader = pair
    late = rec("late.wav", deadline=T0 + timedelta(days=9))
    soon = rec("soon.wav", deadline=T0 + timedelta(days=1))
    kept = rec("kept.wav", licence=None, deadline=None)
    gone = rec("gone.wav")
    writer.upsert([late, kept, soon, gone], T0)
    writer.mark_missing([gone.id])

    def ids(query: ListQuery) -> list[str]:
        return [r.id for r in reader.recordings(query)]

    assert ids(ListQuery()) == [soon.id, late.id, kept.id]
    assert ids(ListQuery(limit=2)) == [soon.id, late.id]
    assert ids(ListQuery(unclassified=True)) == [kept.id]
    assert ids(ListQuery(licence="L1")) == [soon.id, late.id]
    assert ids(ListQuery(due_before=T0 + timedelta(days=2))) == [soon.id]
    assert ids(ListQuery(state=State.MISSING)) == [gone.id]
    assert set(ids(ListQuery(state=None))) == {late.id, soon.id, kept.id, gone.id}


def test_counts_lookups_and_prefixes(pair: tuple[SqliteCatalogue, SqliteReader]) -> None:
    writer, reader = pair
    a = rec("a.wav", deadline=T0 + timedelta(hours=1))
    b = rec("b.wav", deadline=T0 + timedelta(hours=3))
    writer.upsert([a, b], T0)
    assert reader.due_counts(T0 + timedelta(hours=2)) == {"L1": 1}
    assert reader.overdue(T0 + timedelta(hours=2)) == 1
    assert reader.next_deadline(T0 + timedelta(hours=1)) == T0 + timedelta(hours=3)
    assert reader.next_deadline(T0 + timedelta(hours=3)) is None
    assert reader.get(a.id) == writer.get(a.id)
    assert reader.get("nope") is None
    assert [r.id for r in reader.match(a.id[:8])] == [a.id]
    assert reader.match("") != []


def test_breakers_and_scans(pair: tuple[SqliteCatalogue, SqliteReader]) -> None:
    writer, reader = pair
    writer.trip_breaker("L1", T0, 10, 20)
    writer.begin_scan("pbx", T0, "rule")
    assert reader.breakers() == writer.breakers()
    assert reader.scans() == {"pbx": (T0, None)}
    writer.finish_scan("pbx", T0 + timedelta(seconds=5))
    assert reader.scans() == {"pbx": (T0, T0 + timedelta(seconds=5))}


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
