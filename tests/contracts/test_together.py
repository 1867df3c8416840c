"""The ``Together`` contract (``recd.ports.together``) on every catalogue, with the audit log each
kind of host keeps beside it: on PostgreSQL the chain's table, written through the catalogue's
connection, so that a block's catalogue writes and audit entries commit as one or not at all;
on SQLite the file log, each write committed as it returns (``together`` changes nothing)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from recd.adapters.auditlog.log import FileAuditLog
from recd.ports.audit import AuditLog
from recd.ports.catalogue import Catalogue
from recd.ports.reader import CatalogueReader
from tests.contracts.chains import NOW, drafts
from tests.contracts.conftest import CATALOGUES, open_catalogue
from tests.pg import PgDatabase


class Boom(Exception):
    """What a block raises, to be told from anything the catalogue or the log raise."""


@dataclass
class Host:
    """One host's catalogue, its audit log (writing through it on PostgreSQL), and what
    another connection sees of both (``reader``, ``seen``)."""

    kind: str
    catalogue: Catalogue
    audit: AuditLog
    reader: CatalogueReader
    seen: AuditLog  # the chain as another process reads it


@pytest.fixture(params=CATALOGUES)
def host(request: pytest.FixtureRequest) -> Iterator[Host]:
    catalogue, reader = open_catalogue(request.param, request)
    audit: AuditLog
    seen: AuditLog
    if request.param == "postgres":
        from recd.adapters.postgres.audit import PostgresAuditLog
        from recd.adapters.postgres.catalogue import PostgresCatalogue

        database: PgDatabase = request.getfixturevalue("pg_database")
        assert isinstance(catalogue, PostgresCatalogue)
        audit = PostgresAuditLog(database.url, node="a", writer=catalogue)
        seen = PostgresAuditLog(database.url, node="b")
    else:
        path: Path = request.getfixturevalue("tmp_path") / "audit.log"
        audit = FileAuditLog.open(path, NOW)
        seen = audit  # one process: the file as the writer has it
    yield Host(request.param, catalogue, audit, reader, seen)
    for part in (seen, audit, reader, catalogue):
        part.close()


def subjects(log: AuditLog) -> list[str]:
    return [e.subject for e in log.read_all()]


def test_a_block_that_ends_commits_its_writes_and_entries(host: Host) -> None:
    with host.catalogue.together():
        host.catalogue.trip_breaker("L1", NOW, 5, 10)
        host.audit.append(drafts(2), NOW)
    assert set(host.reader.breakers()) == {"L1"}
    assert subjects(host.seen) == ["H0", "H1"]
    assert host.audit.end_offset() == host.seen.end_offset() > 0


def test_a_block_that_raises_keeps_nothing_on_a_shared_catalogue(host: Host) -> None:
    host.audit.append(drafts(1), NOW)
    before = host.audit.end_offset()
    with pytest.raises(Boom), host.catalogue.together():
        host.catalogue.trip_breaker("L1", NOW, 5, 10)
        host.audit.append(drafts(2, start=1), NOW)
        assert host.audit.end_offset() > before  # inside, the writer sees its own entries
        raise Boom
    if host.kind == "sqlite":  # each write committed as it returned: nothing changes on one host
        assert set(host.reader.breakers()) == {"L1"}
        assert subjects(host.seen) == ["H0", "H1", "H2"]
        return
    assert host.reader.breakers() == {}
    assert subjects(host.seen) == ["H0"]
    assert host.audit.extent().live_bytes == before, "entries rolled back still counted"
    assert host.audit.end_offset() == before
    host.audit.append(drafts(1, start=3), NOW)  # the chain goes on after the last committed
    assert subjects(host.seen) == ["H0", "H3"]


def test_a_block_inside_another_undoes_only_its_own_writes(host: Host) -> None:
    with host.catalogue.together():
        host.catalogue.trip_breaker("L1", NOW, 5, 10)
        with pytest.raises(Boom), host.catalogue.together():
            host.catalogue.trip_breaker("L2", NOW, 5, 10)
            raise Boom
        host.audit.append(drafts(1), NOW)
    expected = {"L1"} if host.kind == "postgres" else {"L1", "L2"}
    assert set(host.reader.breakers()) == expected
    assert subjects(host.seen) == ["H0"]
