"""recd.service.requestruns: a request run previews, erases what its scope matches now but never a
held recording, waits out a hold's release grace, and resumes after an interruption or a kill."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recd.core.requeststate import ItemOutcome, RequestState
from recd.core.scope import Scope
from recd.daemon.runtime import Runtime, scan_all
from recd.errors import NotAllowedInState
from recd.ports.records import RECD
from recd.service.holds import Holds
from recd.service.requests import Requests
from recd.service.sweep import Sweeper
from tests.estate import Estate
from tests.fakes import FakeClock
from tests.service.helpers import (
    ALICE,
    BOB,
    approved,
    document,
    erase_entries,
    keyed_estate,
    requests,
    rid,
)


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock, keys: dict[str, Ed25519PrivateKey]) -> Estate:
    return keyed_estate(tmp_path, fake_clock, keys)


def test_held_recordings_are_skipped_and_named_with_their_hold(estate: Estate, rt: Runtime) -> None:
    held = estate.write("L1/h_c1.wav", age_days=1)
    free = estate.write("L1/f_c1.wav", age_days=1)
    scan_all(rt)
    hold, _ = Holds(estate.config, rt.catalogue, rt.audit, estate.clock).place(
        Scope("L1", recordings=frozenset({rid("L1/h_c1.wav")})),
        case="CASE-9", reason="court", until=None, actor=BOB,
    )  # fmt: skip
    desk = approved(estate, rt)
    stored, _items = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL
    assert held.exists() and not free.exists()
    data = json.loads(desk.certificate("REQ-1").text)
    assert data["skipped"][0]["held_by"] == [hold.id]
    assert data["skipped"][0]["reason"] == "legal hold"


def test_recordings_already_gone_say_so(estate: Estate, rt: Runtime) -> None:
    gone = estate.write("L1/g_c1.wav", age_days=1)
    scan_all(rt)
    gone.unlink()
    scan_all(rt)
    desk = requests(estate, rt)
    desk.register(document(recordings=["0" * 20]), ALICE)  # never indexed
    desk.approve("REQ-1", BOB)
    desk.register(document("REQ-2"), ALICE)
    desk.approve("REQ-2", BOB)
    stored, items = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.COMPLETED
    assert [i.note for i in items] == ["not in the catalogue: recd never indexed it"]
    stored, items = desk.execute("REQ-2", ALICE)
    assert [i.note for i in items] == ["missing: no longer where it was indexed"]
    assert json.loads(desk.certificate("REQ-2").text)["summary"]["already_gone"] == 1


def test_an_interrupted_run_resumes_and_the_certificate_ends_complete(
    estate: Estate, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("recd.service.requestruns.BATCH", 2)
    paths = [estate.write(f"L1/{n}_c1.wav", age_days=1) for n in range(5)]
    scan_all(rt)
    desk = approved(estate, rt)
    stored, _items = desk.execute("REQ-1", ALICE, should_stop=lambda: True)
    assert stored.state is RequestState.EXECUTING
    assert sum(not p.exists() for p in paths) == 2
    with pytest.raises(NotAllowedInState, match="no certificate yet"):
        desk.certificate("REQ-1")
    assert [r.id for r in desk.resumable()] == ["REQ-1"]
    desk.execute("REQ-1", RECD)  # as the daemon resumes it at start
    assert not any(p.exists() for p in paths)
    data = json.loads(desk.certificate("REQ-1").text)
    assert data["summary"]["erased"] == 5 and data["state"] == "completed"
    assert len({e["audit_seq"] for e in data["erased"]}) == 5


def test_a_request_waits_out_the_release_grace_of_a_hold(estate: Estate, rt: Runtime) -> None:
    """A release may be a mistake: what a hold kept is not erased by a request either until
    release + holds.release_grace."""
    path = estate.write("L1/h.wav", age_days=1)
    scan_all(rt)
    desk_holds = Holds(estate.config, rt.catalogue, rt.audit, estate.clock)
    hold, _ = desk_holds.place(Scope("L1"), case="C", reason="r", until=None, actor=BOB)
    desk_holds.release(hold.id, reason="oops", actor=BOB)
    desk = approved(estate, rt)
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and path.exists()
    assert item.note == (
        "released from a legal hold: not erased before 2026-11-30T12:00:00Z (holds.release_grace)"
    )
    assert json.loads(desk.certificate("REQ-1").text)["skipped"][0]["reason"] == item.note
    estate.clock.advance(7 * 86400)
    stored, _ = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.COMPLETED and not path.exists()


def test_a_received_request_is_previewed_for_its_approver(estate: Estate, rt: Runtime) -> None:
    """Read-only: no audit entry, no change of state, and still no run."""
    path = estate.write("L1/a_c1.wav", age_days=1)
    scan_all(rt)
    desk = requests(estate, rt)
    registered, _ = desk.register(document(), ALICE)
    audited = estate.audit()
    stored, (item,) = desk.preview("REQ-1")
    assert stored == registered and stored.state is RequestState.RECEIVED
    assert (item.recording_id, item.outcome) == (rid("L1/a_c1.wav"), ItemOutcome.PENDING)
    assert estate.audit() == audited and rt.catalogue.items("REQ-1") == []
    with pytest.raises(NotAllowedInState, match=r"not verified \(state received\)"):
        desk.execute("REQ-1", BOB)
    assert path.exists()
    desk.reject("REQ-1", "not the data subject", BOB)
    with pytest.raises(NotAllowedInState, match="was rejected by bob: not the data subject"):
        desk.preview("REQ-1")


def test_a_request_an_older_recd_registered_with_an_open_range_still_runs(
    estate: Estate, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check is at registration only: a request already registered (before "all"
    existed) is read, shown and run as it was."""
    path = estate.write("L1/a_c1.wav", age_days=1)
    scan_all(rt)
    desk = requests(estate, rt)
    with monkeypatch.context() as older:
        older.setattr(Requests, "_check_not_whole_licence", lambda *_: None)
        desk.register(document(**{"from": "2026-11-01T00:00:00Z"}), ALICE)
    desk.approve("REQ-1", BOB)
    desk.check_confirmed("REQ-1", None, BOB)  # not "all": no licence id asked
    stored, _ = desk.execute("REQ-1", BOB)
    assert stored.state is RequestState.COMPLETED and not path.exists()
    assert json.loads(desk.certificate("REQ-1").text)["request"]["scope"] == {
        "from": "2026-11-01T00:00:00Z"
    }


def test_a_recording_erased_by_retention_first_is_already_gone_for_the_request(
    estate: Estate, rt: Runtime
) -> None:
    path = estate.write("L1/old_c1.wav", age_days=31)  # L1 keeps 30 days
    scan_all(rt)
    desk = approved(estate, rt)
    report = Sweeper(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers).run()
    assert report.erased == 1 and not path.exists()
    erased = erase_entries(estate)
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.COMPLETED
    assert (item.outcome, item.note) == (ItemOutcome.GONE, "already erased before this run")
    assert erase_entries(estate) == erased  # nothing tried again
    data = json.loads(desk.certificate("REQ-1").text)
    assert data["summary"]["already_gone"] == 1 and data["erased"] == []


def test_a_run_killed_before_it_listed_its_items_resumes_with_what_was_erased(
    estate: Estate, rt: Runtime
) -> None:
    """A re-run marked ``executing`` and then killed left the items of the last run, none
    pending: the resumed run keeps them (with their erase entries) and certifies them."""
    estate.write("L1/a_c1.wav", age_days=1)
    scan_all(rt)
    desk = approved(estate, rt)
    done, (erased,) = desk.execute("REQ-1", ALICE)
    rt.catalogue.put_request(replace(done, state=RequestState.EXECUTING))
    assert [r.id for r in desk.resumable()] == ["REQ-1"]
    desk.execute("REQ-1", RECD)  # as the daemon resumes it at start
    stored = rt.catalogue.request("REQ-1")
    assert stored is not None and stored.state is RequestState.COMPLETED
    assert stored.info.runs == 2
    assert rt.catalogue.items("REQ-1") == [erased]
    (entry,) = json.loads(desk.certificate("REQ-1").text)["erased"]
    assert (entry["sha256"], entry["audit_seq"]) == (erased.sha256, erased.audit_seq)
