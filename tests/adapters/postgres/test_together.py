"""``together`` on PostgreSQL beyond the contract: the audit log's appends through the catalogue's
connection hold the chain's lock until the outer commit (another host's append waits, so the
chain's order is the commit order), and a connection lost inside the block never leaves half of
it stored, nor hides what the block raised."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from recd.adapters.postgres.audit import PostgresAuditLog
from recd.adapters.postgres.catalogue import PostgresCatalogue
from recd.adapters.postgres.reader import PostgresReader
from recd.errors import CatalogueUnreachable
from tests.contracts.chains import NOW, drafts
from tests.pg import PgDatabase


class Boom(Exception):
    pass


@pytest.fixture
def cat(pg_database: PgDatabase) -> Iterator[PostgresCatalogue]:
    catalogue = PostgresCatalogue(pg_database.url, node="a")
    yield catalogue
    catalogue.close()


@pytest.fixture
def log(pg_database: PgDatabase, cat: PostgresCatalogue) -> Iterator[PostgresAuditLog]:
    audit = PostgresAuditLog(pg_database.url, node="a", writer=cat)
    yield audit
    audit.close()


def terminate(url: str, cat: PostgresCatalogue) -> None:
    """End the catalogue's session on the server, as a restart or a network cut would."""
    pid = cat._db.info.backend_pid
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("SELECT pg_terminate_backend(%s)", (pid,))


def assert_waits_for_the_chain(url: str) -> None:
    """Within 4 s, a session waits for an advisory lock (the chain's, in these tests)."""
    with psycopg.connect(url, autocommit=True) as db:
        for _ in range(200):
            waiting = db.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()
            if waiting is not None and waiting[0]:
                return
            time.sleep(0.02)
    pytest.fail("no session waited for the chain's lock")


def failure(log: PostgresAuditLog) -> OSError | None:
    """``log.failure`` as it is now (not as an earlier ``assert`` narrowed it)."""
    return log.failure


def breakers(url: str) -> set[str]:
    reader = PostgresReader(url)
    try:
        return set(reader.breakers())
    finally:
        reader.close()


def test_another_hosts_append_waits_for_the_commit_and_chains_after_it(
    pg_database: PgDatabase, cat: PostgresCatalogue, log: PostgresAuditLog
) -> None:
    other = PostgresAuditLog(pg_database.url, node="b")
    done = threading.Event()

    def append() -> None:
        other.append(drafts(1, start=1), NOW)
        done.set()

    try:
        with cat.together():
            log.append(drafts(1), NOW)
            thread = threading.Thread(target=append)
            thread.start()
            assert_waits_for_the_chain(pg_database.url)  # the other append, for the chain's lock
            assert not done.is_set()
        thread.join(10)
        assert done.is_set()
        entries = list(other.read_all())
        assert [(e.subject, e.details["node"]) for e in entries] == [("H0", "a"), ("H1", "b")]
    finally:
        other.close()


def test_an_append_that_loses_the_connection_is_the_logs_failure_and_nothing_stays(
    pg_database: PgDatabase, cat: PostgresCatalogue, log: PostgresAuditLog
) -> None:
    with pytest.raises(OSError, match="cannot reach the database") as raised:
        with cat.together():
            cat.trip_breaker("L1", NOW, 5, 10)
            terminate(pg_database.url, cat)
            log.append(drafts(1), NOW)
    assert raised.value is log.failure, "the rollback on a dead connection hid the failure"
    assert breakers(pg_database.url) == set()
    assert list(log.read_all()) == []
    log.append(drafts(1), NOW)  # the next use connects again
    assert failure(log) is None
    assert [e.subject for e in log.read_all()] == ["H0"]


def test_a_block_whose_connection_died_raises_its_own_exception(
    pg_database: PgDatabase, cat: PostgresCatalogue
) -> None:
    with pytest.raises(Boom), cat.together():
        cat.trip_breaker("L1", NOW, 5, 10)
        terminate(pg_database.url, cat)
        raise Boom
    assert breakers(pg_database.url) == set()
    assert cat.breakers() == {}  # connected again


def test_a_write_after_the_loss_never_commits_on_a_new_connection(
    pg_database: PgDatabase, cat: PostgresCatalogue
) -> None:
    with pytest.raises(CatalogueUnreachable), cat.together():
        cat.trip_breaker("L1", NOW, 5, 10)
        terminate(pg_database.url, cat)
        with pytest.raises(CatalogueUnreachable):
            cat.trip_breaker("L2", NOW, 5, 10)
        cat.trip_breaker("L3", NOW, 5, 10)  # caught and tried again: still not on its own
    assert breakers(pg_database.url) == set()


def test_a_commit_that_cannot_reach_the_server_is_unreachable(
    pg_database: PgDatabase, cat: PostgresCatalogue
) -> None:
    with pytest.raises(CatalogueUnreachable, match="cannot reach the database"):
        with cat.together():
            cat.trip_breaker("L1", NOW, 5, 10)
            terminate(pg_database.url, cat)
    assert breakers(pg_database.url) == set()


def test_a_block_takes_the_chains_lock_from_its_start(
    pg_database: PgDatabase, cat: PostgresCatalogue
) -> None:
    """One lock order on every host, the chain first: a block that writes rows and then
    appends (a hold placed) holds the chain's lock before its first row, so a sweep's block on
    another host (the chain, then rows) never deadlocks with it."""
    other = PostgresAuditLog(pg_database.url, node="b")
    done = threading.Event()

    def append() -> None:
        other.append(drafts(1), NOW)
        done.set()

    try:
        with cat.together():  # nothing appended yet: only the block's start
            thread = threading.Thread(target=append)
            thread.start()
            assert_waits_for_the_chain(pg_database.url)  # an append on another connection
            assert not done.is_set()
        thread.join(10)
        assert done.is_set()
    finally:
        other.close()
