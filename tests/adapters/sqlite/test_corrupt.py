"""A corrupt catalogue is told apart from one that cannot be used now (issue 14, point 2).

Each case damages a real catalogue file the way a disk, a crash or a person would and opens
it with the real adapter: corruption raises ``CatalogueCorrupt`` naming the file and what is
wrong (the table, for a row), at open or at the first read that meets it, never another
exception; a locked, read-only or newer catalogue is not corrupt and keeps its error.
``move_aside`` renames the catalogue and its journals, never over an earlier copy.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from recd.adapters.sqlite import corrupt
from recd.adapters.sqlite.catalogue import SCHEMA_VERSION, SqliteCatalogue
from recd.adapters.sqlite.corrupt import ABSURD_VERSION, corruption, move_aside
from recd.adapters.sqlite.reader import SqliteReader
from recd.core.holds import Hold
from recd.core.scope import Scope
from recd.errors import CatalogueCorrupt, StateError
from tests.adapters.loopfs import Mounts
from tests.contracts.rows import T0, rec

NOW = datetime(2026, 12, 6, 7, 15, 0, tzinfo=UTC)
ASIDE = "catalog.db.corrupt-20261206T071500Z"
NOT_UTF8 = "CAST(X'7b226cff63656e6365223a22' AS TEXT)"  # '{"l\xffcence":"' : one byte flipped


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A real catalogue (500 recordings in 7 directories, one hold), closed, checkpointed."""
    path = tmp_path / "catalog.db"
    catalogue = SqliteCatalogue(path)
    catalogue.upsert([rec(f"L1/d{i % 7}/call-{i:05d}.wav", ino=i) for i in range(500)], T0)
    catalogue.place_hold(Hold("", Scope("L1"), "CASE-1", "court order", T0, "alice"))
    catalogue.close()
    assert not Path(f"{path}-wal").exists(), "not checkpointed: the bytes below are not all"
    return path


def opened(path: Path) -> str:
    """What opening ``path`` finds wrong (CatalogueCorrupt's problem)."""
    with pytest.raises(CatalogueCorrupt) as exc:
        SqliteCatalogue(path).close()
    assert str(exc.value) == f"{path}: the catalogue is corrupt: {exc.value.problem}"
    assert exc.value.path == str(path)
    return exc.value.problem


def execute(path: Path, sql: str) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute(sql)
        db.commit()
    finally:
        db.close()


# -- not a database, damaged pages --------------------------------------------------------------


def test_garbage_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "catalog.db").write_bytes(os.urandom(8192))
    assert opened(tmp_path / "catalog.db") == "file is not a database"


def test_a_sqlite_header_over_garbage_is_malformed(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:100] + os.urandom(len(data) - 100))
    assert opened(path) == "database disk image is malformed"


def test_a_catalogue_cut_in_the_middle_of_a_page(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 1000])
    assert opened(path) == "database disk image is malformed"


def test_a_flipped_byte_in_a_page_header_is_found_by_quick_check(path: Path) -> None:
    """Page 3's free-space pointer: every query that avoids the page works, so only
    ``quick_check`` at open finds it before a sweep does."""
    data = bytearray(path.read_bytes())
    data[2 * 4096 + 5] ^= 0xFF
    path.write_bytes(bytes(data))
    assert opened(path) == "PRAGMA quick_check: Page 3: free space corruption (and 4 more)"
    SqliteCatalogue(path, quick_check=False).close()  # unchecked, it opens


def test_a_flipped_byte_in_the_schema_text_is_not_a_traceback(path: Path) -> None:
    """SQLite's message quotes the damaged schema, bytes that are not UTF-8 included."""
    data = bytearray(path.read_bytes())
    at = data.index(b"CREATE TABLE holds")
    data[at + 3] = 0xFF
    path.write_bytes(bytes(data))
    assert opened(path) in ("its schema is not UTF-8 (malformed)", "malformed database schema")


# -- a schema that makes no sense -----------------------------------------------------------------


@pytest.mark.parametrize("version", [-1, ABSURD_VERSION, 2**31 - 1])
def test_a_schema_version_that_makes_no_sense(path: Path, version: int) -> None:
    execute(path, f"PRAGMA user_version={version}")
    assert opened(path) == f"schema version {version} makes no sense"


def test_a_schema_version_without_its_tables(path: Path) -> None:
    execute(path, "DROP TABLE holds")
    assert opened(path) == f"schema version {SCHEMA_VERSION} without table holds"


def test_a_database_that_is_not_a_catalogue(tmp_path: Path) -> None:
    execute(tmp_path / "catalog.db", "CREATE TABLE photos (id INTEGER)")
    assert opened(tmp_path / "catalog.db") == "tables (photos) but no schema version"


def test_a_newer_schema_is_refused_not_corrupt(path: Path) -> None:
    execute(path, f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StateError) as exc:
        SqliteCatalogue(path)
    assert type(exc.value) is StateError
    assert "is newer than this recd understands" in str(exc.value)


# -- rows that do not decode ----------------------------------------------------------------------


def test_text_that_is_not_utf8_in_a_hold_is_found_at_open(path: Path) -> None:
    execute(path, f"UPDATE holds SET scope = {NOT_UTF8}")
    assert opened(path) == "table holds, column scope: text that is not UTF-8"


def test_text_that_is_not_utf8_in_a_location_is_found_when_read(path: Path) -> None:
    target = rec("L1/d3/call-00003.wav", ino=3)
    execute(path, f"UPDATE recordings SET location = {NOT_UTF8} WHERE id = '{target.id}'")
    catalogue = SqliteCatalogue(path)  # quick_check does not look at text encodings
    try:
        other = catalogue.get(rec("L1/d0/call-00000.wav").id)  # the other rows still read
        assert other is not None and other.relpath == "L1/d0/call-00000.wav"
        with pytest.raises(CatalogueCorrupt) as exc:
            catalogue.get(target.id)
    finally:
        catalogue.close()
    assert str(exc.value) == (
        f"{path}: the catalogue is corrupt: table recordings, column location: "
        "text that is not UTF-8"
    )
    with SqliteReader(path) as reader, pytest.raises(CatalogueCorrupt) as exc:
        reader.get(target.id)
    assert exc.value.problem == "table recordings, column location: text that is not UTF-8"


def test_json_that_does_not_parse_in_a_request(path: Path) -> None:
    execute(
        path,
        "INSERT INTO requests (id, licence, state, document, digest, info, updated) "
        "VALUES ('REQ-1', 'L1', 'received', '{\"scope\": {', 'x', '{}', 0)",
    )
    catalogue = SqliteCatalogue(path)
    try:
        with pytest.raises(CatalogueCorrupt) as exc:
            catalogue.requests()
    finally:
        catalogue.close()
    assert exc.value.problem == (
        "table requests: a row does not decode (JSONDecodeError: Expecting property name "
        "enclosed in double quotes: line 1 column 12 (char 11))"
    )


def test_a_state_no_recd_writes_in_a_recording(path: Path) -> None:
    execute(path, "UPDATE recordings SET state = 'presenu' WHERE rowid = 1")
    catalogue = SqliteCatalogue(path)
    try:
        with pytest.raises(CatalogueCorrupt) as exc:
            catalogue.in_dir("pbx", "L1/d0")
    finally:
        catalogue.close()
    assert exc.value.problem == (
        "table recordings: a row does not decode (ValueError: 'presenu' is not a valid State)"
    )


def test_an_audit_mark_that_does_not_parse_is_found_at_open(path: Path) -> None:
    execute(path, "INSERT OR REPLACE INTO meta (key, value) VALUES ('audit_mark', '{\"seq\": 1')")
    assert opened(path).startswith("table meta: a row does not decode (JSONDecodeError: ")


# -- not corrupt: left alone, with the error it had -----------------------------------------------


def test_a_locked_catalogue_is_not_corrupt(path: Path) -> None:
    """Another process holds a write lock (a rollback journal, as an older tool would):
    opening waits for it (busy_timeout), then says so; the file is not touched."""
    execute(path, "PRAGMA journal_mode=DELETE")
    before = path.read_bytes()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StateError) as exc:
            SqliteCatalogue(path)
    finally:
        other.close()
    assert type(exc.value) is StateError
    assert str(exc.value) == f"{path}: cannot open the catalogue: database is locked"
    assert path.read_bytes() == before


@pytest.mark.root
def test_a_catalogue_on_a_read_only_filesystem_is_not_corrupt(tmp_path: Path) -> None:
    with Mounts(tmp_path / "mounts") as mounts:
        disk = mounts.tmpfs(tmp_path / "state", size="4m")
        SqliteCatalogue(tmp_path / "state" / "catalog.db").close()
        disk.remount("ro")
        with pytest.raises(StateError) as exc:
            SqliteCatalogue(tmp_path / "state" / "catalog.db")
        assert type(exc.value) is StateError, exc.value
        assert "cannot open the catalogue: " in str(exc.value)


# -- moved aside ----------------------------------------------------------------------------------


@pytest.fixture
def damaged(tmp_path: Path) -> Iterator[Path]:
    """catalog.db with a -wal, -shm and -journal beside it (bytes that say which is which)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        (tmp_path / f"catalog.db{suffix}").write_bytes(f"damaged{suffix}".encode())
    yield tmp_path / "catalog.db"


def test_move_aside_takes_the_journals_along(damaged: Path) -> None:
    aside = move_aside(damaged, NOW)
    assert aside == damaged.with_name(ASIDE)
    state = damaged.parent
    assert sorted(p.name for p in state.iterdir()) == sorted(
        f"{ASIDE}{s}" for s in ("", "-wal", "-shm", "-journal")
    )
    for suffix in ("", "-wal", "-shm", "-journal"):
        assert (state / f"{ASIDE}{suffix}").read_bytes() == f"damaged{suffix}".encode()


def test_move_aside_never_overwrites_an_earlier_copy(damaged: Path) -> None:
    first = move_aside(damaged, NOW)
    damaged.write_bytes(b"damaged again")
    second = move_aside(damaged, NOW)  # the same second
    assert (first.name, second.name) == (ASIDE, f"{ASIDE}-2")
    assert first.read_bytes() == b"damaged"
    assert second.read_bytes() == b"damaged again"
    assert Path(f"{first}-wal").read_bytes() == b"damaged-wal"
    assert not damaged.exists()


def test_move_aside_in_local_time_still_names_utc(damaged: Path) -> None:
    local = NOW.astimezone(timezone(timedelta(hours=-5)))
    assert move_aside(damaged, local).name == ASIDE


@pytest.mark.root
def test_a_catalogue_that_cannot_be_moved_aside_stays_where_it_is(tmp_path: Path) -> None:
    """A read-only filesystem: one line naming the file and why, nothing renamed or lost."""
    with Mounts(tmp_path / "mounts") as mounts:
        disk = mounts.tmpfs(tmp_path / "state", size="1m")
        damaged = tmp_path / "state" / "catalog.db"
        for suffix in ("", "-wal"):
            Path(f"{damaged}{suffix}").write_bytes(f"damaged{suffix}".encode())
        disk.remount("ro")
        with pytest.raises(StateError) as exc:
            move_aside(damaged, NOW)
        assert str(exc.value) == (
            f"{damaged}: cannot move the corrupt catalogue aside: Read-only file system"
        )
        assert sorted(os.listdir(damaged.parent)) == ["catalog.db", "catalog.db-wal"]
        assert damaged.read_bytes() == b"damaged"


def test_move_aside_when_every_name_is_taken_says_so(
    damaged: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(corrupt, "ASIDE_NAMES", 3)  # 9,999 names: seconds of symlinks
    for n in range(1, 4):
        suffix = "" if n == 1 else f"-{n}"
        os.symlink("elsewhere", damaged.with_name(f"{ASIDE}{suffix}"))
    with pytest.raises(StateError) as exc:
        move_aside(damaged, NOW)
    assert str(exc.value) == (
        f"{damaged}: cannot move the corrupt catalogue aside: every name is taken"
    )
    assert damaged.read_bytes() == b"damaged", "the catalogue went somewhere"
    assert os.readlink(damaged.with_name(ASIDE)) == "elsewhere", "an earlier copy was replaced"


def undecodable(path: Path) -> tuple[sqlite3.Connection, sqlite3.OperationalError]:
    """An open connection to ``path`` and the error SQLite raises reading text that is not
    UTF-8 from its recordings."""
    execute(path, f"UPDATE recordings SET location = {NOT_UTF8}")
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.OperationalError) as exc:
        db.execute("SELECT location FROM recordings").fetchone()
    return db, exc.value


def test_text_that_is_not_utf8_names_its_column_when_its_table_cannot_be_found(
    path: Path,
) -> None:
    db, exc = undecodable(path)
    assert corruption(path, exc, db) == "table recordings, column location: text that is not UTF-8"
    db.close()  # the connection gone before its tables were looked up
    assert corruption(path, exc, db) == "column location: text that is not UTF-8"
    assert corruption(path, exc, None) == "column location: text that is not UTF-8"


@pytest.mark.parametrize(
    "failure",
    [
        OSError(5, "Input/output error"),
        PermissionError(13, "Permission denied"),
        sqlite3.OperationalError("database is locked"),
    ],
)
def test_failures_that_are_not_corruption_are_not_called_corrupt(
    path: Path, failure: Exception
) -> None:
    assert corruption(path, failure, None) is None
