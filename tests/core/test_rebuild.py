"""The holds an audit log places and releases, replayed from its entries alone (issue 14)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from recd.core.audit import GENESIS, AuditDraft, AuditEntry, seal
from recd.core.holds import HoldState
from recd.core.rebuild import replay_holds
from recd.core.scope import Scope
from recd.core.times import format_time

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
GRACE = timedelta(days=7)
R1, R2 = "0123456789abcdef0123", "fedcba98765432100123"
SCOPE = {"recordings": [R1, R2], "call_ids": [], "party": None, "from": None, "to": None}


def log(*steps: tuple[str, str, Mapping[str, Any], str]) -> list[AuditEntry]:
    """Sealed entries, one a minute from T0: (action, subject, details, actor)."""
    entries: list[AuditEntry] = []
    prev = GENESIS
    for n, (action, subject, details, actor) in enumerate(steps, start=1):
        entry = seal(
            AuditDraft(action, subject, details, actor),
            seq=n, prev=prev, time=T0 + timedelta(minutes=n),
        )  # fmt: skip
        entries.append(entry)
        prev = entry.hash
    return entries


def placed(hold: str, *, scope: Mapping[str, Any] = SCOPE, **extra: Any) -> tuple[Any, ...]:
    details = {"licence": "L1", "case": "C-1", "reason": "court order", "scope": scope,
               "whole_licence": False, "until": None, "held": 2, "uid": 1000, **extra}  # fmt: skip
    return ("hold.placed", hold, details, "alice")


def released(hold: str, *, expired: bool = False, **extra: Any) -> tuple[Any, ...]:
    details = {"licence": "L1", "case": "C-1", "reason": "case closed", "expired": expired,
               "released": 2, **extra}  # fmt: skip
    return ("hold.released", hold, details, "recd" if expired else "bob")


def test_a_placed_hold_comes_back_as_it_was() -> None:
    entries = log(placed("H-0003"))
    replayed = replay_holds(entries, GRACE)
    [hold] = replayed.holds
    assert hold.id == "H-0003"
    assert hold.scope == Scope("L1", recordings=frozenset({R1, R2}))
    assert (hold.case, hold.reason, hold.placed_by) == ("C-1", "court order", "alice")
    assert hold.placed_at == T0 + timedelta(minutes=1)
    assert (hold.state, hold.until, hold.due_from) == (HoldState.ACTIVE, None, None)
    assert (replayed.last_seq, replayed.last_hash) == (1, entries[0].hash)
    assert (replayed.active, replayed.released, replayed.problems) == (1, 0, ())


def test_a_release_keeps_its_reason_actor_and_due_from() -> None:
    due = T0 + timedelta(days=3)
    replayed = replay_holds(
        log(placed("H-0001"), released("H-0001", due_from=format_time(due))), GRACE
    )
    [hold] = replayed.holds
    assert hold.state is HoldState.RELEASED
    assert (hold.released_by, hold.release_reason) == ("bob", "case closed")
    assert hold.released_at == T0 + timedelta(minutes=2)
    assert hold.due_from == due
    assert (replayed.active, replayed.released) == (0, 1)


def test_an_expired_hold_and_its_until() -> None:
    until = T0 + timedelta(hours=1)
    due = until + GRACE
    entries = log(
        placed("H-0001", until=format_time(until)),
        released("H-0001", expired=True, due_from=format_time(due)),
    )
    [hold] = replay_holds(entries, GRACE).holds
    assert (hold.until, hold.state, hold.released_by, hold.due_from) == (
        until, HoldState.EXPIRED, "recd", due,
    )  # fmt: skip


def test_an_old_release_without_due_from_gets_the_grace() -> None:
    [hold] = replay_holds(log(placed("H-0001"), released("H-0001")), GRACE).holds
    assert hold.due_from == T0 + timedelta(minutes=2) + GRACE


def test_several_holds_in_placing_order_and_other_actions_ignored() -> None:
    entries = log(
        ("config.loaded", "/etc/recd/recd.toml", {"version": "1"}, "recd"),
        placed("H-0001"),
        placed("H-0002", scope={"party": "+44 7700 900123"}),
        ("erase.done", "r9", {"location": "pbx/x.wav"}, "recd"),
        released("H-0001", due_from=format_time(T0)),
        placed("H-0003", scope={}),
        ("hold.renamed", "H-0002", {}, "alice"),
        ("catalogue.rebuilt", "catalog.db", {"holds": 3}, "recd"),
    )
    replayed = replay_holds(entries, GRACE)
    assert [(h.id, h.state) for h in replayed.holds] == [
        ("H-0001", HoldState.RELEASED),
        ("H-0002", HoldState.ACTIVE),
        ("H-0003", HoldState.ACTIVE),
    ]
    assert replayed.holds[1].scope.party == "+44 7700 900123"
    assert replayed.holds[2].scope.empty, "a hold on the whole licence"
    assert (replayed.last_seq, replayed.active, replayed.released) == (8, 2, 1)
    assert replayed.problems == ()


def test_an_empty_log() -> None:
    replayed = replay_holds([], GRACE)
    assert (replayed.holds, replayed.last_seq, replayed.last_hash) == ((), 0, None)


def test_unclear_entries_keep_more_never_less() -> None:
    entries = log(
        released("H-0009"),  # never placed
        placed("H-0001", scope={"from": "yesterday"}),  # unreadable: the whole licence
        ("hold.placed", "H-0002", {"case": "C-2"}, "alice"),  # no licence: nothing to hold
        placed("H-0003", until="soon"),  # an until that is no time: never expires
    )
    replayed = replay_holds(entries, GRACE)
    assert [h.id for h in replayed.holds] == ["H-0001", "H-0003"]
    assert replayed.holds[0].scope == Scope("L1")
    assert replayed.holds[1].until is None
    assert len(replayed.problems) == 4
    assert "H-0009" in replayed.problems[0]


# -- over a catalogue's holds: the entries after its audit mark -----------------------------------


def test_a_release_after_the_mark_applies_to_a_hold_placed_before_it() -> None:
    entries = log(placed("H-0001"), placed("H-0002"), released("H-0001"))
    before = replay_holds(entries[:2], GRACE).holds  # what the catalogue had at its mark
    replayed = replay_holds(entries[2:], GRACE, start=before)
    [hold] = replayed.holds  # only what the entries touched
    assert (hold.id, hold.state) == ("H-0001", HoldState.RELEASED)
    assert hold.placed_by == "alice", "the release kept the placing the catalogue had"
    assert (replayed.last_seq, replayed.problems) == (3, ())


def test_replaying_entries_the_catalogue_already_reflects_changes_nothing() -> None:
    entries = log(placed("H-0001"), placed("H-0002"), released("H-0001"))
    everything = replay_holds(entries, GRACE).holds
    again = replay_holds(entries[1:], GRACE, start=everything)
    assert {h.id: h for h in again.holds} == {h.id: h for h in everything}
