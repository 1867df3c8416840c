"""The daemon on a catalogue shared with other hosts (PostgreSQL, ``[catalogue] url``).

A real server per test run (``tests/pg.py``), a database per test, real files: the daemon
erases on the shared catalogue with no SQLite file and its audit chain in the table; a hold
another host logged just before it died (its catalogue change never made) still keeps the
recording here, because each sweep first replays what the others logged and the mark never
passes what this host replayed itself; while the database cannot be reached nothing is erased,
admin commands say why, and recd opens it again by itself.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from recd.config.types import CatalogueSettings
from recd.core.audit import AuditDraft
from recd.core.model import recording_id
from recd.core.pgurl import parse_postgres_url
from recd.core.requests import scope_json
from recd.core.scope import Scope
from recd.daemon.runtime import open_runtime
from recd.daemon.signals import Event
from recd.errors import CatalogueUnreachable
from tests.daemon.helpers import ask, drain, make
from tests.estate import Estate
from tests.fakes import NotifyListener
from tests.pg import PgDatabase, Postgres, down


def share(estate: Estate, url: str, node: str) -> None:
    """``estate``'s configuration on the database ``url``, as the host ``node``, its fake
    clock set to the real time: the database server's (``safety.max_clock_skew``)."""
    estate.clock.set(datetime.now(UTC))
    settings = CatalogueSettings(parse_postgres_url(url, passfile="PGPASSFILE"))
    estate.configure(catalogue=settings, daemon=replace(estate.config.daemon, node=node))


def chain(url: str) -> list[dict[str, Any]]:
    import psycopg

    with psycopg.connect(url) as db:
        rows = db.execute("SELECT line FROM audit ORDER BY seq").fetchall()
    return [json.loads(bytes(row[0])) for row in rows]


def test_the_daemon_erases_on_the_shared_catalogue_with_no_sqlite_file(
    estate: Estate, listener: NotifyListener, pg_database: PgDatabase
) -> None:
    share(estate, pg_database.url, "pbx-a")
    due = estate.write("L1/old.wav", age_days=31)
    kept = estate.write("L1/new.wav", age_days=1)
    daemon = make(estate, listener)
    daemon.start()
    try:
        assert (due.exists(), kept.exists()) == (False, True)
        state = estate.config.daemon.state_dir
        assert not (state / "catalog.db").exists()
        assert not (state / "audit.log").exists()
        entries = chain(pg_database.url)
        done = [e["subject"] for e in entries if e["action"] == "erase.done"]
        assert done == [recording_id("pbx", "L1/old.wav")]
        assert {e["details"].get("node") for e in entries} == {"pbx-a"}
        assert ask(daemon, "status")["node"] == "pbx-a"
    finally:
        daemon.stop()


def test_a_hold_another_host_logged_before_it_died_keeps_the_recording_here(
    estate: Estate, listener: NotifyListener, pg_database: PgDatabase
) -> None:
    share(estate, pg_database.url, "pbx-a")
    soon = estate.write("L1/soon.wav", age_days=30 - 2 / 86400)  # due in 2 s
    daemon = make(estate, listener)
    daemon.start()
    try:
        # Host B writes its hold.placed entry and dies before its catalogue change.
        b = open_runtime(replace(estate.config, daemon=replace(estate.config.daemon, node="b")),
                         estate.clock)  # fmt: skip
        try:
            scope = Scope("L1", recordings=frozenset({recording_id("pbx", "L1/soon.wav")}))
            details = {
                "licence": "L1", "case": "C-9", "reason": "court order",
                "scope": scope_json(scope), "whole_licence": False, "until": None, "held": 1,
            }  # fmt: skip
            placed = AuditDraft("hold.placed", "H-from-b", details, "bob")
            b.audit.append([placed], estate.clock.now())
        finally:
            b.close()
        estate.clock.advance(3)  # soon.wav is due now
        daemon.step(None)
        assert soon.exists(), "erased under a hold the chain holds"
        with daemon.reader() as reader:
            assert [h.id for h in reader.holds()] == ["H-from-b"]
    finally:
        daemon.stop()


def test_while_the_database_cannot_be_reached_nothing_is_erased_and_status_says_why(
    estate: Estate, listener: NotifyListener, tmp_path_factory: pytest.TempPathFactory
) -> None:
    gone = tmp_path_factory.mktemp("no-server")
    share(estate, f"postgresql:///recd?host={gone}", "pbx-a")
    due = estate.write("L1/old.wav", age_days=31)
    daemon = make(estate, listener)
    daemon.start()  # READY, waiting: not a crash loop
    try:
        assert due.exists()
        assert daemon.dbwait.problem is not None
        assert daemon.dbwait.problem.startswith(f'catalogue database "recd" on {gone}: ')
        assert daemon.status().startswith("erasing paused: catalogue database")
        with pytest.raises(CatalogueUnreachable, match=f'catalogue database "recd" on {gone}'):
            ask(daemon, "ls")
        status = ask(daemon, "status")
        problem = daemon.dbwait.problem
        assert status["catalogue"] == {"reachable": False, "problem": problem}
        assert status["audit_log"] == {"writable": False, "problem": problem}  # older recctl
        assert (status["node"], status["recordings"], status["licences"]) == ("pbx-a", 0, [])
        assert 0 < daemon.timeout() <= 1.0  # the first try again within a second
        estate.clock.advance(2)
        daemon.step(None)  # tried again: still away, the wait grows
        assert daemon.dbwait.problem is not None and due.exists()
    finally:
        daemon.stop()


def test_a_database_lost_mid_run_pauses_everything_and_is_opened_again_once_back(
    estate: Estate,
    listener: NotifyListener,
    stoppable: Postgres,
    stoppable_database: PgDatabase,
) -> None:
    share(estate, stoppable_database.url, "pbx-a")
    soon = estate.write("L1/soon.wav", age_days=30 - 2 / 86400)  # due in 2 s
    daemon = make(estate, listener)
    daemon.start()
    try:
        with down(stoppable):
            estate.clock.advance(3)  # due now, but the database is away
            daemon.step(None)
            assert daemon.dbwait.problem is not None, "the loss went unnoticed"
            assert "cannot reach the database" in daemon.status()
            assert soon.exists()
            estate.clock.advance(2)
            daemon.step(None)  # a try while still down: the wait goes on
            assert daemon.dbwait.problem is not None and soon.exists()
        estate.clock.advance(3)  # past the backoff so far (the first two: 1 s and 2 s at most)
        daemon.step(None)
        assert not soon.exists(), "not erased once the database was back"
        assert daemon.status().startswith("next deadline")  # the wait ended
    finally:
        daemon.stop()


def test_a_reload_while_the_database_is_away_waits_for_it_and_still_says_ready(
    estate: Estate,
    listener: NotifyListener,
    stoppable: Postgres,
    stoppable_database: PgDatabase,
) -> None:
    """SIGHUP during an outage: neither the new configuration nor the old can open the
    catalogue; the daemon waits for the database, and READY=1 ends the reload either way
    (``systemctl reload`` would hang for its timeout without it)."""
    share(estate, stoppable_database.url, "pbx-a")
    daemon = make(estate, listener, loader=lambda path: estate.config)
    daemon.start()
    try:
        drain(listener)
        with down(stoppable):
            daemon.step(Event.RELOAD)
            said = drain(listener)
            assert said[0].startswith("RELOADING=1")
            assert said[-1].startswith("READY=1\nSTATUS=erasing paused: catalogue database ")
            assert daemon.dbwait.problem is not None
        estate.clock.advance(3)
        daemon.step(None)
        assert daemon.status().startswith("next deadline")
    finally:
        daemon.stop()


REFUSE = """
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'the audit table refuses rows (test)'; END $$;
CREATE TRIGGER refuse BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION refuse();
"""


def test_an_audit_table_that_refuses_rows_pauses_erasing_naming_the_table(
    estate: Estate, listener: NotifyListener, pg_database: PgDatabase
) -> None:
    """The audit outage of one host, on the shared chain: nothing erased, the table named
    (not a local audit.log that does not exist), erasing again once rows are taken."""
    import psycopg

    share(estate, pg_database.url, "pbx-a")
    soon = estate.write("L1/soon.wav", age_days=30 - 2 / 86400)  # due in 2 s
    daemon = make(estate, listener)
    daemon.start()
    try:
        with psycopg.connect(pg_database.url, autocommit=True) as db:
            db.execute(REFUSE)
        estate.clock.advance(3)
        daemon.step(None)
        assert soon.exists()
        problem = daemon.audit_problem
        assert problem is not None
        assert problem.startswith(f"the audit table of {estate.config.catalogue.url} cannot be")
        assert "the audit table refuses rows (test)" in problem
        with psycopg.connect(pg_database.url, autocommit=True) as db:
            db.execute("DROP TRIGGER refuse ON audit")
        estate.clock.advance(2)
        daemon.step(None)
        assert daemon.audit_problem is None and not soon.exists()
        entries = chain(pg_database.url)
        assert "audit.resumed" in [e["action"] for e in entries]
    finally:
        daemon.stop()
