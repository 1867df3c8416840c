"""The catalogue's migrations (recd.adapters.sqlite.schema) on catalogues an older recd made:
schema 5's change and birth times left NULL on older rows, and schema 6 telling a
catalogue an older recd kept from an unused one. (Schema 2's totals: test_reader.py.)
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from recd.adapters.sqlite.catalogue import SqliteCatalogue
from recd.adapters.sqlite.schema import MIGRATIONS
from recd.ports.records import AuditMark


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
