"""What is PostgreSQL's own in the catalogue (recd.adapters.postgres): the versioned schema
created in an empty database and refused when newer, errors that name the database without
its password, and rows that do not decode. The roles themselves: tests/contracts."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from recd.adapters.postgres.catalogue import MIGRATION_LOCK, SCHEMA_VERSION, PostgresCatalogue
from recd.adapters.postgres.reader import PostgresReader
from recd.adapters.postgres.schema import MIGRATIONS
from recd.core.fastclass import Classified, Found
from recd.core.holds import Hold
from recd.core.model import FileFacts, Provenance, State
from recd.core.scope import Scope
from recd.errors import CatalogueCorrupt, CatalogueUnreachable, StateError
from recd.ports.records import AuditMark, Intent
from tests import pg
from tests.contracts.rows import T0, ns, rec
from tests.pg import PgDatabase, Postgres

REPO = Path(__file__).resolve().parents[3]


def _facts(relpath: str) -> FileFacts:
    return FileFacts("pbx", relpath, 7, 1, 100, ns(T0), ctime_ns=ns(T0), btime_ns=None)


def _classified() -> Classified:
    return Classified("L1", 10**15, None, None, None, None, None, "wav",
                      (("licence", Provenance.PATTERN),))  # fmt: skip


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def _version(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_version").fetchall()]


def test_an_empty_database_gets_every_table_at_the_latest_version(pg_database: PgDatabase) -> None:
    assert _tables(pg_database.url) == set()
    PostgresCatalogue(pg_database.url).close()
    assert max(MIGRATIONS) == SCHEMA_VERSION
    assert _version(pg_database.url) == [SCHEMA_VERSION]
    assert _tables(pg_database.url) == {
        "schema_version", "recordings", "totals", "intents", "policies", "scans", "breakers",
        "holds", "requests", "request_items", "s3_legal_holds", "meta", "dir_stamps", "audit",
        "claims",  # leases (issue 18 point 3)
    }  # fmt: skip


def test_hosts_starting_at_once_on_an_empty_database_all_open_it(pg_database: PgDatabase) -> None:
    # Found by tests/e2e/test_multihost.py: of three recd started at once, the ones that waited
    # for the migration lock failed "relation schema_version already exists".
    opened: list[PostgresCatalogue] = []
    failed: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(PostgresCatalogue(pg_database.url))
        except BaseException as exc:  # reported by the assertion below
            failed.append(exc)

    with psycopg.connect(pg_database.url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        threads = [threading.Thread(target=open_one) for _ in range(3)]
        for thread in threads:
            thread.start()
        give_up = time.monotonic() + 30
        while _waiting_for_the_lock(holder) < len(threads):  # each saw no tables yet
            assert time.monotonic() < give_up, "the catalogues never waited for the lock"
            time.sleep(0.01)
        holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        for thread in threads:
            thread.join(timeout=30)
    for catalogue in opened:
        catalogue.close()
    assert failed == []
    assert len(opened) == len(threads)
    assert _version(pg_database.url) == [SCHEMA_VERSION]


def _waiting_for_the_lock(db: psycopg.Connection[tuple[object, ...]]) -> int:
    row = db.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = %s",
        (MIGRATION_LOCK,),
    ).fetchone()
    return 0 if row is None else int(str(row[0]))


def test_opening_again_keeps_what_was_stored(pg_database: PgDatabase) -> None:
    with_rows = PostgresCatalogue(pg_database.url)
    with_rows.upsert([rec("a.wav")], T0)
    with_rows.set_audit_mark(AuditMark(3, "ab" * 32))
    with_rows.close()
    again = PostgresCatalogue(pg_database.url)
    try:
        assert again.get(rec("a.wav").id) == rec("a.wav")
        assert again.audit_mark() == AuditMark(3, "ab" * 32)
    finally:
        again.close()
    assert _version(pg_database.url) == [SCHEMA_VERSION]


def test_a_schema_newer_than_this_recd_is_refused(
    postgres: Postgres, pg_database: PgDatabase
) -> None:
    PostgresCatalogue(pg_database.url).close()
    with psycopg.connect(pg_database.url) as conn:
        conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StateError) as caught:
        PostgresCatalogue(pg_database.url)
    named = f'database "{pg_database.name}" on {postgres.socket_dir} as user "recd"'
    assert str(caught.value) == (
        f"catalogue {named}: schema {SCHEMA_VERSION + 1} is newer than this recd understands "
        f"({SCHEMA_VERSION}); upgrade recd on this host"
    )
    with pytest.raises(StateError, match=f"schema {SCHEMA_VERSION + 1}, this recd reads"):
        PostgresReader(pg_database.url)
    assert _version(pg_database.url) == [SCHEMA_VERSION + 1], "left as it was"


def test_the_reader_refuses_a_database_recd_never_set_up(pg_database: PgDatabase) -> None:
    with pytest.raises(StateError, match=f"schema 0, this recd reads {SCHEMA_VERSION}"):
        PostgresReader(pg_database.url)
    assert _tables(pg_database.url) == set(), "a reader creates nothing"


def test_an_unreachable_server_is_named_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://alice:s3cret@/ledger?host={tmp_path}&connect_timeout=2"
    for opener in (PostgresCatalogue, PostgresReader):
        with pytest.raises(CatalogueUnreachable) as caught:
            opener(url)
        message = str(caught.value)
        assert message.startswith(
            f'catalogue database "ledger" on {tmp_path} as user "alice": cannot reach the '
            "database: connection is bad: connection to server on socket "
        ), message
        assert caught.value.exit_code == 69
        assert "s3cret" not in message and "\n" not in message


def test_a_session_ended_mid_run_is_unreachable_and_the_next_call_connects_again(
    postgres: Postgres, pg_database: PgDatabase
) -> None:
    catalogue = PostgresCatalogue(pg_database.url)
    try:
        with psycopg.connect(postgres.url(), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                "AND pid <> pg_backend_pid()",
                (pg_database.name,),
            )
        with pytest.raises(
            CatalogueUnreachable,
            match=f'^catalogue database "{pg_database.name}" on .*: cannot reach the database: ',
        ):
            catalogue.get("x")
        assert catalogue.get("x") is None
    finally:
        catalogue.close()


def test_a_row_that_does_not_decode_is_corruption_naming_the_table(
    pg_database: PgDatabase,
) -> None:
    catalogue = PostgresCatalogue(pg_database.url)
    try:
        catalogue.upsert([rec("a.wav")], T0)
        with psycopg.connect(pg_database.url) as conn:
            conn.execute("UPDATE recordings SET state = 'vanished'")
            conn.execute("INSERT INTO meta VALUES ('audit_mark', '[1, 2]')")
        with pytest.raises(CatalogueCorrupt, match="table recordings: a row does not decode"):
            catalogue.get(rec("a.wav").id)
        with pytest.raises(CatalogueCorrupt, match="table meta: a row does not decode"):
            catalogue.audit_mark()
    finally:
        catalogue.close()
    with pytest.raises(CatalogueCorrupt, match=f'^database "{pg_database.name}" on .*table meta'):
        PostgresCatalogue(pg_database.url)


def test_writes_are_committed_when_the_call_returns(pg_database: PgDatabase) -> None:
    catalogue = PostgresCatalogue(pg_database.url)
    try:
        catalogue.upsert([rec("a.wav")], T0)
        catalogue.trip_breaker("L1", T0, 1, 2)
        with psycopg.connect(pg_database.url) as other:  # another session sees them at once
            assert other.execute("SELECT id FROM recordings").fetchall() == [(rec("a.wav").id,)]
            assert other.execute("SELECT licence FROM breakers").fetchall() == [("L1",)]
    finally:
        catalogue.close()


def test_psycopg_is_imported_only_with_the_postgres_adapter() -> None:
    code = textwrap.dedent("""
        import sys
        import recd.daemon, recd.adapters.sqlite.catalogue, recd.adapters.sqlite.reader
        assert "psycopg" not in sys.modules, "psycopg imported without a PostgreSQL catalogue"
        import recd.adapters.postgres.catalogue
        assert "psycopg" in sys.modules
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def _recount(url: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The totals table, and the same totals counted from the recordings."""
    with psycopg.connect(url) as conn:
        kept = conn.execute(
            "SELECT licence, recordings, bytes, held FROM totals WHERE recordings <> 0 "
            "ORDER BY licence"
        ).fetchall()
        counted = conn.execute(
            "SELECT coalesce(licence, ''), count(*), sum(size), sum(held) FROM recordings "
            "WHERE state = 'present' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    return kept, counted


def test_the_totals_triggers_count_every_kind_of_change(pg_database: PgDatabase) -> None:
    """Per statement, not per row: a batch, a hold, a release, a rescan and a delete each
    leave the totals equal to a count of the recordings."""
    catalogue = PostgresCatalogue(pg_database.url)
    try:
        rows = [rec(f"d/{n}.wav", licence=("L1", "L2", None)[n % 3]) for n in range(30)]
        catalogue.upsert(rows + rows[:5], T0)  # an id twice in one batch: stored once
        placed, _ = catalogue.place_hold(Hold("", Scope("L1"), "C", "r", T0, "alice"))
        catalogue.mark_missing([r.id for r in rows[:7]])
        catalogue.upsert(rows[:3], T0)
        catalogue.release_hold(placed, at=T0, by="bob", reason="x", expired=False, not_before=T0)
        catalogue.place_hold(Hold("", Scope("L2"), "C", "r", T0, "alice"))
        with psycopg.connect(pg_database.url) as conn:
            conn.execute("DELETE FROM recordings WHERE id = ANY(%s)", ([r.id for r in rows[20:]],))
        kept, counted = _recount(pg_database.url)
        assert kept == counted
        assert sum(int(str(k[1])) for k in kept) == 30 - 7 + 3 - 10
    finally:
        catalogue.close()


def test_a_hold_placed_through_another_connection_keeps_what_is_indexed_later(
    pg_database: PgDatabase,
) -> None:
    """A hold is a rule of the database, not of the connection that placed it: another
    catalogue on the same database holds (and, released, floors) what it indexes after."""
    here, there = PostgresCatalogue(pg_database.url), PostgresCatalogue(pg_database.url)
    try:
        here.upsert([rec("first.wav")], T0)  # this catalogue has read the (no) holds
        placed, _ = there.place_hold(Hold("", Scope("L1"), "C", "r", T0, "alice"))
        here.upsert([rec("later.wav")], T0)
        found = [Found(rec("new.wav").id, _facts("new.wav"), _classified())]
        here.insert_new(found, T0)
        held = [here.get(rec(p).id) for p in ("later.wav", "new.wav")]
        assert [r is not None and r.held for r in held] == [True, True]
        due = T0 + timedelta(days=45)
        there.release_hold(placed, at=T0, by="bob", reason="x", expired=False, not_before=due)
        here.upsert([rec("after.wav")], T0)
        after = here.get(rec("after.wav").id)
        assert after is not None and (after.held, after.deadline) == (False, due)
    finally:
        here.close()
        there.close()


def _named(server: Postgres, database: PgDatabase) -> str:
    return f'database "{database.name}" on {server.socket_dir} as user "recd"'


def test_a_server_stopped_is_unreachable_and_served_again_once_started(
    stoppable: Postgres, stoppable_database: PgDatabase
) -> None:
    """The same objects, no new ones: each call while the server is down says so (exit 69);
    the first call after it is back connects again, with what a connection needs (the table
    batches are copied into, the hold rules), and finds every row as it was."""
    url = stoppable_database.url
    catalogue, reader = PostgresCatalogue(url), PostgresReader(url)
    try:
        catalogue.upsert([rec("a.wav"), rec("b.wav")], T0)
        catalogue.place_hold(Hold("", Scope("L2"), "C", "r", T0, "alice"))
        unreachable = f"^catalogue {re.escape(_named(stoppable, stoppable_database))}: "
        with pg.down(stoppable):
            for call in (
                lambda: catalogue.get(rec("a.wav").id),
                lambda: catalogue.upsert([rec("c.wav")], T0),
                reader.totals,
            ):
                with pytest.raises(CatalogueUnreachable, match=f"{unreachable}cannot reach the"):
                    call()
            with pytest.raises(CatalogueUnreachable) as again:  # and again: it tries each time
                catalogue.get(rec("a.wav").id)
            assert "\n" not in str(again.value) and again.value.exit_code == 69
        assert catalogue.get(rec("a.wav").id) == rec("a.wav")
        catalogue.upsert([rec("c.wav"), rec("d.wav", licence="L2")], T0)  # a batch: copied
        held = catalogue.get(rec("d.wav").id)
        assert held is not None and held.held, "the hold rules came back with the connection"
        assert reader.get(rec("b.wav").id) == rec("b.wav")
        assert [(t.licence, t.recordings) for t in reader.totals()] == [("L1", 3), ("L2", 1)]
    finally:
        reader.close()
        catalogue.close()
    with pytest.raises(ValueError, match="is closed"):
        catalogue.get("x")


def _waiting(admin: psycopg.Connection[tuple[object, ...]], database: str) -> bool:
    """Whether a session on ``database`` waits for a lock, within 10 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            (database,),
        ).fetchone()
        if row is not None and row[0]:
            return True
        time.sleep(0.02)
    return False


def test_a_transaction_cut_by_the_server_stopping_leaves_nothing_half_written(
    stoppable: Postgres, stoppable_database: PgDatabase
) -> None:
    """``resolve_intents`` marks the recording erased and drops the intent, then waits for the
    claims table (locked by another session), and the server stops: none of it is stored."""
    url = stoppable_database.url
    catalogue = PostgresCatalogue(url, node="a")
    try:
        catalogue.upsert([rec("a.wav")], T0)
        due = T0 + timedelta(days=400)
        assert [r.id for r in catalogue.due_in("pbx", "", due, 10)] == [rec("a.wav").id]
        intent = Intent("i-1", rec("a.wav").id, 0, ".recd-tmp", {}, due)
        assert catalogue.add_intents([intent]) == {"i-1"}
        failed: list[BaseException] = []

        def resolve() -> None:
            try:
                catalogue.resolve_intents([("i-1", due)], [])
            except BaseException as exc:
                failed.append(exc)

        admin = psycopg.connect(url)  # closed, not committed: the server ends its session
        try:
            admin.execute("LOCK TABLE claims IN ACCESS EXCLUSIVE MODE")  # held: no commit
            worker = threading.Thread(target=resolve)
            worker.start()
            with psycopg.connect(url, autocommit=True) as watcher:
                assert _waiting(watcher, stoppable_database.name)
            with pg.down(stoppable):
                worker.join(30)
        finally:
            admin.close()
        assert [type(e) for e in failed] == [CatalogueUnreachable]
        kept = catalogue.get(rec("a.wav").id)
        assert kept is not None and kept.state == State.PRESENT
        assert [i.id for i in catalogue.pending_intents()] == ["i-1"]
    finally:
        catalogue.close()


def test_another_failure_of_a_live_session_is_a_state_error_and_keeps_it(
    pg_database: PgDatabase,
) -> None:
    """A lock not granted in time is the server answering, not the server gone."""
    catalogue = PostgresCatalogue(f"{pg_database.url}&options=-c%20lock_timeout%3D200")
    try:
        with psycopg.connect(pg_database.url) as admin:
            admin.execute("LOCK TABLE holds IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(StateError) as caught:
                catalogue.upsert([rec("a.wav")], T0)
        assert not isinstance(caught.value, CatalogueUnreachable)
        assert "lock timeout" in str(caught.value)
        catalogue.upsert([rec("a.wav")], T0)
        assert catalogue.get(rec("a.wav").id) == rec("a.wav")
    finally:
        catalogue.close()
