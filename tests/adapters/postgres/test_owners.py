"""Which node serves a one-at-a-time source on the shared catalogue (issue 18 point 3): one
session-level advisory lock per source, on a connection each node keeps for it.

Each test opens ``AdvisoryOwners`` for nodes "a" and "b", two objects with a connection each,
on one database of the test server; a third connection (``admin``) looks at ``pg_locks`` and
ends sessions the way a dead host's would end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import psycopg
import pytest

from recd.adapters.postgres.catalogue import MIGRATION_LOCK
from recd.adapters.postgres.owners import NODE_CLASS, AdvisoryOwners, node_key, source_key
from recd.adapters.postgres.store import AUDIT_LOCK
from recd.errors import CatalogueUnreachable, NodeInUse
from tests import pg
from tests.pg import PgDatabase, Postgres

Nodes = tuple[AdvisoryOwners, AdvisoryOwners]


@pytest.fixture
def nodes(pg_database: PgDatabase) -> Iterator[Nodes]:
    a = AdvisoryOwners(pg_database.url, node="a")
    b = AdvisoryOwners(pg_database.url, node="b")
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def admin(pg_database: PgDatabase) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(pg_database.url, autocommit=True) as db:
        yield db


def _backend(admin: psycopg.Connection[tuple[object, ...]], node: str) -> int:
    """The server process of ``node``'s lock session, found by its application name."""
    row = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (f"recd owners {node}",)
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def _takes_over(node: AdvisoryOwners, source: str) -> bool:
    """Whether ``node`` serves ``source`` within 10 s: a session ends on the server a moment
    after its client closes or is told to end, and the next ``serve`` (the next scan cycle) is
    when a node finds the source free."""
    deadline = time.monotonic() + 10
    while not node.serve(source):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_one_node_serves_a_source(nodes: Nodes) -> None:
    a, b = nodes
    assert a.serve("pbx")
    assert not b.serve("pbx")
    assert a.serve("pbx")  # asked again: still its own, and still not b's
    assert not b.serve("pbx")


def test_distinct_sources_are_independent(nodes: Nodes) -> None:
    a, b = nodes
    assert a.serve("pbx")
    assert b.serve("archive")
    assert not a.serve("archive")
    assert not b.serve("pbx")


def test_release_lets_another_node_take_it(nodes: Nodes) -> None:
    a, b = nodes
    assert a.serve("pbx")
    assert a.serve("pbx")  # held once, however often asked: one release lets go
    a.release("pbx")
    assert b.serve("pbx")
    assert not a.serve("pbx")
    a.release("never-held")  # nothing to do


def test_a_closed_node_fails_over(nodes: Nodes) -> None:
    a, b = nodes
    assert a.serve("pbx")
    a.close()
    assert _takes_over(b, "pbx")


def test_a_killed_session_fails_over(
    nodes: Nodes, admin: psycopg.Connection[tuple[object, ...]], caplog: pytest.LogCaptureFixture
) -> None:
    """A host that dies or loses the network: its session ends on the server, the lock with it.
    The other node takes the source; the first finds out at its next ``serve``, says so, and
    serves it no longer."""
    a, b = nodes
    assert a.serve("pbx")
    assert not b.serve("pbx")
    admin.execute("SELECT pg_terminate_backend(%s)", (_backend(admin, "a"),))
    assert _takes_over(b, "pbx")
    with caplog.at_level(logging.WARNING):
        assert not a.serve("pbx")
    assert "lost the session holding sources pbx" in caplog.text
    assert not a.serve("pbx")  # a new session now, and b still holds it
    b.close()
    assert _takes_over(a, "pbx")


def test_the_lock_is_the_sources_key_in_pg_locks(
    nodes: Nodes, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    """What an operator finds in pg_locks: a session-level advisory lock of node a's session,
    whose 64-bit key is ``source_key``."""
    a, _ = nodes
    assert a.serve("pbx")
    rows = admin.execute(
        "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks "
        "WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND pid = %s",
        (_backend(admin, "a"),),
    ).fetchall()
    assert rows == [(source_key("pbx"),)]


def test_keys_are_stable_distinct_and_never_recds_own_locks() -> None:
    names = [f"pbx-{n:04}" for n in range(5000)] + ["archive", "nfs.recordings", "a"]
    keys = [source_key(name) for name in names]
    assert len(set(keys)) == len(names)
    assert all(-(2**63) <= key < 0 for key in keys)  # a bigint; recd's fixed locks are > 0
    assert MIGRATION_LOCK > 0 and AUDIT_LOCK > 0
    # The same on every host and in every run: the first 8 bytes of SHA-256("pbx") (whose top
    # bit is set already), as a signed bigint.
    assert source_key("pbx") == 0xC39E30A4B1FA6A61 - 2**64
    assert source_key("pbx-0001") != source_key("pbx-0002")


def test_an_unreachable_server_is_unreachable() -> None:
    with pytest.raises(
        CatalogueUnreachable,
        match=r'^catalogue database "recd" on /nonexistent as user "recd": cannot reach the '
        r"database: connection is bad: ",
    ):
        AdvisoryOwners("postgresql:///recd?host=/nonexistent&user=recd&connect_timeout=2")


def test_a_server_stopped_loses_the_locks_until_taken_again_on_a_new_session(
    stoppable: Postgres, stoppable_database: PgDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    """The lock went with the session: while the server is down the node serves nothing
    (and says why once); once it is back, the next ``serve`` takes the lock again on a new
    session, where pg_locks shows it beside the node name's."""
    a = AdvisoryOwners(stoppable_database.url, node="a")
    try:
        assert a.serve("pbx")
        with pg.down(stoppable), caplog.at_level(logging.WARNING):
            assert not a.serve("pbx")
            assert not a.serve("pbx")
        assert "lost the session holding sources pbx" in caplog.text
        assert caplog.text.count("cannot ask which sources this node serves") == 1
        with psycopg.connect(stoppable_database.url, autocommit=True) as admin:
            assert a.serve("pbx")
            rows = admin.execute(
                "SELECT objsubid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = %s ORDER BY objsubid",
                (_backend(admin, "a"),),
            ).fetchall()
            assert rows == [(1,), (2,)]  # the source's lock and the node name's, both again
    finally:
        a.close()


def _once_free(url: str, node: str) -> AdvisoryOwners:
    """``AdvisoryOwners`` of ``node`` once its name is free (within 10 s): a session ends on
    the server a moment after its client closes or is told to end."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return AdvisoryOwners(url, node=node)
        except NodeInUse:
            assert time.monotonic() < deadline, f"node {node}'s name still in use"
            time.sleep(0.05)


def test_a_second_recd_with_the_same_node_name_waits_until_the_first_is_gone(
    pg_database: PgDatabase, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    """Two hosts given one daemon.node would take each other's claims for their own: the
    second to connect is refused (as an unreachable server: it waits and retries), told
    where the first connected from; once the first's session ends, the name is free. The
    lock is the two-key form, apart from every source's and recd's one-key locks."""
    first = AdvisoryOwners(pg_database.url, node="a")
    try:
        with pytest.raises(NodeInUse) as refused:
            AdvisoryOwners(pg_database.url, node="a")
        message = str(refused.value)
        assert message.startswith(
            f'catalogue {first.name}: daemon.node "a" is in use by another recd (connected '
            "from a local socket since "
        )
        assert message.endswith(
            "): give each host its own daemon.node; if that is this host's recd before a "
            "crash, the server ends its session once its keepalives fail"
        )
        assert isinstance(refused.value, CatalogueUnreachable)  # waited for, exit 69
        other = AdvisoryOwners(pg_database.url, node="b")  # another name is no one's business
        other.close()
        rows = admin.execute(  # by name: the refused session may linger a moment, lockless
            "SELECT classid::bigint, objid::bigint, objsubid FROM pg_locks "
            "JOIN pg_stat_activity USING (pid) WHERE locktype = 'advisory' "
            "AND application_name = 'recd owners a'"
        ).fetchall()
        assert rows == [(NODE_CLASS, node_key("a") & 0xFFFFFFFF, 2)]
    finally:
        first.close()
    second = _once_free(pg_database.url, "a")
    assert second.serve("pbx")
    second.close()


def test_a_node_closed_frees_its_name_at_once(pg_database: PgDatabase) -> None:
    """A reload closes the runtime and opens the next at once: the name and the sources are
    released before the session closes, so no retry is needed (the server would otherwise end
    the closed session a moment later, and the reload would find its own name in use)."""
    for _ in range(20):
        owners = AdvisoryOwners(pg_database.url, node="a")
        assert owners.serve("pbx")
        owners.close()


def test_a_lock_session_lost_and_opened_again_takes_the_node_name_again(
    nodes: Nodes, pg_database: PgDatabase, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    """Another recd that took node a's name while a's session was gone makes a's next
    ``serve`` raise ``NodeInUse`` (the daemon then waits) rather than serve as the same node."""
    a, _ = nodes
    assert a.serve("pbx")
    admin.execute("SELECT pg_terminate_backend(%s)", (_backend(admin, "a"),))
    intruder = _once_free(pg_database.url, "a")
    try:
        with pytest.raises(NodeInUse):
            a.serve("pbx")
        assert intruder.serve("pbx")
    finally:
        intruder.close()
