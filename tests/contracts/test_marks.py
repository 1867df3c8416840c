"""The audit-mark and rebuild roles of the catalogue (``recd.ports.marks``): marks,
checkpoints, checked segments, and holds, requests and breakers restored from the log, on
every implementation in ``CATALOGUES``."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Protocol

import pytest

from recd.core.audit import GENESIS
from recd.core.holds import Hold, HoldState
from recd.core.model import recording_id
from recd.core.requeststate import ItemOutcome, RequestItem, RequestState
from recd.core.scope import Scope
from recd.core.segcheck import Ends, Print, Prints, Stat
from recd.ports.legal import HoldCatalogue, RequestCatalogue
from recd.ports.marks import AuditMarkCatalogue, RebuildCatalogue
from recd.ports.records import AuditCheckpoint, AuditMark, Breaker
from recd.ports.scanning import IndexingCatalogue
from recd.ports.sweeping import SweepCatalogue
from tests.contracts.rows import T0, held_row, rec, stored_request


class Rebuilding(
    IndexingCatalogue, SweepCatalogue, HoldCatalogue, RequestCatalogue, RebuildCatalogue, Protocol
):
    """The rebuild's catalogue, over recordings the indexer stored; what it restores is read
    back through the roles that use it (holds, requests, breakers and due counts)."""


def test_the_audit_mark(catalogue: AuditMarkCatalogue) -> None:
    assert catalogue.audit_mark() is None, "a new catalogue never saw the log"
    catalogue.set_audit_mark(AuditMark(12, "ab" * 32))
    assert catalogue.audit_mark() == AuditMark(12, "ab" * 32)
    catalogue.set_audit_mark(AuditMark(13, "cd" * 32, 4096))
    assert catalogue.audit_mark() == AuditMark(13, "cd" * 32, 4096)


def test_the_audit_checkpoint(catalogue: AuditMarkCatalogue) -> None:
    assert catalogue.audit_checkpoint() is None, "a new catalogue never checked the log"
    checkpoint = AuditCheckpoint(40, "ab" * 32, 12_345, "cd" * 32)
    catalogue.set_audit_checkpoint(checkpoint)
    assert catalogue.audit_checkpoint() == checkpoint
    assert catalogue.audit_mark() is None, "the checkpoint is not the mark"


def test_the_audit_segments_checked(catalogue: AuditMarkCatalogue) -> None:
    assert catalogue.audit_segments() is None, "a new catalogue never checked a segment"
    stat = Stat("audit.log.1-9.gz", 1, 9, 77, 4096, 1_700_000_000_123_456_789)
    prints = Prints({stat.name: Print(stat, Ends(1, GENESIS, 0, 9, "ab" * 32, 9000))},
                    (10, "ab" * 32, 9000))  # fmt: skip
    catalogue.set_audit_segments(prints)
    assert catalogue.audit_segments() == prints
    assert catalogue.audit_checkpoint() is None


def test_restored_breakers_replace_theirs_and_rearmed_ones_go(catalogue: Rebuilding) -> None:
    catalogue.trip_breaker("L1", T0, 20, 40)
    catalogue.trip_breaker("L3", T0, 5, 6)
    released = Breaker("L1", T0, 30, 40, T0 + timedelta(hours=1), "bob")
    tripped = Breaker("L2", T0, 7, 9, None, None)
    catalogue.restore_breakers([released, tripped], rearmed=["L3", "L9"])
    assert catalogue.breakers() == {"L1": released, "L2": tripped}
    catalogue.restore_breakers([released, tripped], rearmed=["L3"])  # again: the same
    assert catalogue.breakers() == {"L1": released, "L2": tripped}


def test_restored_requests_come_back_with_their_items(catalogue: Rebuilding) -> None:
    erased = RequestItem("0" * 20, ItemOutcome.ERASED, "/srv/a.wav", "L1", 100, "cd" * 32,
                         "overwrite", True, time=T0, audit_seq=9)  # fmt: skip
    held = RequestItem("1" * 20, ItemOutcome.HELD, holds=("H-0001",), note="kept by a legal hold")
    done = stored_request("REQ-1", RequestState.COMPLETED)
    catalogue.put_request(replace(done, state=RequestState.EXECUTING))
    catalogue.put_items("REQ-1", [replace(erased, outcome=ItemOutcome.PENDING)])
    waiting = stored_request("REQ-2", RequestState.RECEIVED)
    catalogue.restore_requests([(done, [erased, held]), (waiting, [])])
    assert catalogue.request("REQ-1") == done
    assert catalogue.items("REQ-1") == [erased, held]
    assert catalogue.requests(RequestState.RECEIVED) == [waiting]
    catalogue.restore_requests([(done, [erased, held]), (waiting, [])])  # again: the same
    assert catalogue.items("REQ-1") == [erased, held]
    assert len(catalogue.requests()) == 2


def test_requests_are_restored_in_one_transaction(catalogue: Rebuilding) -> None:
    broken = replace(stored_request("REQ-2"), document={"not json": object()})
    with pytest.raises(TypeError):
        catalogue.restore_requests([(stored_request("REQ-1"), []), (broken, [])])
    assert catalogue.requests() == [], "half a restore was kept"


def test_restored_holds_keep_their_ids_states_and_times(catalogue: Rebuilding) -> None:
    due = T0 + timedelta(days=40)
    active = Hold("H-0007", Scope("L1", call_ids=frozenset({"42"})), "C-1", "court", T0, "alice",
                  until=T0 + timedelta(days=90))  # fmt: skip
    gone = Hold("H-0003", Scope("L2"), "C-2", "audit", T0, "bob", state=HoldState.RELEASED,
                released_at=T0 + timedelta(days=1), released_by="carol",
                release_reason="closed", due_from=due)  # fmt: skip
    catalogue.upsert([rec("held.wav"), rec("free.wav", licence="L3")], T0)
    assert catalogue.restore_holds([gone, active]) == 1
    assert catalogue.hold("H-0007") == active
    assert catalogue.hold("H-0003") == gone
    assert catalogue.holds() == [active]
    assert held_row(catalogue, "held.wav")[0] and not held_row(catalogue, "free.wav")[0]
    # Again (a rebuild cut short and redone): the same holds, no duplicate.
    catalogue.restore_holds([gone, active])
    assert catalogue.holds(everything=True) == [gone, active]
    # A hold placed later is numbered after the highest restored.
    stored, _ = catalogue.place_hold(replace(active, id=""))
    assert stored.id == "H-0008"


def test_a_restored_release_floors_what_it_matches_now_and_later(catalogue: Rebuilding) -> None:
    due = T0 + timedelta(days=40)  # later than the recordings' deadline (T0 + 30 days)
    gone = Hold("H-0001", Scope("L1"), "C", "r", T0, "alice", state=HoldState.RELEASED,
                released_at=T0, released_by="bob", release_reason="x", due_from=due)  # fmt: skip
    still = Hold("H-0002", Scope("L1", recordings=frozenset({recording_id("pbx", "kept.wav")})),
                 "C", "r", T0, "alice")  # fmt: skip
    catalogue.upsert([rec("before.wav"), rec("kept.wav"), rec("other.wav", licence="L2")], T0)
    catalogue.restore_holds([gone, still])
    catalogue.upsert([rec("after.wav")], T0)  # indexed after the rebuild
    assert held_row(catalogue, "before.wav") == (False, due, due)
    assert held_row(catalogue, "after.wav") == (False, due, due)
    assert held_row(catalogue, "kept.wav")[0] is True
    assert held_row(catalogue, "other.wav") == (False, None, T0 + timedelta(days=30))
    assert catalogue.counts(due - timedelta(seconds=1))["L1"] == (3, 0), "due before due_from"
    # Past its due_from, a release floors nothing indexed later.
    catalogue.upsert([rec("late.wav")], due + timedelta(seconds=1))
    assert held_row(catalogue, "late.wav") == (False, None, T0 + timedelta(days=30))


def test_a_replayed_release_lets_go_of_what_no_other_hold_keeps(catalogue: Rebuilding) -> None:
    """A catalogue behind the log: a hold it has active, released by an entry after its
    mark; what another active hold matches stays held. Replayed twice: the same."""
    due = T0 + timedelta(days=40)
    catalogue.upsert([rec("a.wav"), rec("b.wav")], T0)
    wide, _ = catalogue.place_hold(Hold("", Scope("L1"), "C", "r", T0, "alice"))
    only_b = Scope("L1", recordings=frozenset({recording_id("pbx", "b.wav")}))
    narrow, _ = catalogue.place_hold(Hold("", only_b, "C", "r", T0, "alice"))
    released = replace(wide, state=HoldState.RELEASED, released_at=T0, released_by="bob",
                       release_reason="x", due_from=due)  # fmt: skip
    for _ in range(2):
        assert catalogue.restore_holds([released]) == 1
        assert held_row(catalogue, "a.wav") == (False, due, due)
        assert held_row(catalogue, "b.wav")[0] is True
        assert catalogue.holds() == [narrow]
