"""A first index into an empty catalogue (recd.adapters.sqlite.indexing ``begin_bulk``): the
recordings' secondary indexes are dropped while it loads and built once at the end; a catalogue
left without them (recd killed mid-load) gets them back when it is next opened."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from recd.adapters.sqlite.catalogue import SqliteCatalogue
from recd.adapters.sqlite.queries import hinted
from recd.adapters.sqlite.reader import SqliteReader
from recd.adapters.sqlite.schema import MIGRATIONS, SECONDARY_INDEXES
from recd.core.holds import Hold
from recd.core.scope import Scope
from tests.contracts.rows import T0, rec

DAY = timedelta(days=1)


def indexes(path: Path) -> dict[str, str]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).fetchall()
    finally:
        db.close()
    return {name: " ".join(sql.split()) for name, sql in rows}


def test_secondary_indexes_are_those_the_migrations_leave(tmp_path: Path) -> None:
    """The definitions a bulk load rebuilds are the migrations' own (kept in step)."""
    db = sqlite3.connect(tmp_path / "m.db")
    db.executescript("".join(MIGRATIONS[v] for v in sorted(MIGRATIONS)))
    db.close()
    migrated = indexes(tmp_path / "m.db")
    declared = {
        name: " ".join(sql.replace(" IF NOT EXISTS", "").split())
        for name, sql in SECONDARY_INDEXES.items()
    }
    assert {n: s for n, s in migrated.items() if n.startswith("recordings_")} == declared


def test_a_bulk_load_drops_the_indexes_and_builds_them_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    cat = SqliteCatalogue(path)
    assert cat.begin_bulk()
    assert not set(SECONDARY_INDEXES) & set(indexes(path))
    cat.upsert([rec("d/a.wav"), rec("d/b.wav")], T0)
    cat.end_bulk()
    assert set(SECONDARY_INDEXES) <= set(indexes(path))
    assert sorted(cat.in_dir("pbx", "d")) == sorted([rec("d/a.wav").id, rec("d/b.wav").id])
    assert not cat.begin_bulk()  # not empty any more: nothing dropped
    assert set(SECONDARY_INDEXES) <= set(indexes(path))
    cat.close()


def test_a_catalogue_left_mid_load_gets_its_indexes_back_at_open(tmp_path: Path) -> None:
    """recd killed during a first index: the rows committed so far stay, the next open builds
    the indexes before anything queries them."""
    path = tmp_path / "c.db"
    cat = SqliteCatalogue(path)
    assert cat.begin_bulk()
    cat.upsert([rec("d/a.wav")], T0)
    cat.close()  # never ended
    assert not set(SECONDARY_INDEXES) & set(indexes(path))
    again = SqliteCatalogue(path)
    assert set(SECONDARY_INDEXES) <= set(indexes(path))
    assert list(again.in_dir("pbx", "d")) == [rec("d/a.wav").id]
    plan = again._db.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM recordings WHERE source = 'pbx' AND dir = 'd'"
    ).fetchall()
    assert "recordings_dir" in str(plan)
    again.close()


def test_every_query_answers_the_same_during_a_bulk_load(tmp_path: Path) -> None:
    """recctl status, a scrape, the sweep and the S3 hold mirror ask the catalogue while a
    first index loads it: without the indexes their INDEXED BY falls back to a table scan
    with the same rows, never "no such index" (which failed recctl status mid-load)."""
    path = tmp_path / "c.db"
    cat = SqliteCatalogue(path)
    reader = SqliteReader(path)
    assert cat.begin_bulk()
    now = T0 + timedelta(days=31)
    cat.upsert([rec("d/old.wav"), rec("e/new.wav", started=now, deadline=now + DAY)], T0)
    cat.place_hold(
        Hold(
            "",
            Scope("L1", recordings=frozenset({rec("e/new.wav").id})),
            "C-1",
            "litigation",
            T0,
            "alice",
        )
    )

    def answers() -> tuple[object, ...]:
        work, _ = cat.mirror_work("pbx", 10)
        return (
            reader.due_counts(now),
            cat.due_dirs(now),
            cat.counts(now),
            [r.relpath for r in work],
        )

    during = answers()
    assert not set(SECONDARY_INDEXES) & set(indexes(path))
    cat.end_bulk()
    assert answers() == during == ({"L1": 1}, [("pbx", "d")], {"L1": (2, 1)}, ["e/new.wav"])
    reader.close()
    cat.close()


def test_a_real_query_error_is_not_taken_for_a_missing_index(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "x.db")
    db.execute("CREATE TABLE t (a)")
    with pytest.raises(sqlite3.OperationalError, match="no such index: other"):
        hinted(
            db, "SELECT a FROM t {hint} WHERE a IN (SELECT a FROM t INDEXED BY other)", (), "mine"
        )
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        hinted(db, "SELECT b FROM t {hint}", (), "mine")
    assert hinted(db, "SELECT a FROM t {hint}", (), "mine").fetchall() == []
    db.close()
