"""Legal holds through the service and the real SQLite catalogue: a rule, not a snapshot;
never erased; release grace; expiry; every change audited; a hold placed after a sweep's plan
wins at the last check."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recd.core.holds import HoldState
from recd.core.model import recording_id
from recd.core.scope import Scope
from recd.daemon.runtime import Runtime, scan_all
from recd.errors import NotAllowedInState, NotFound, UsageError
from recd.ports.eraser import EraseError, PreparedErase
from recd.ports.records import Actor
from recd.service.holds import Holds
from recd.service.sweep import Sweeper
from tests.estate import Estate
from tests.fakes import FakeClock

ALICE = Actor("alice", 1001, admin=True)


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    return Estate(tmp_path, fake_clock)


@pytest.fixture
def rt(estate: Estate) -> Iterator[Runtime]:
    runtime = estate.runtime()
    yield runtime
    runtime.close()


def holds(estate: Estate, rt: Runtime) -> Holds:
    return Holds(estate.config, rt.catalogue, rt.audit, estate.clock)


def sweep(estate: Estate, rt: Runtime) -> Any:
    scan_all(rt)
    return Sweeper(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers).run()


def rid(relpath: str) -> str:
    return recording_id("pbx", relpath)


def test_a_held_recording_past_its_deadline_stays(estate: Estate, rt: Runtime) -> None:
    old = estate.write("L1/old.wav", age_days=40)
    other = estate.write("L1/other.wav", age_days=40)
    scan_all(rt)
    hold, held = holds(estate, rt).place(
        Scope("L1", recordings=frozenset({rid("L1/old.wav")})),
        case="CASE-9", reason="litigation", until=None, actor=ALICE,
    )  # fmt: skip
    assert (hold.id, held) == ("H-0001", 1)
    report = sweep(estate, rt)
    assert old.exists() and not other.exists()
    assert report.erased == 1
    rec = rt.catalogue.get(rid("L1/old.wav"))
    assert rec is not None and rec.held
    placed = [e for e in estate.audit() if e["action"] == "hold.placed"]
    assert placed[0]["actor"] == "alice" and placed[0]["details"]["uid"] == 1001
    assert placed[0]["details"]["whole_licence"] is False


def test_a_hold_is_a_rule_recordings_indexed_later_are_held(estate: Estate, rt: Runtime) -> None:
    scan_all(rt)
    holds(estate, rt).place(Scope("L1"), case="C", reason="r", until=None, actor=ALICE)
    late = estate.write("L1/late.wav", age_days=45)
    report = sweep(estate, rt)
    assert late.exists() and report.erased == 0
    assert rt.catalogue.next_deadline() is None  # nothing to wake for: held is never due


def test_release_makes_due_after_the_grace(estate: Estate, rt: Runtime) -> None:
    path = estate.write("L1/a.wav", age_days=40)
    scan_all(rt)
    desk = holds(estate, rt)
    hold, _ = desk.place(Scope("L1"), case="C", reason="r", until=None, actor=ALICE)
    released = desk.release(hold.id, reason="settled", actor=ALICE)
    assert released.released == 1
    assert released.due_from == estate.clock.now() + timedelta(days=7)
    assert released.hold.state is HoldState.RELEASED
    sweep(estate, rt)
    assert path.exists()  # within the grace
    estate.clock.advance(7 * 86400 + 1)
    sweep(estate, rt)
    assert not path.exists()
    with pytest.raises(NotAllowedInState, match="already released"):
        desk.release(hold.id, reason="again", actor=ALICE)


def test_release_keeps_what_another_hold_still_matches(estate: Estate, rt: Runtime) -> None:
    estate.write("L1/a.wav", age_days=40)
    estate.write("L1/b.wav", age_days=40)
    scan_all(rt)
    desk = holds(estate, rt)
    whole, _ = desk.place(Scope("L1"), case="C1", reason="r", until=None, actor=ALICE)
    one = Scope("L1", recordings=frozenset({rid("L1/a.wav")}))
    desk.place(one, case="C2", reason="r", until=None, actor=ALICE)
    assert desk.release(whole.id, reason="done", actor=ALICE).released == 1
    a, b = rt.catalogue.get(rid("L1/a.wav")), rt.catalogue.get(rid("L1/b.wav"))
    assert a is not None and b is not None
    assert a.held and not b.held


def test_an_expired_hold_is_released_by_recd(estate: Estate, rt: Runtime) -> None:
    estate.write("L1/a.wav", age_days=40)
    scan_all(rt)
    desk = holds(estate, rt)
    until = estate.clock.now() + timedelta(days=1)
    desk.place(Scope("L1"), case="C", reason="r", until=until, actor=ALICE)
    assert desk.expire() == []
    estate.clock.advance(86400)
    (expired,) = desk.expire()
    assert expired.hold.state is HoldState.EXPIRED and expired.hold.released_by == "recd"
    entry = [e for e in estate.audit() if e["action"] == "hold.released"][-1]
    assert entry["actor"] == "recd" and entry["details"]["expired"] is True


def test_refusals(estate: Estate, rt: Runtime) -> None:
    estate.write("L2/x.wav", age_days=1)
    scan_all(rt)
    desk = holds(estate, rt)
    with pytest.raises(NotFound, match=r"licence NOPE is neither in licences.d"):
        desk.place(Scope("NOPE"), case="C", reason="r", until=None, actor=ALICE)
    with pytest.raises(UsageError, match="belongs to licence L2, not L1"):
        desk.place(
            Scope("L1", recordings=frozenset({rid("L2/x.wav")})),
            case="C", reason="r", until=None, actor=ALICE,
        )  # fmt: skip
    with pytest.raises(UsageError, match=r"^case: must not be empty"):
        desk.place(Scope("L1"), case=" ", reason="r", until=None, actor=ALICE)
    with pytest.raises(UsageError, match=r"until: .* has already passed"):
        desk.place(Scope("L1"), case="C", reason="r", until=estate.clock.now(), actor=ALICE)
    with pytest.raises(NotFound, match="no legal hold H-0404"):
        desk.release("H-0404", reason="r", actor=ALICE)


def test_a_hold_placed_after_the_plan_wins_at_the_last_check(
    estate: Estate, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep has opened and checked the file; before its intent is recorded, a hold is
    placed (another administrator, another host). The catalogue's intent claim refuses it."""
    path = estate.write("L1/a.wav", age_days=40)
    scan_all(rt)
    eraser = rt.erasers["pbx"]
    real_prepare = eraser.prepare_many
    desk = holds(estate, rt)

    def prepare_then_hold(*args: Any, **kwargs: Any) -> list[PreparedErase | EraseError | OSError]:
        prepared = real_prepare(*args, **kwargs)
        desk.place(Scope("L1"), case="RACE", reason="r", until=None, actor=ALICE)
        return prepared

    monkeypatch.setattr(eraser, "prepare_many", prepare_then_hold)
    report = Sweeper(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers).run()
    assert path.exists()
    assert report.erased == 0 and report.licences["L1"].kept["held"] == 1
    assert not any(e["action"].startswith("erase.") for e in estate.audit())
    assert rt.catalogue.pending_intents() == []


def test_scope_sql_agrees_with_scope_matches(estate: Estate, rt: Runtime) -> None:
    """The catalogue's SQL for a scope and ``Scope.matches`` pick the same recordings."""
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    names = [f"L1/{t0 + timedelta(hours=h):%Y%m%d%H%M%S}_c{h % 3}.wav" for h in range(12)]
    for n in names:
        estate.write(n, age_days=1)
    scan_all(rt)
    recs = list(rt.catalogue.all())  # type: ignore[attr-defined]
    scopes = [
        Scope("L1"),
        Scope("L1", start=t0 + timedelta(hours=3), end=t0 + timedelta(hours=7)),
        Scope("L1", recordings=frozenset({recs[0].id, recs[5].id})),
        Scope("L2"),
    ]
    for scope in scopes:
        want = sorted(r.id for r in recs if scope.matches(r))
        got = sorted(r.id for r in rt.catalogue.matching(scope, 1000))
        assert got == want, scope
        assert rt.catalogue.held_count(scope) == len(want)
