"""What only the SQLite catalogue promises at open (recd.adapters.sqlite.catalogue): WAL and
full sync with the schema version set, a newer schema refused, and a file that is not a
database reported as corrupt (the rest of corruption is test_corrupt.py; the port's
behaviour, the contract suites in tests/contracts).
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from recd.adapters.sqlite.catalogue import SCHEMA_VERSION, SqliteCatalogue
from recd.errors import CatalogueCorrupt, StateError
from tests.contracts.rows import T0


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


def test_dir_stamps_round_trip_and_a_full_scan_replaces_them(tmp_path: Path) -> None:
    from recd.ports.source import DirStamp

    cat = SqliteCatalogue(tmp_path / "catalog.db")
    try:
        odd = b"\xff\xfe".decode("utf-8", "surrogateescape")  # a name that is not UTF-8
        a = DirStamp(1, 2, 3, 4, ("x", odd), 5, 6)
        b = DirStamp(1, 7, 8, 9, ())
        cat.replace_dir_stamps("pbx", {"L1": a, f"L1/{odd}": b, "gone": b}, (), T0)
        assert cat.dir_stamp("pbx", "L1") == a
        assert cat.dir_stamp("pbx", f"L1/{odd}") == b
        assert cat.dir_stamp("other", "L1") is None
        later = T0 + timedelta(hours=1)
        cat.replace_dir_stamps("pbx", {"L2": b}, {f"L1/{odd}"}, later)  # kept, stamped, dropped
        assert cat.dir_stamp("pbx", f"L1/{odd}") == b
        assert cat.dir_stamp("pbx", "L2") == b
        assert cat.dir_stamp("pbx", "L1") is None and cat.dir_stamp("pbx", "gone") is None
        # A kept stamp keeps the time of the listing that made it.
        assert cat.dir_stamp("pbx", f"L1/{odd}", since=T0) == b
        assert cat.dir_stamp("pbx", f"L1/{odd}", since=later) is None
        assert cat.dir_stamp("pbx", "L2", since=later) == b
    finally:
        cat.close()
