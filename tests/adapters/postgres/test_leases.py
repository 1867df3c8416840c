"""Several nodes on one PostgreSQL catalogue (issue 18 point 3): each recording is claimed, given
an intent and erased by one node; a dead node's claims and intents expire and are taken over.

Each test opens two ``PostgresCatalogue`` objects, nodes "a" and "b", each with its own
connection, on one database of the test server. What one node sees of a single host's
behaviour is in tests/contracts/test_sweeping.py.
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import psycopg
import pytest

from recd.adapters.postgres.catalogue import LEASE, PostgresCatalogue
from recd.core.holds import Hold
from recd.core.scope import Scope
from recd.ports.records import Intent
from tests.contracts.rows import T0, rec
from tests.pg import PgDatabase

Nodes = tuple[PostgresCatalogue, PostgresCatalogue]


@pytest.fixture
def nodes(pg_database: PgDatabase) -> Iterator[Nodes]:
    a = PostgresCatalogue(pg_database.url, node="a")
    b = PostgresCatalogue(pg_database.url, node="b")
    yield a, b
    a.close()
    b.close()


def _due(node: PostgresCatalogue, n: int, directory: str = "d") -> list[str]:
    """Ids of ``n`` recordings due at T0, stored through ``node``."""
    rows = [rec(f"{directory}/{i:04}.wav", deadline=T0) for i in range(n)]
    node.upsert(rows, T0)
    return [r.id for r in rows]


def _read(node: PostgresCatalogue, now: datetime, limit: int = 1000) -> list[str]:
    return [r.id for r in node.due_in("pbx", "d", now, limit)]


def _intent(iid: str, recording_id: str, created: datetime = T0) -> Intent:
    return Intent(iid, recording_id, 0, f".recd-erase-{iid}", {"method": "overwrite"}, created)


def _together(*work: Callable[[], None]) -> None:
    """Run each in its own thread, started at once; re-raise the first failure."""
    barrier = threading.Barrier(len(work))
    errors: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        try:
            barrier.wait(timeout=30)
            job()
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a node hung"
    if errors:
        raise errors[0]


def test_the_node_and_lease_are_where_the_catalogue_is_opened(pg_database: PgDatabase) -> None:
    catalogue = PostgresCatalogue(pg_database.url)
    try:
        assert (catalogue.node, catalogue.lease) == (socket.gethostname(), LEASE)
    finally:
        catalogue.close()
    with pytest.raises(ValueError, match="lease must be positive, got 0:00:00"):
        PostgresCatalogue(pg_database.url, node="a", lease=timedelta(0))


def test_nodes_reading_at_once_claim_disjoint_recordings(nodes: Nodes) -> None:
    ids = _due(nodes[0], 600)
    got: dict[str, list[str]] = {"a": [], "b": []}

    def sweep(node: PostgresCatalogue) -> Callable[[], None]:
        def pages() -> None:
            after = ""
            while page := node.due_in("pbx", "d", T0, 7, after):
                got[node.node] += [r.id for r in page]
                after = page[-1].relpath

        return pages

    _together(sweep(nodes[0]), sweep(nodes[1]))
    # A page that lost every row to the other node ends that node's pass early: the next sweep
    # reads on, as a second pass here does.
    _together(sweep(nodes[0]), sweep(nodes[1]))
    a, b = set(got["a"]), set(got["b"])
    assert a.isdisjoint(b)
    assert a | b == set(ids)


def test_a_row_another_node_is_claiming_is_skipped_not_waited_for(
    nodes: Nodes, pg_database: PgDatabase
) -> None:
    ids = _due(nodes[0], 4)
    # c gives up on a statement after 5 s: a read that waited for the lock would fail.
    impatient = f"{pg_database.url}&options=-c%20statement_timeout%3D5000"
    c = PostgresCatalogue(impatient, node="c")
    try:
        with psycopg.connect(pg_database.url) as other, other.transaction():
            other.execute("SELECT 1 FROM recordings WHERE id = ANY(%s) FOR UPDATE", (ids[:2],))
            assert _read(c, T0) == ids[2:]  # the rows being claimed are skipped
        assert _read(nodes[1], T0) == ids[:2]
    finally:
        c.close()


def test_a_live_claim_is_not_taken_and_an_expired_one_is(nodes: Nodes) -> None:
    a, b = nodes
    ids = _due(a, 3)
    assert _read(a, T0) == ids
    assert _read(b, T0 + LEASE - timedelta(microseconds=1)) == []
    assert _read(a, T0 + timedelta(minutes=9)) == ids  # renewed until T0 + 19 minutes
    assert _read(b, T0 + LEASE + timedelta(minutes=1)) == []
    assert _read(b, T0 + timedelta(minutes=19)) == ids  # a is gone: its claims expired
    assert _read(a, T0 + timedelta(minutes=20)) == []


def test_an_intent_is_refused_for_a_recording_the_other_node_claimed(nodes: Nodes) -> None:
    a, b = nodes
    x, y = _due(a, 2)
    assert _read(a, T0) == [x, y]
    assert b.add_intents([_intent("bx", x, T0 + timedelta(minutes=1))]) == set()
    assert a.add_intents([_intent("ax", x), _intent("ay", y)]) == {"ax", "ay"}
    # a's claim expired, but its intent stands: one intent per recording, whoever wrote it.
    assert b.add_intents([_intent("bx", x, T0 + timedelta(days=1))]) == set()
    assert [i.id for i in b.pending_intents()] == ["ax", "ay"]
    a.resolve_intents([("ax", T0)], ["ay"])  # ay never started: y is anyone's again at once
    assert _read(b, T0 + timedelta(minutes=1)) == [y]
    assert b.add_intents([_intent("by", y, T0 + timedelta(minutes=1))]) == {"by"}


def test_nodes_adding_intents_at_once_get_one_per_recording(nodes: Nodes) -> None:
    ids = _due(nodes[0], 300)
    won: dict[str, set[str]] = {}

    def add(node: PostgresCatalogue) -> Callable[[], None]:
        def batches() -> None:
            order = random.Random(node.node).sample(ids, len(ids))
            for start in range(0, len(order), 25):
                batch = [_intent(f"{node.node}-{r}", r) for r in order[start : start + 25]]
                won[node.node] = won.get(node.node, set()) | node.add_intents(batch)

        return batches

    _together(add(nodes[0]), add(nodes[1]))
    intents = nodes[0].pending_intents()
    assert sorted(i.recording_id for i in intents) == sorted(ids)
    assert {i.id for i in intents} == won["a"] | won["b"]


def test_recovery_takes_over_expired_intents_and_leaves_live_ones(nodes: Nodes) -> None:
    a, b = nodes
    x, y = _due(a, 2)
    old, recent = _intent("ax", x, T0), _intent("ay", y, T0 + timedelta(minutes=8))
    assert a.add_intents([old]) == {"ax"}  # claimed until T0 + 10 minutes
    assert a.add_intents([recent]) == {"ay"}  # until T0 + 18 minutes
    assert b.pending_intents(T0 + timedelta(minutes=5)) == []  # a is alive: nothing to take
    assert a.pending_intents(T0 + timedelta(minutes=5)) == [old, recent]  # its own; x to 15
    assert b.pending_intents(T0 + timedelta(minutes=16)) == [old]  # b's until 26
    assert a.pending_intents(T0 + timedelta(minutes=17)) == [recent]  # a's until 27
    assert b.pending_intents(T0 + timedelta(minutes=28)) == [old, recent]  # b's until 38
    assert a.pending_intents(T0 + timedelta(minutes=29)) == []
    b.resolve_intents([("ax", T0 + timedelta(minutes=29))], ["ay"])
    assert a.pending_intents() == []
    assert _read(a, T0 + timedelta(minutes=30)) == [y]  # b released its claim on y


def test_a_hold_placed_through_the_other_node_still_wins(nodes: Nodes) -> None:
    a, b = nodes
    x, y = _due(a, 2)
    assert _read(a, T0) == [x, y]
    scope = Scope("L1", recordings=frozenset({x}))
    b.place_hold(Hold("", scope, "C-1", "litigation", T0, "alice"))
    assert a.add_intents([_intent("ax", x), _intent("ay", y)]) == {"ay"}
    assert [i.id for i in b.pending_intents()] == ["ay"]


def test_a_batch_renews_its_claims_and_no_others(nodes: Nodes) -> None:
    """A sweep's page is claimed when read; each batch's intents renew the claims of that
    batch from their ``created``, so a batch erased late in a long sweep begins with a fresh
    lease, while the rest of the page keeps the lease it was read with."""
    a, b = nodes
    x, y, z = _due(a, 3)
    assert _read(a, T0) == [x, y, z]  # claimed until T0 + 10 minutes
    later = T0 + timedelta(minutes=9)
    assert a.add_intents([_intent("ax", x, later)]) == {"ax"}  # x's claim: until T0 + 19
    assert b.add_intents([_intent("bx", x, T0 + timedelta(minutes=18))]) == set()
    assert _read(b, T0 + timedelta(minutes=11)) == [y, z]  # theirs expired at T0 + 10
    assert a.add_intents([_intent("ay", y, later)]) == set()  # b holds y now
    assert [i.id for i in b.pending_intents(T0 + timedelta(minutes=19))] == ["ax"]


def test_several_intents_for_one_recording_in_a_batch_record_one(nodes: Nodes) -> None:
    a, _ = nodes
    x, y = _due(a, 2)
    assert _read(a, T0) == [x, y]
    recorded = a.add_intents([_intent("i2", x), _intent("i1", x), _intent("i3", y)])
    assert recorded == {"i1", "i3"}
    assert sorted(i.id for i in a.pending_intents()) == ["i1", "i3"]
    assert a.add_intents([]) == set()


def test_a_node_started_again_drops_its_claims_without_an_intent(
    nodes: Nodes, pg_database: PgDatabase
) -> None:
    """A node killed between claiming and recording its intents: started again, it frees
    those recordings at once for every node, instead of after the lease; its claims with an
    intent stay for recovery, and the other node's claims are not its to drop."""
    a, b = nodes
    x, y, z = _due(a, 3)
    assert _read(a, T0) == [x, y, z]
    assert a.add_intents([_intent("ax", x)]) == {"ax"}
    other = _due(b, 1, directory="e")
    assert [r.id for r in b.due_in("pbx", "e", T0, 10)] == other
    a.close()  # killed: y and z claimed, no intent
    assert _read(b, T0 + timedelta(minutes=1)) == []
    again = PostgresCatalogue(pg_database.url, node="a")
    try:
        assert _read(b, T0 + timedelta(minutes=1)) == [y, z]  # at once, not after the lease
        assert b.add_intents([_intent("bx", x, T0 + timedelta(minutes=1))]) == set()
        assert [i.id for i in again.pending_intents()] == ["ax"]
        assert again.release_unplanned() == 0  # b's claims are b's
    finally:
        again.close()
