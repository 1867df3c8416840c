"""Scope matching for holds and requests: AND across fields, OR within one, [from, to)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recd.core.model import Classification, Recording, State
from recd.core.scope import Scope, normalise_party

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def rec(
    rid: str = "r1",
    *,
    licence: str | None = "L1",
    call_id: str | None = "1712",
    caller: str | None = "+44 1234 567890",
    callee: str | None = "201",
    started: datetime = T0,
) -> Recording:
    c = Classification(licence, started, call_id=call_id, caller=caller, callee=callee)
    return Recording(rid, "pbx", "a.wav", 1, 1, 10, 0, c, None, State.PRESENT, T0)


def test_an_empty_scope_is_the_whole_licence() -> None:
    scope = Scope("L1")
    assert scope.empty
    assert scope.matches(rec())
    assert not scope.matches(rec(licence="L2"))
    assert not scope.matches(rec(licence=None))  # unclassified: no licence's scope covers it


@pytest.mark.parametrize(
    ("scope", "hit"),
    [
        (Scope("L1", recordings=frozenset({"r1", "r9"})), True),
        (Scope("L1", recordings=frozenset({"r9"})), False),
        (Scope("L1", call_ids=frozenset({"1712"})), True),
        (Scope("L1", call_ids=frozenset({"1713"})), False),
        (Scope("L1", party="+441234567890"), True),
        (Scope("L1", party="00 44 (1234) 567-890"), True),
        (Scope("L1", party="201"), True),  # the callee
        (Scope("L1", party="01234567890"), False),  # a national form is another number
        (Scope("L1", start=T0), True),  # from is inclusive
        (Scope("L1", end=T0), False),  # to is exclusive
        (Scope("L1", start=T0 - timedelta(days=1), end=T0 + timedelta(seconds=1)), True),
        (Scope("L1", call_ids=frozenset({"1712"}), party="999"), False),  # AND across fields
    ],
)
def test_fields_narrow_the_scope(scope: Scope, hit: bool) -> None:
    assert not scope.empty
    assert scope.matches(rec()) is hit


def test_a_recording_without_the_field_is_outside_a_scope_that_names_it() -> None:
    assert not Scope("L1", call_ids=frozenset({"1712"})).matches(rec(call_id=None))
    assert not Scope("L1", party="201").matches(rec(caller=None, callee=None))


def test_a_range_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="the scope's 'to' must be later than its 'from'"):
        Scope("L1", start=T0, end=T0)


def test_party_normalisation() -> None:
    assert normalise_party(" 0044 20 7946-0001 ") == "+442079460001"
    assert normalise_party("(020) 7946.0001") == "02079460001"


@given(
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(timezones=st.just(UTC)),
)
def test_consecutive_ranges_never_overlap_nor_leave_gaps(
    a: datetime, b: datetime, started: datetime
) -> None:
    low, high = sorted((a, b))
    if low == high:
        return
    first, second = Scope("L1", end=low), Scope("L1", start=low, end=high)
    third = Scope("L1", start=high)
    hits = [s.matches(rec(started=started)) for s in (first, second, third)]
    assert hits.count(True) == 1


def test_a_whole_licence_scope_is_empty_and_takes_no_other_field() -> None:
    scope = Scope("L1", whole_licence=True)
    assert scope.empty and scope.matches(rec()) and not scope.matches(rec(licence="L2"))
    assert scope != Scope("L1")  # a request's "all" is not a hold's empty scope
    for narrowed in ({"party": "201"}, {"start": T0}, {"recordings": frozenset({"r1"})}):
        with pytest.raises(ValueError, match=r"the whole licence \('all'\) takes no other field"):
            Scope("L1", whole_licence=True, **narrowed)
