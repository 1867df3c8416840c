"""Legal holds on a shared PostgreSQL catalogue: a hold and its ``hold.placed`` entry commit as
one transaction (``recd.ports.together``), so an audit log that refuses the entry leaves no hold
behind, and the refusal is the audit failure the daemon pauses erasing on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from recd.adapters.postgres.audit import PostgresAuditLog
from recd.adapters.postgres.catalogue import PostgresCatalogue
from recd.core.scope import Scope
from recd.ports.records import Actor
from recd.service.holds import Holds
from tests.estate import Estate
from tests.fakes import FakeClock
from tests.pg import PgDatabase

ALICE = Actor("alice", 1001, admin=True)
REFUSE = """
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'the audit table refuses rows (test)'; END $$;
CREATE TRIGGER refuse BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION refuse();
"""


@pytest.fixture
def shared(
    tmp_path: Path, fake_clock: FakeClock, pg_database: PgDatabase
) -> Iterator[tuple[Holds, PostgresCatalogue, PostgresAuditLog]]:
    estate = Estate(tmp_path, fake_clock)
    cat = PostgresCatalogue(pg_database.url, node="a")
    audit = PostgresAuditLog(pg_database.url, node="a", writer=cat)
    yield Holds(estate.config, cat, audit, estate.clock), cat, audit
    audit.close()
    cat.close()


def test_a_hold_whose_entry_is_refused_is_not_placed(
    pg_database: PgDatabase, shared: tuple[Holds, PostgresCatalogue, PostgresAuditLog]
) -> None:
    holds, cat, audit = shared
    with psycopg.connect(pg_database.url, autocommit=True) as db:
        db.execute(REFUSE)
    with pytest.raises(OSError, match="the audit table refuses rows") as raised:
        holds.place(Scope("L1"), case="CASE-1", reason="litigation", until=None, actor=ALICE)
    assert raised.value is audit.failure  # what the daemon's audit outage waits on
    assert cat.holds(everything=True) == []
    with psycopg.connect(pg_database.url, autocommit=True) as db:
        db.execute("DROP TRIGGER refuse ON audit")
    hold, _ = holds.place(Scope("L1"), case="CASE-1", reason="litigation", until=None, actor=ALICE)
    assert hold.id == "H-0001"  # the number the refused one took was never committed
    assert [(e.action, e.subject) for e in audit.read_all()] == [("hold.placed", "H-0001")]
    assert audit.failure is None


def test_a_release_whose_entry_is_refused_leaves_the_hold_active(
    pg_database: PgDatabase, shared: tuple[Holds, PostgresCatalogue, PostgresAuditLog]
) -> None:
    holds, cat, audit = shared
    hold, _ = holds.place(Scope("L1"), case="CASE-1", reason="litigation", until=None, actor=ALICE)
    with psycopg.connect(pg_database.url, autocommit=True) as db:
        db.execute(REFUSE)
    with pytest.raises(OSError, match="the audit table refuses rows"):
        holds.release(hold.id, reason="settled", actor=ALICE)
    stored = cat.hold(hold.id)
    assert stored is not None and stored.active
    assert [e.action for e in audit.read_all()] == ["hold.placed"]
