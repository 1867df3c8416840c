"""The sweep and breaker roles of the catalogue (``recd.ports.sweeping``): due recordings,
intents, skip reasons and breakers, on every implementation in ``CATALOGUES``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from recd.core.holds import Hold
from recd.core.model import State
from recd.core.scope import Scope
from recd.ports.legal import HoldCatalogue
from recd.ports.records import (
    Intent,
)
from recd.ports.scanning import IndexingCatalogue, PolicyCatalogue
from recd.ports.sweeping import SweepCatalogue
from tests.contracts.rows import BAD, T0, rec, stored


class Sweeping(IndexingCatalogue, SweepCatalogue, PolicyCatalogue, Protocol):
    """The sweep's catalogue, over recordings the indexer stored (and their licences)."""


class HeldSweeping(Sweeping, HoldCatalogue, Protocol):
    """The sweep's catalogue and the holds placed beside it."""


def test_due_is_found_by_directory_and_paged_by_location(catalogue: Sweeping) -> None:
    rows = [rec(f"d1/{i}.wav", deadline=T0 + timedelta(hours=i)) for i in range(5)]
    rows += [rec("d0/x.wav", deadline=T0), rec("d2/later.wav", deadline=T0 + timedelta(days=9))]
    rows.append(rec("never.wav", deadline=None))
    catalogue.upsert(rows, T0)
    now = T0 + timedelta(hours=3)
    assert catalogue.due_dirs(now) == [("pbx", "d0"), ("pbx", "d1")]
    first = catalogue.due_in("pbx", "d1", now, 2)
    assert [r.relpath for r in first] == ["d1/0.wav", "d1/1.wav"]
    rest = catalogue.due_in("pbx", "d1", now, 10, first[-1].relpath)
    assert [r.relpath for r in rest] == ["d1/2.wav", "d1/3.wav"]
    assert catalogue.due_in("pbx", "d2", now, 10) == []
    assert catalogue.due_in("other", "d1", now, 10) == []
    assert catalogue.next_deadline() == T0
    assert catalogue.counts(now) == {"L1": (8, 5)}


def test_counts_group_unclassified_under_none(catalogue: Sweeping) -> None:
    catalogue.upsert([rec("u.wav", licence=None, deadline=None), rec("a.wav")], T0)
    assert catalogue.counts(T0) == {None: (1, 0), "L1": (1, 0)}
    assert sorted(catalogue.licences(), key=str) == ["L1", None]


def test_next_deadline_is_none_when_nothing_has_one(catalogue: Sweeping) -> None:
    assert catalogue.next_deadline() is None


def test_intents_resolve_into_erased_recordings(catalogue: Sweeping) -> None:
    a, b = rec("a.wav"), rec("b.wav")
    catalogue.upsert([a, b], T0)
    intents = [
        Intent("i1", a.id, 10, ".recd-erase-1", {"method": "overwrite"}, T0),
        Intent("i2", b.id, 10, ".recd-erase-2", {"method": "overwrite"}, T0),
    ]
    catalogue.add_intents(intents)
    assert catalogue.pending_intents() == intents
    catalogue.resolve_intents([("i1", T0 + timedelta(seconds=1))], ["i2"])
    assert catalogue.pending_intents() == []
    assert stored(catalogue, a.relpath).state is State.ERASED
    assert stored(catalogue, b.relpath).state is State.PRESENT
    assert catalogue.due_in("pbx", "", T0 + timedelta(days=365), 10) == [catalogue.get(b.id)]


def test_intents_of_a_name_that_is_not_utf8_resolve(catalogue: Sweeping) -> None:
    r = rec(BAD)
    catalogue.upsert([r], T0)
    plan = {"location": f"/srv/{BAD}"}
    assert catalogue.add_intents([Intent("i1", r.id, 0, ".recd-erase-x", plan, T0)]) == {"i1"}
    assert catalogue.pending_intents()[0].plan == plan
    catalogue.resolve_intents([("i1", T0)], [])
    assert stored(catalogue, r.relpath).state is State.ERASED


def test_skip_reason_is_stored_and_cleared_by_reindexing(catalogue: Sweeping) -> None:
    a = rec("a.wav")
    catalogue.upsert([a], T0)
    catalogue.set_skip_reason(a.id, "has 2 hard links")
    assert stored(catalogue, a.relpath).skip_reason == "has 2 hard links"
    catalogue.upsert([a], T0)
    assert stored(catalogue, a.relpath).skip_reason is None


def test_breakers_trip_and_clear(catalogue: Sweeping) -> None:
    assert catalogue.breakers() == {}
    catalogue.trip_breaker("L1", T0, 2000, 4000)
    b = catalogue.breakers()["L1"]
    assert (b.due, b.total, b.tripped_at, b.released_at) == (2000, 4000, T0, None)
    catalogue.trip_breaker("L1", T0 + timedelta(hours=1), 2100, 4000)
    assert catalogue.breakers()["L1"].due == 2100
    catalogue.clear_breaker("L1")
    assert catalogue.breakers() == {}


# -- one node: what claims must not change (a shared catalogue: tests/adapters/postgres) -------


def _intent(iid: str, recording_id: str, created: datetime = T0) -> Intent:
    return Intent(iid, recording_id, 0, f".recd-erase-{iid}", {"method": "overwrite"}, created)


def test_what_a_node_read_stays_due_for_it_and_takes_its_intents(catalogue: Sweeping) -> None:
    a, b = rec("d/a.wav", deadline=T0), rec("d/b.wav", deadline=T0)
    catalogue.upsert([a, b], T0)
    first = catalogue.due_in("pbx", "d", T0, 10)
    assert [r.id for r in first] == [a.id, b.id]
    later = T0 + timedelta(hours=1)  # within any lease: the node's own claim hides nothing
    assert catalogue.due_in("pbx", "d", later, 10) == first
    assert catalogue.due_dirs(later) == [("pbx", "d")]
    assert catalogue.add_intents([_intent("ia", a.id, later)]) == {"ia"}
    assert catalogue.due_in("pbx", "d", later, 10) == first, "due until the erase is settled"


def test_a_dropped_intent_leaves_its_recording_due_for_the_node(catalogue: Sweeping) -> None:
    a = rec("a.wav", deadline=T0)
    catalogue.upsert([a], T0)
    assert catalogue.add_intents([_intent("i1", a.id)]) == {"i1"}
    catalogue.resolve_intents([], ["i1"])
    assert [r.id for r in catalogue.due_in("pbx", "", T0, 10)] == [a.id]
    assert catalogue.add_intents([_intent("i2", a.id)]) == {"i2"}


def test_recovery_takes_every_intent_of_its_node(catalogue: Sweeping) -> None:
    a, b = rec("a.wav", deadline=T0), rec("b.wav", deadline=T0)
    catalogue.upsert([a, b], T0)
    intents = [_intent("i1", a.id), _intent("i2", b.id)]
    assert catalogue.add_intents(intents) == {"i1", "i2"}
    assert catalogue.pending_intents(T0 + timedelta(seconds=1)) == intents  # lease still live
    assert catalogue.pending_intents(T0 + timedelta(days=1)) == intents  # lease expired
    assert catalogue.pending_intents() == intents
    catalogue.resolve_intents([("i1", T0)], ["i2"])
    assert catalogue.pending_intents(T0 + timedelta(days=1)) == []
    assert [r.id for r in catalogue.due_in("pbx", "", T0 + timedelta(days=1), 10)] == [b.id]


def test_a_hold_placed_after_the_read_still_wins(catalogue: HeldSweeping) -> None:
    a, b = rec("a.wav", deadline=T0), rec("b.wav", deadline=T0)
    catalogue.upsert([a, b], T0)
    assert len(catalogue.due_in("pbx", "", T0, 10)) == 2
    scope = Scope("L1", recordings=frozenset({a.id}))
    catalogue.place_hold(Hold("", scope, "C-1", "litigation", T0, "alice"))
    assert catalogue.add_intents([_intent("ia", a.id), _intent("ib", b.id)]) == {"ib"}
    assert [i.id for i in catalogue.pending_intents(T0)] == ["ib"]


def test_recovery_can_take_the_intents_of_some_sources_only(catalogue: Sweeping) -> None:
    a, b = rec("a.wav", deadline=T0), rec("b.wav", deadline=T0, source="other")
    catalogue.upsert([a, b], T0)
    intents = [_intent("i1", a.id), _intent("i2", b.id)]
    assert catalogue.add_intents(intents) == {"i1", "i2"}
    later = T0 + timedelta(days=1)
    assert catalogue.pending_intents(later, sources=["other"]) == [intents[1]]
    assert catalogue.pending_intents(later, sources=["pbx", "other"]) == intents
    assert catalogue.pending_intents(later, sources=[]) == []
    assert catalogue.pending_intents(sources=["pbx"]) == [intents[0]]


def test_the_server_clock_is_the_database_s_or_none_on_one_host(catalogue: Sweeping) -> None:
    """A shared catalogue reads its server's clock (the test server runs on this host);
    one host's has no other clock to compare with."""
    if not catalogue.shared:
        assert catalogue.server_time() is None
        return
    before = datetime.now(UTC)
    server = catalogue.server_time()
    assert server is not None
    assert server.tzinfo is UTC
    assert before - timedelta(seconds=5) <= server <= datetime.now(UTC) + timedelta(seconds=5)
