"""What only the SQLite catalogue promises: exact time conversion, WAL and full sync, schema
versions and migrations, a file that is not a database reported as corrupt."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recd.adapters.sqlite.catalogue import SCHEMA_VERSION, SqliteCatalogue, from_us, to_us
from recd.adapters.sqlite.schema import MIGRATIONS
from recd.errors import CatalogueCorrupt, StateError
from recd.ports.records import AuditMark, Intent
from tests.contracts.rows import T0, rec


def test_time_conversion_is_exact() -> None:
    when = datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=UTC)
    assert from_us(to_us(when)) == when
    assert to_us(datetime(1970, 1, 1, tzinfo=UTC)) == 0


def test_sqlite_is_wal_with_full_sync_and_versioned(tmp_path: Path) -> None:
    cat = SqliteCatalogue(tmp_path / "c.db")
    cat.close()
    db = sqlite3.connect(tmp_path / "c.db")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    db.close()
    SqliteCatalogue(tmp_path / "c.db").close()  # reopening does not migrate again


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "c.db")
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StateError) as exc:
        SqliteCatalogue(tmp_path / "c.db")
    assert str(exc.value) == (
        f"{tmp_path / 'c.db'}: catalogue schema {SCHEMA_VERSION + 1} is newer than this recd "
        f"understands ({SCHEMA_VERSION}); upgrade recd"
    )


def test_sqlite_reports_a_file_that_is_not_a_database_as_corrupt(tmp_path: Path) -> None:
    (tmp_path / "c.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CatalogueCorrupt) as exc:
        SqliteCatalogue(tmp_path / "c.db")
    assert str(exc.value) == (
        f"{tmp_path / 'c.db'}: the catalogue is corrupt: file is not a database"
    )


def test_rows_of_an_older_schema_have_no_stamps(tmp_path: Path) -> None:
    """Schema 5 adds the change and birth times; rows indexed before have NULL (not compared)."""
    db = sqlite3.connect(tmp_path / "catalog.db")
    db.executescript("".join(MIGRATIONS[v] for v in range(1, 5)) + "PRAGMA user_version=4;")
    db.execute(
        "INSERT INTO recordings (id, source, location, dir, dev, ino, size, mtime_ns, licence, "
        "started, deadline, fields, state, first_seen, indexed_at) VALUES "
        "('x', 'pbx', 'a.wav', '', 1, 1, 70, 0, 'L1', 0, NULL, '{}', 'present', 0, 0)"
    )
    db.commit()
    db.close()
    cat = SqliteCatalogue(tmp_path / "catalog.db")
    got = cat.get("x")
    cat.close()
    assert got is not None
    assert (got.ctime_ns, got.btime_ns) == (None, None)


def test_an_older_catalogue_in_use_has_seen_its_log(tmp_path: Path) -> None:
    """Schema 6 marks a catalogue an older recd kept (position unknown), not an unused one."""
    for name, used in (("used.db", True), ("unused.db", False)):
        db = sqlite3.connect(tmp_path / name)
        db.executescript("".join(MIGRATIONS[v] for v in range(1, 6)) + "PRAGMA user_version=5;")
        if used:
            db.execute("INSERT INTO scans (source, rule, started) VALUES ('pbx', 'r', 0)")
        db.commit()
        db.close()
        cat = SqliteCatalogue(tmp_path / name)
        mark = cat.audit_mark()
        cat.close()
        assert mark == (AuditMark(None, None) if used else None), name


def test_a_failed_transaction_rolls_back(tmp_path: Path) -> None:
    catalogue = SqliteCatalogue(tmp_path / "c.db")
    a = rec("a.wav")
    catalogue.upsert([a], T0)
    with pytest.raises(sqlite3.IntegrityError):
        catalogue.add_intents(
            [Intent("same", a.id, 0, "t", {}, T0), Intent("same", a.id, 0, "t", {}, T0)]
        )
    assert catalogue.pending_intents() == []
    catalogue.close()
