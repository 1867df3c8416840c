"""The hold, request and S3-mirror roles of the catalogue (``recd.ports.legal``), on every
implementation in ``CATALOGUES``.

Each test names the roles it uses: the role under test, and ``IndexingCatalogue`` to store
the recordings it is about, as the indexer does.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Protocol

from recd.core.holds import Hold, HoldState
from recd.core.model import State
from recd.core.requeststate import ItemOutcome, RequestItem, RequestState
from recd.core.scope import Scope
from recd.ports.legal import HoldCatalogue, MirrorCatalogue, RequestCatalogue
from recd.ports.records import Mirrored
from recd.ports.scanning import IndexingCatalogue
from tests.contracts.rows import T0, held_row, rec, stored, stored_request


class Holding(IndexingCatalogue, HoldCatalogue, Protocol):
    """Holds over recordings the indexer stored."""


class Requesting(IndexingCatalogue, RequestCatalogue, Protocol):
    """Requests over recordings the indexer stored."""


class Mirroring(IndexingCatalogue, HoldCatalogue, MirrorCatalogue, Protocol):
    """The S3 mirror of holds over recordings the indexer stored."""


def hold(recordings: frozenset[str] = frozenset()) -> Hold:
    """A hold on licence L1 (on only ``recordings``, if given)."""
    return Hold("", Scope("L1", recordings=recordings), "C-1", "litigation", T0, "alice")


# -- holds ------------------------------------------------------------------------------------


def test_a_placed_hold_keeps_what_it_matches_now_and_later(catalogue: Holding) -> None:
    catalogue.upsert([rec("a.wav"), rec("b.wav", licence="L2")], T0)
    placed, matched = catalogue.place_hold(hold())
    assert matched == 1
    assert placed.id and replace(placed, id="") == hold()
    assert catalogue.hold(placed.id) == placed
    assert catalogue.holds() == [placed]
    assert held_row(catalogue, "a.wav")[0] and not held_row(catalogue, "b.wav")[0]
    catalogue.upsert([rec("c.wav")], T0)
    assert held_row(catalogue, "c.wav")[0], "a hold is a rule: it keeps what comes later"
    assert catalogue.held_count(Scope("L1")) == 2
    assert catalogue.hold("H-9999") is None


def test_a_release_lets_go_of_what_no_other_hold_keeps(catalogue: Holding) -> None:
    a, b = rec("a.wav"), rec("b.wav")
    catalogue.upsert([a, b], T0)
    wide, _ = catalogue.place_hold(hold())
    narrow, matched = catalogue.place_hold(hold(recordings=frozenset({a.id})))
    assert matched == 1 and narrow.id != wide.id
    due = T0 + timedelta(days=45)
    freed = catalogue.release_hold(
        wide, at=T0, by="bob", reason="settled", expired=False, not_before=due
    )
    assert freed == 1
    assert held_row(catalogue, "a.wav")[0] is True
    assert held_row(catalogue, "b.wav") == (False, due, due)
    assert catalogue.holds() == [narrow]
    assert catalogue.holds(everything=True) == [catalogue.hold(wide.id), narrow]
    released = catalogue.hold(wide.id)
    assert released is not None
    assert (released.state, released.released_at, released.released_by) == (
        HoldState.RELEASED, T0, "bob",
    )  # fmt: skip
    assert (released.release_reason, released.due_from) == ("settled", due)


def test_an_expired_hold_is_recorded_as_expired(catalogue: Holding) -> None:
    catalogue.upsert([rec("a.wav")], T0)
    placed, _ = catalogue.place_hold(replace(hold(), until=T0 + timedelta(days=1)))
    at = T0 + timedelta(days=1)
    catalogue.release_hold(placed, at=at, by="recd", reason="until", expired=True, not_before=at)
    expired = catalogue.hold(placed.id)
    assert expired is not None and expired.state is HoldState.EXPIRED
    assert catalogue.holds() == [] and not held_row(catalogue, "a.wav")[0]


def test_a_release_records_its_due_from(catalogue: Holding) -> None:
    catalogue.upsert([rec("a.wav")], T0)
    placed, _ = catalogue.place_hold(hold())
    due = T0 + timedelta(days=45)
    catalogue.release_hold(placed, at=T0, by="bob", reason="x", expired=False, not_before=due)
    stored = catalogue.hold(placed.id)
    assert stored is not None and stored.due_from == due
    catalogue.upsert([rec("b.wav")], T0)
    assert held_row(catalogue, "b.wav") == (False, due, due), "a release's grace is a rule too"


def test_licences_are_those_with_present_recordings(catalogue: Holding) -> None:
    catalogue.upsert([rec("a.wav"), rec("u.wav", licence=None), rec("b.wav", licence="L2")], T0)
    catalogue.mark_missing([rec("b.wav", licence="L2").id])
    assert sorted(catalogue.licences(), key=str) == ["L1", None]


def test_a_scope_matches_in_the_catalogue_what_it_matches_in_memory(
    catalogue: Requesting,
) -> None:
    """Every kind of scope field, queried, finds exactly the recordings ``Scope.matches``."""
    fields = [
        ("a", "42", "+44 7700 900123", "100"),
        ("b", "43", "100", "(0770) 0-900.123"),
        ("c", "caf\u00e9", "00447700900123", None),
        ("d", None, None, "07700900123"),
    ]
    rows = [
        replace(r, classification=replace(r.classification, call_id=call, caller=caller,
                                          callee=callee))
        for n, (name, call, caller, callee) in enumerate(fields)
        for r in [rec(f"{name}.wav", started=T0 + timedelta(hours=n))]
    ] + [rec("other.wav", licence="L2")]  # fmt: skip
    catalogue.upsert(rows, T0)
    scopes = [
        Scope("L1"),
        Scope("L1", call_ids=frozenset({"42", "caf\u00e9"})),
        Scope("L1", party="+447700900123"),
        Scope("L1", party="0770 0900 123"),
        Scope("L1", party="100", start=T0 + timedelta(minutes=30)),
        Scope("L1", recordings=frozenset({rows[3].id, rows[4].id}), end=T0 + timedelta(hours=4)),
        Scope("L2", call_ids=frozenset({"43"})),
    ]
    for scope in scopes:
        expected = sorted(r.id for r in rows if scope.matches(r))
        assert sorted(r.id for r in catalogue.matching(scope, 100)) == expected, scope
        assert catalogue.held_count(scope) == len(expected), scope
    assert len(catalogue.matching(Scope("L1", party="+447700900123"), 100)) == 2


# -- requests ---------------------------------------------------------------------------------


def test_a_stored_request_is_got_updated_and_listed(catalogue: Requesting) -> None:
    first, second = stored_request("R-1"), stored_request("R-2", RequestState.RECEIVED)
    catalogue.put_request(first)
    catalogue.put_request(replace(second, updated=T0 + timedelta(minutes=1)))
    assert catalogue.request("R-1") == first
    assert catalogue.request("R-9") is None
    running = replace(
        first, state=RequestState.EXECUTING, info=replace(first.info, runs=1, started_seq=9),
        updated=T0 + timedelta(minutes=2),
    )  # fmt: skip
    catalogue.put_request(running)
    assert catalogue.request("R-1") == running
    assert [r.id for r in catalogue.requests()] == ["R-2", "R-1"], "least recently changed first"
    assert catalogue.requests(RequestState.EXECUTING) == [running]
    assert catalogue.requests(RequestState.VERIFIED) == []


def test_items_keep_their_order_and_are_updated_in_place(catalogue: Requesting) -> None:
    a, b = rec("a.wav"), rec("b.wav")
    catalogue.put_request(stored_request("R-1"))
    pending = [RequestItem(a.id, ItemOutcome.PENDING), RequestItem(b.id, ItemOutcome.PENDING)]
    catalogue.put_items("R-1", pending)
    assert catalogue.items("R-1") == pending
    erased = RequestItem(
        b.id, ItemOutcome.ERASED, location="pbx/b.wav", licence="L1", size=100,
        sha256="ab" * 32, method="overwrite", effective=True, time=T0, audit_seq=7,
        holds=("H-0001",), note="n", s3={"bucket": "x", "versions": [{"version_id": "v1"}]},
    )  # fmt: skip
    catalogue.put_items("R-1", [erased])
    assert catalogue.items("R-1") == [pending[0], erased]
    assert catalogue.items("R-2") == []


def test_matching_finds_recordings_of_a_scope_in_any_state(catalogue: Requesting) -> None:
    a, b, c = rec("a.wav"), rec("b.wav"), rec("c.wav", licence="L2")
    catalogue.upsert([a, b, c], T0)
    catalogue.mark_missing([b.id])
    assert sorted(r.id for r in catalogue.matching(Scope("L1"), 10)) == sorted([a.id, b.id])
    assert len(catalogue.matching(Scope("L1"), 1)) == 1
    assert [r.id for r in catalogue.matching(Scope("L1", recordings=frozenset({b.id})), 10)] == [
        b.id
    ]
    assert catalogue.held_count(Scope("L1")) == 1, "only present recordings"
    assert stored(catalogue, "b.wav") == replace(b, state=State.MISSING)


# -- S3 legal holds mirrored ------------------------------------------------------------------


def test_mirror_work_follows_holds_and_new_versions(catalogue: Mirroring) -> None:
    key = rec("calls/a.wav", source="archive")
    catalogue.upsert([key, rec("b.wav", source="archive", licence="L2")], T0)
    assert catalogue.mirror_work("archive", 10) == ([], [])
    placed, _ = catalogue.place_hold(hold())
    held = catalogue.get(key.id)
    assert catalogue.mirror_work("archive", 10) == ([held], [])
    assert catalogue.mirror_work("pbx", 10) == ([], [])
    mirror = Mirrored(key.id, "calls/a.wav", key.ino, (("v1", True), ("v0", False)))
    catalogue.set_mirrored(mirror)
    assert catalogue.mirrored(key.id) == mirror
    assert catalogue.mirror_work("archive", 10) == ([], [])
    catalogue.upsert([replace(key, ino=key.ino + 1)], T0)  # a new version came
    assert [r.id for r in catalogue.mirror_work("archive", 10)[0]] == [key.id]
    catalogue.set_mirrored(replace(mirror, ino=key.ino + 1))
    catalogue.release_hold(placed, at=T0, by="bob", reason="x", expired=False, not_before=T0)
    assert catalogue.mirror_work("archive", 10) == ([], [replace(mirror, ino=key.ino + 1)])
    catalogue.set_mirrored(key.id)
    assert catalogue.mirrored(key.id) is None
    assert catalogue.mirror_work("archive", 10) == ([], [])
