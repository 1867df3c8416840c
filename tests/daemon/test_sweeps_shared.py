"""The daemon's sweeps on a catalogue shared by several nodes (``recd.daemon.sweeps``, issue 18):
a live node settles a dead node's interrupted erases once their claims expire, leaving those of
sources it does not serve alone; erasing pauses while this host's clock differs from the
database server's by more than ``safety.max_clock_skew``, and another node's audit entry a
little ahead of this host's clock is no clock set back.

Each node is a ``Runtime`` of its own on one test database (``PostgresCatalogue`` with the
node's name and a short lease, the shared ``PostgresAuditLog`` appending through it, as
``build.shared_state`` opens them) over the same directories of
real files, driven as the daemon's loop drives ``Sweeps``. Times are the fake clock's for the
takeover (claims are counted in the caller's clock), and near the real time for the skew
tests (the database server's clock is the real one).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from recd.adapters.postgres.audit import PostgresAuditLog
from recd.adapters.postgres.catalogue import PostgresCatalogue
from recd.adapters.postgres.owners import AdvisoryOwners
from recd.adapters.systemd import Notifier
from recd.config.types import CatalogueSettings
from recd.core.audit import AuditDraft
from recd.core.model import State, recording_id
from recd.core.pgurl import parse_postgres_url
from recd.daemon import build
from recd.daemon.clockguard import ClockGuard
from recd.daemon.runtime import Runtime, scan_all
from recd.daemon.sweeps import TAKEOVER, Sweeps, listed_elsewhere
from recd.ports.clock import NO_TELEMETRY
from recd.service.sweep import Sweeper
from tests.estate import Estate
from tests.fakes import FakeClock, NotifyListener
from tests.pg import PgDatabase

LEASE = timedelta(minutes=2)
PBX = recording_id("pbx", "L1/old.wav")
OTHER = recording_id("other", "L2/old.wav")


class Died(BaseException):
    """Node A's process ended mid-erase (as SIGKILL would: nothing of recd runs after)."""


def node(estate: Estate, url: str, name: str) -> Runtime:
    """Node ``name`` on the shared database: its own catalogue connection and claims, the
    shared audit chain, and the sources its configuration puts on it."""
    config = replace(estate.config, daemon=replace(estate.config.daemon, node=name))
    catalogue = PostgresCatalogue(url, node=name, lease=LEASE)
    rt = Runtime(config, estate.clock, catalogue, PostgresAuditLog(url, name, writer=catalogue))
    pins = build.root_pins()
    for source in config.sources:
        if source.on_node(name):
            assert source.path is not None
            rt.sources[source.name] = build.directory_source(
                source.name, source.path, exclude=(), pins=pins
            )
            rt.erasers[source.name] = build.local_eraser(source.path, pins=pins)
    return rt


def sweeps(estate: Estate, listener: NotifyListener) -> Sweeps:
    clock = estate.clock
    return Sweeps(clock, Notifier(listener.path), ClockGuard(clock), lambda: False, lambda: None)


def sweep(s: Sweeps, rt: Runtime, *, guard: bool = True) -> None:
    """What the loop does at a wake-up: the clock guard, then the sweep if one is due.
    ``guard`` False: no clock guard (the takeover's fake clock is far from the server's)."""
    if (not guard or s.clock_ok(rt)) and s.due(rt):
        s.run(rt, NO_TELEMETRY, lambda source, relpath: None)


def paused(s: Sweeps) -> str | None:
    """Why the clock guard pauses erasing (as ``recctl status`` shows it), if it does."""
    return None if s.guard.problem is None else s.guard.problem.text


def entries(rt: Runtime, action: str) -> list[dict[str, Any]]:
    return [
        {"subject": e.subject, "details": e.details}
        for e in rt.audit.read_all()
        if e.action == action
    ]


def claim_holder(url: str, rid: str) -> str | None:
    with psycopg.connect(url) as db:
        row = db.execute("SELECT node FROM claims WHERE recording_id = %s", (rid,)).fetchone()
    return None if row is None else str(row[0])


@pytest.fixture
def shared(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    """Source ``pbx`` served by every node, ``other`` by node "a" only; one due file each."""
    estate = Estate(tmp_path, fake_clock)
    (pbx,) = estate.config.sources
    other = replace(pbx, name="other", path=tmp_path / "other", nodes=("a",))
    estate.configure(sources=(pbx, other))
    estate.write("L1/old.wav", age_days=31)
    moved = tmp_path / "other" / "L2" / "old.wav"
    moved.parent.mkdir(parents=True)
    estate.write("L2/old.wav", age_days=100).rename(moved)
    return estate


@pytest.fixture
def crashed(shared: Estate, pg_database: PgDatabase, monkeypatch: pytest.MonkeyPatch) -> Estate:
    """Node A indexed both files, claimed them, recorded and audited its intents, overwrote
    the start of each file and died before any outcome (its claims and intents stay)."""
    a = node(shared, pg_database.url, "a")
    try:
        scan_all(a)

        files = [shared.base / "other/L2/old.wav", shared.root / "L1/old.wav"]

        def die(jobs: list[Any], **kwargs: Any) -> list[Any]:
            for path in files:  # both in the one batch: the overwrite under way
                with path.open("r+b") as f:
                    f.write(b"\x00" * 512)
            raise Died

        for eraser in a.erasers.values():
            monkeypatch.setattr(eraser, "erase_many", die)
        sweeper = Sweeper(shared.config, a.catalogue, a.audit, shared.clock, a.erasers)
        with pytest.raises(Died):
            sweeper.run()
        assert {i.recording_id for i in a.catalogue.pending_intents()} == {PBX, OTHER}
        assert len(entries(a, "erase.intent")) == 1  # the batch's, naming both
    finally:
        a.close()
    return shared


def test_a_dead_node_s_erase_is_settled_by_a_live_node_once_its_claim_expires(
    crashed: Estate,
    pg_database: PgDatabase,
    listener: NotifyListener,
    caplog: pytest.LogCaptureFixture,
) -> None:
    f = crashed.root / "L1/old.wav"
    assert f.read_bytes()[:512] == b"\x00" * 512 and f.stat().st_size == 4096
    b = node(crashed, pg_database.url, "b")
    s = sweeps(crashed, listener)
    try:
        crashed.clock.advance(LEASE.total_seconds() - 1)  # A's claims are still live
        sweep(s, b, guard=False)
        assert f.exists()
        assert entries(b, "erase.done") == []
        assert len(b.catalogue.pending_intents()) == 2
        assert s.waits(b, crashed.clock.now()) == [TAKEOVER.total_seconds()]

        crashed.clock.advance(TAKEOVER.total_seconds())  # expired: the next look takes over
        assert s.due(b)
        caplog.clear()
        sweep(s, b, guard=False)
        assert not f.exists()
        (done,) = entries(b, "erase.done")
        assert done["subject"] == PBX
        assert done["details"]["recovered"] is True
        assert done["details"]["bytes_overwritten"] == 4096
        rec = b.catalogue.get(PBX)
        assert rec is not None and rec.state is State.ERASED
        assert "recovery: 0 confirmed, 1 finished, 0 failed, 0 never started" in caplog.messages

        # The other source's intent is node A's business: untouched, unclaimed by B, unlogged.
        assert [i.recording_id for i in b.catalogue.pending_intents()] == [OTHER]
        assert claim_holder(pg_database.url, OTHER) == "a"
        assert (crashed.base / "other" / "L2" / "old.wav").exists()
        assert entries(b, "erase.failed") == []
        assert not [r for r in caplog.records if "other" in r.getMessage()]

        caplog.clear()
        crashed.clock.advance(TAKEOVER.total_seconds())
        sweep(s, b, guard=False)  # nothing more to take over: once, and quietly
        assert len(entries(b, "erase.done")) == 1
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == []
        assert [i.recording_id for i in b.catalogue.pending_intents()] == [OTHER]
    finally:
        b.close()


def test_node_a_back_settles_its_other_source_itself(
    crashed: Estate, pg_database: PgDatabase, listener: NotifyListener
) -> None:
    crashed.clock.advance(LEASE.total_seconds() + 1)
    a = node(crashed, pg_database.url, "a")
    try:
        sweep(sweeps(crashed, listener), a, guard=False)
        assert a.catalogue.pending_intents() == []
        done = sorted(e["subject"] for e in entries(a, "erase.done"))
        assert done == sorted([PBX, OTHER])
        assert not (crashed.base / "other" / "L2" / "old.wav").exists()
    finally:
        a.close()


# -- the clock against the database server's ---------------------------------------------------


@pytest.fixture
def near_now(shared: Estate) -> Estate:
    """The estate's fake clock set to the real time (the database server's), its file due."""
    shared.clock.set(datetime.now(UTC))
    shared.write("L1/old.wav", age_days=31)
    return shared


def test_a_clock_minutes_off_the_database_s_pauses_erasing(
    near_now: Estate,
    pg_database: PgDatabase,
    listener: NotifyListener,
    caplog: pytest.LogCaptureFixture,
) -> None:
    f = near_now.root / "L1/old.wav"
    b = node(near_now, pg_database.url, "b")
    s = sweeps(near_now, listener)
    try:
        scan_all(b)
        near_now.clock.set(datetime.now(UTC) + timedelta(minutes=5, seconds=0.5))
        sweep(s, b)
        assert f.exists()
        assert s.guard.problem is not None
        assert s.guard.problem.reason == "database-skew"
        text = (
            "wall clock differs from the database server's by 300 s "
            "(ahead of it; more than safety.max_clock_skew 1m)"
        )
        assert paused(s) == text
        assert listener.wait_for(f"STATUS=erasing paused: {text}")
        near_now.clock.set(datetime.now(UTC) - timedelta(minutes=7))  # now behind: still paused
        sweep(s, b)
        assert f.exists()
        assert (paused(s) or "").endswith("(behind it; more than safety.max_clock_skew 1m)")
        logged = [m for m in caplog.messages if m.startswith("erasing paused")]
        assert logged == [f"erasing paused: {text}"]  # once, however the difference changes

        near_now.clock.set(datetime.now(UTC) + timedelta(seconds=30))  # within 60 s: erases
        sweep(s, b)
        assert paused(s) is None
        assert not f.exists()
        assert "wall clock consistent again: erasing resumes" in caplog.messages
    finally:
        b.close()


def test_another_node_s_audit_entry_a_little_ahead_is_no_clock_set_back(
    near_now: Estate, pg_database: PgDatabase, listener: NotifyListener
) -> None:
    """A at 50 s ahead of the server writes the newest entry; B at 40 s behind it is 90 s
    behind that entry, within twice max_clock_skew: it erases. 130 s behind is a step back."""
    f = near_now.root / "L1/old.wav"
    b = node(near_now, pg_database.url, "b")
    s = sweeps(near_now, listener)
    try:
        scan_all(b)
        ahead = datetime.now(UTC) + timedelta(seconds=50)
        b.audit.append([AuditDraft("hold.placed", "H-1", {"by": "node a"})], ahead)
        near_now.clock.set(datetime.now(UTC) - timedelta(seconds=40))
        sweep(s, b)
        assert paused(s) is None
        assert not f.exists()

        b.audit.append([AuditDraft("hold.placed", "H-2", {"by": "node a"})], ahead)
        near_now.clock.set(ahead - timedelta(seconds=130))
        assert not s.clock_ok(b)
        assert paused(s) == "wall clock is 130s behind the last audit entry"
    finally:
        b.close()


def test_intents_whose_entry_is_refused_are_not_recorded_and_nothing_is_erased(
    shared: Estate, pg_database: PgDatabase
) -> None:
    """The intents and their ``erase.intent`` commit as one (``recd.ports.together``): an audit
    table that refuses the entry leaves no intent behind, and no file is touched."""
    a = node(shared, pg_database.url, "a")
    try:
        scan_all(a)
        with psycopg.connect(pg_database.url, autocommit=True) as db:
            db.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'the audit table refuses rows (test)'; END $$; "
                "CREATE TRIGGER refuse BEFORE INSERT ON audit FOR EACH ROW "
                "EXECUTE FUNCTION refuse()"
            )
        before = (shared.root / "L1/old.wav").read_bytes()
        sweeper = Sweeper(shared.config, a.catalogue, a.audit, shared.clock, a.erasers)
        with pytest.raises(OSError, match="the audit table refuses rows") as raised:
            sweeper.run()
        assert raised.value is a.audit.failure
        assert a.catalogue.pending_intents() == []
        assert (shared.root / "L1/old.wav").read_bytes() == before
        assert (shared.base / "other/L2/old.wav").exists()
    finally:
        a.close()


# -- hosts whose recd.toml files differ --------------------------------------------------------


def test_each_host_erases_its_own_directory_and_leaves_the_others_sources_alone(
    tmp_path: Path, fake_clock: FakeClock, pg_database: PgDatabase, listener: NotifyListener
) -> None:
    """Hosts A and B each configure only their own spool (a source of its own, the way
    docs/multihost.md has it). A source its recd.toml does not have is another host's on a
    shared catalogue: neither host claims, keeps or audits the other's recordings (before,
    each kept the other's as "not configured" and nothing was erased), and each erases its
    own. Found by the multihost bench."""
    estate = Estate(tmp_path, fake_clock)
    (pbx,) = estate.config.sources
    url = CatalogueSettings(parse_postgres_url(pg_database.url, passfile="PGPASSFILE"))
    hosts: list[Runtime] = []
    try:
        for name in ("a", "b"):
            own = replace(pbx, name=f"{name}-local", path=tmp_path / name, nodes=(name,))
            moved = tmp_path / name / "L1" / "old.wav"
            moved.parent.mkdir(parents=True)
            estate.write("L1/old.wav", age_days=31).rename(moved)
            estate.configure(sources=(own,), catalogue=url)
            rt = node(estate, pg_database.url, name)
            rt.owners = AdvisoryOwners(pg_database.url, name)
            hosts.append(rt)
            assert scan_all(rt)
        a, b = hosts
        for rt in (b, a):
            sweep(sweeps(estate, listener), rt, guard=False)
        done = {e["subject"]: e["details"]["node"] for e in entries(a, "erase.done")}
        assert done == {
            recording_id("a-local", "L1/old.wav"): "a",
            recording_id("b-local", "L1/old.wav"): "b",
        }
        assert entries(a, "erase.skipped") == []
        assert not (tmp_path / "a/L1/old.wav").exists()
        assert not (tmp_path / "b/L1/old.wav").exists()
    finally:
        for rt in hosts:
            rt.close()


def test_a_node_that_erases_a_bucket_another_lists_wakes_as_often_as_the_lister_polls(
    shared: Estate, pg_database: PgDatabase, listener: NotifyListener
) -> None:
    """Without it, a node that does not list the bucket would learn of newly listed keys
    only at its next takeover look (a minute), by when the lister may have erased them all:
    the work would not divide (found: the multihost S3 bench test, on a loaded machine)."""
    (pbx, other) = shared.config.sources
    bucket = replace(pbx, name="bucket", type="s3", path=None, bucket="recordings",
                     poll=timedelta(seconds=7), nodes=("a", "b"))  # fmt: skip
    theirs = replace(bucket, name="theirs", poll=timedelta(seconds=3), nodes=("b",))
    config = replace(shared.config, daemon=replace(shared.config.daemon, node="a"),
                     sources=(pbx, other, bucket, theirs))  # fmt: skip
    catalogue = PostgresCatalogue(pg_database.url, node="a", lease=LEASE)
    a = Runtime(config, shared.clock, catalogue, PostgresAuditLog(pg_database.url, "a"))
    try:
        assert listed_elsewhere(a) == [7.0]  # not yet asked: maybe another node lists it
        assert 7.0 in sweeps(shared, listener).waits(a, shared.clock.now())
        assert a.duty.serves("bucket")  # this node lists it now (it holds the source)
        assert listed_elsewhere(a) == []  # its own polls wake it
    finally:
        a.close()
