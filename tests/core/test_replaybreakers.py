"""recd.core.replaybreakers: breakers an audit log records, replayed from its entries alone (issue
14): tripped, released, rearmed by the next sweep, and what cannot be replayed reported."""

from __future__ import annotations

from recd.core.replaybreakers import BreakerRecord, replay_breakers
from tests.core.helpers import Entry, at, log, released, retention, tripped


def test_a_tripped_breaker_comes_back_tripped_and_a_released_one_released() -> None:
    breakers = replay_breakers(log(tripped(), tripped("L2"), released()), {}).breakers
    assert breakers["L2"] == BreakerRecord("L2", at(2), 30, 40, tripped_seq=2)
    assert breakers["L1"] == BreakerRecord("L1", at(1), 30, 40, at(3), "bob", 1, 3)


def test_the_sweep_after_a_release_rearms_the_breaker() -> None:
    rearmed: Entry = ("breaker.rearmed", "L1", {}, "recd")
    assert replay_breakers(log(tripped(), released(), rearmed), {}).standing == {}
    # an older log says it by the retention erase the release let through
    assert replay_breakers(log(tripped(), released(), retention("L2")), {}).standing.keys() == {
        "L1"
    }
    assert replay_breakers(log(tripped(), released(), retention()), {}).standing == {}
    again = replay_breakers(log(tripped(), released(), retention(), tripped()), {}).standing
    assert again["L1"] == BreakerRecord("L1", at(4), 30, 40, tripped_seq=4)
    assert replay_breakers(log(tripped(), retention(), released()), {}).tripped == 0


def test_entries_a_catalogue_already_reflects_change_nothing() -> None:
    entries = log(tripped(), retention(), released())
    known = replay_breakers(entries, {}).breakers
    assert known["L1"].released_by == "bob"
    assert replay_breakers(entries[:2], known).breakers == known, "re-armed by an older erase"


def test_a_release_of_a_breaker_never_tripped_is_reported() -> None:
    replayed = replay_breakers(log(released()), {})
    assert (replayed.breakers, replayed.problems) == (
        {}, ("seq 1: releases the breaker of L1, never tripped in this log; ignored",),
    )  # fmt: skip


def test_a_second_release_keeps_who_released_the_breaker_first() -> None:
    again = ("breaker.released", "L1", {"uid": 1002}, "carol")
    breakers = replay_breakers(log(tripped(), released(), again), {})
    assert breakers.breakers["L1"] == BreakerRecord("L1", at(1), 30, 40, at(2), "bob", 1, 2)
    assert breakers.problems == ()
