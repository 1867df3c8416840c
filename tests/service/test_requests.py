"""Early-deletion requests through the service, the real catalogue, real files and audit log:
registration and every refusal, two-person and signature verification, execution with SHA-256
and the certificate, holds winning, re-runs and an interrupted run resuming."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recd.config.load import Licence
from recd.config.types import Agent
from recd.core.model import EraseMethod, State, recording_id
from recd.core.periods import parse_period
from recd.core.requests import RequestInvalid
from recd.core.requeststate import ItemOutcome, RequestState
from recd.core.scope import Scope
from recd.core.times import format_time
from recd.daemon.runtime import Runtime, reindex, scan_all
from recd.errors import NotAllowedInState, NotFound, PermissionDenied, RecdError, UsageError
from recd.ports.records import RECD, Actor
from recd.service.holds import Holds
from recd.service.requests import Requests
from recd.service.sweep import Sweeper
from tests.estate import Estate
from tests.fakes import FakeClock
from tests.keys import raw, signed

ALICE = Actor("alice", 1001, admin=True)
BOB = Actor("bob", 1002, admin=True)
EVE = Actor("eve", 1003, admin=False)


@pytest.fixture
def keys() -> dict[str, Ed25519PrivateKey]:
    return {"jane": Ed25519PrivateKey.generate(), "mallory": Ed25519PrivateKey.generate()}


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock, keys: dict[str, Ed25519PrivateKey]) -> Estate:
    e = Estate(tmp_path, fake_clock)
    licences = dict(e.config.licences)
    licences["L3"] = Licence(
        "L3", "Three", parse_period("30d"), tmp_path / "l3.toml", "signature",
        (Agent("Jane Doe", "dpo@three.example", raw(keys["jane"])),),
    )  # fmt: skip
    licences["L2"] = replace(
        licences["L2"], agents=(Agent("Mal Lory", "m@two.example", raw(keys["mallory"])),)
    )
    e.configure(licences=licences)
    return e


@pytest.fixture
def rt(estate: Estate) -> Iterator[Runtime]:
    runtime = estate.runtime()
    yield runtime
    runtime.close()


def requests(estate: Estate, rt: Runtime) -> Requests:
    return Requests(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers)


def approved(estate: Estate, rt: Runtime) -> Requests:
    """The use cases, with REQ-1 (``document()``) registered by alice and approved by bob."""
    desk = requests(estate, rt)
    desk.register(document(), ALICE)
    desk.approve("REQ-1", BOB)
    return desk


def rid(relpath: str) -> str:
    return recording_id("pbx", relpath)


def document(request_id: str = "REQ-1", licence: str = "L1", **scope: Any) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "licence": licence,
        "requested_by": {"name": "Jane Doe", "email": "dpo@x.example", "role": "DPO"},
        "received": "2026-11-20T10:00:00Z",
        "reason": "Erasure requested by the data subject",
        "evidence": "letter 77",
        "scope": scope or {"all": True},
    }


def refusals(estate: Estate) -> list[dict[str, Any]]:
    return [e for e in estate.audit() if e["action"] == "request.refused"]


def test_two_person_request_from_registration_to_certificate(estate: Estate, rt: Runtime) -> None:
    a = estate.write("L1/a_c1.wav", age_days=1, data=b"audio-a")
    b = estate.write("L1/b_c1.wav", age_days=1, data=b"audio-bb")
    keep = estate.write("L1/k_c2.wav", age_days=1)
    scan_all(rt)
    ids = [rid("L1/a_c1.wav"), rid("L1/b_c1.wav")]
    desk = requests(estate, rt)
    stored, existing = desk.register(document(recordings=ids), ALICE)
    assert stored.state is RequestState.RECEIVED and not existing
    again, existing = desk.register(document(recordings=ids), ALICE)
    assert existing and again.id == "REQ-1"
    with pytest.raises(NotAllowedInState, match=r"not verified .state received"):
        desk.execute("REQ-1", ALICE)
    with pytest.raises(NotAllowedInState, match="alice registered request REQ-1 and cannot"):
        desk.approve("REQ-1", ALICE)
    with pytest.raises(PermissionDenied, match="eve is not in group recd-admin"):
        desk.approve("REQ-1", EVE)
    assert desk.approve("REQ-1", BOB).state is RequestState.VERIFIED
    stored, items = desk.preview("REQ-1")
    assert sorted(i.recording_id for i in items if i.outcome is ItemOutcome.PENDING) == sorted(ids)
    stored, items = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.COMPLETED
    assert not a.exists() and not b.exists() and keep.exists()
    cert = desk.certificate("REQ-1")
    data = json.loads(cert.text)
    assert data["summary"] == {
        "erased": 2, "held": 0, "failed": 0, "already_gone": 0, "bytes_erased": 15
    }  # fmt: skip
    shas = {e["id"]: e["sha256"] for e in data["erased"]}
    assert shas[rid("L1/a_c1.wav")] == hashlib.sha256(b"audio-a").hexdigest()
    assert data["verification"]["registered_by"] == "alice"
    assert data["verification"]["approved_by"] == "bob"
    last = [e for e in estate.audit() if e["action"] == "request.certificate"][-1]
    assert last["details"]["sha256"] == hashlib.sha256(cert.text.encode()).hexdigest()
    assert cert.seq == last["seq"]
    done = [e for e in estate.audit() if e["action"] == "erase.done"]
    assert {e["details"]["reason"] for e in done} == {"request:REQ-1"}
    assert sorted(e["seq"] for e in done) == sorted(e["audit_seq"] for e in data["erased"])
    # Re-running is safe: nothing more is erased, the certificate still lists both.
    stored, items = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.COMPLETED
    assert json.loads(desk.certificate("REQ-1").text)["summary"]["erased"] == 2


def test_signature_verified_request_and_every_signature_refusal(
    estate: Estate, rt: Runtime, keys: dict[str, Ed25519PrivateKey]
) -> None:
    estate.write("L3/s_c1.wav", age_days=1)
    scan_all(rt)
    desk = requests(estate, rt)
    with pytest.raises(NotAllowedInState, match="is not signed"):
        desk.register(document("R-UNSIGNED", "L3"), ALICE)
    with pytest.raises(NotAllowedInState, match="an agent of licence L2, not of L3"):
        desk.register(signed(document("R-OTHER", "L3"), keys["mallory"]), ALICE)
    tampered = signed(document("R-BAD", "L3"), keys["jane"]) | {"reason": "changed"}
    with pytest.raises(NotAllowedInState, match="does not match"):
        desk.register(tampered, ALICE)
    stranger = Ed25519PrivateKey.generate()
    with pytest.raises(NotAllowedInState, match="no licence lists"):
        desk.register(signed(document("R-STRANGER", "L3"), stranger), ALICE)
    stored, _ = desk.register(signed(document("R-OK", "L3"), keys["jane"]), EVE)
    assert stored.state is RequestState.VERIFIED
    assert stored.info.signed_by is not None and stored.info.signed_by.name == "Jane Doe"
    with pytest.raises(NotAllowedInState, match="is verified, not waiting"):
        desk.approve("R-OK", BOB)
    assert {e["subject"] for e in refusals(estate)} >= {"R-UNSIGNED", "R-OTHER", "R-BAD"}
    stored, _ = desk.execute("R-OK", EVE)
    assert stored.state is RequestState.COMPLETED
    assert json.loads(desk.certificate("R-OK").text)["verification"]["signed_by"]["email"] == (
        "dpo@three.example"
    )


def test_refusals_are_clear_and_audited(estate: Estate, rt: Runtime) -> None:
    estate.write("L2/x_c1.wav", age_days=1)
    scan_all(rt)
    desk = requests(estate, rt)
    desk.register(document("REQ-1"), ALICE)
    cases: list[tuple[Any, type[Exception], str]] = [
        (document(recordings=[]), UsageError, "^scope: empty"),
        (document("REQ-2", recordings=[rid("L2/x_c1.wav")]), NotAllowedInState,
         "belongs to L2, not to L1"),
        (document("REQ-3", "NOPE"), NotFound, "licence NOPE has no file in licences.d"),
        (document("REQ-1") | {"evidence": "other"}, NotAllowedInState,
         "already registered with different content"),
        (document("REQ-4", **{"from": "yesterday"}), UsageError, "^scope.from: "),
        (document("../etc/passwd"), UsageError, "^request_id: "),
        (document("REQ-5", call_ids=["a/b"]), UsageError, r"^scope.call_ids\[0\]: "),
        ("not an object", UsageError, "a JSON object expected"),
    ]  # fmt: skip
    for doc, kind, message in cases:
        with pytest.raises(kind, match=message):
            desk.register(doc, ALICE)
    assert len(refusals(estate)) == len(cases)
    assert all(e["actor"] == "alice" and e["details"]["uid"] == 1001 for e in refusals(estate))
    with pytest.raises(PermissionDenied, match="eve is not in group"):
        desk.register(document("REQ-6"), EVE)


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


def test_reject_and_dry_run(estate: Estate, rt: Runtime) -> None:
    desk = requests(estate, rt)
    desk.register(document(), ALICE)
    stored = desk.reject("REQ-1", "not the data subject", BOB)
    assert stored.state is RequestState.REJECTED
    with pytest.raises(NotAllowedInState, match="rejected by bob: not the data subject"):
        desk.execute("REQ-1", ALICE)
    with pytest.raises(NotAllowedInState, match="is rejected: only a request not yet run"):
        desk.reject("REQ-1", "again", BOB)
    estate.configure(mode="dry-run")
    desk = requests(estate, rt)
    desk.register(document("REQ-2"), ALICE)
    desk.approve("REQ-2", BOB)
    with pytest.raises(NotAllowedInState, match="dry-run mode"):
        desk.execute("REQ-2", ALICE)
    with pytest.raises(NotFound, match="no request NOPE"):
        desk.approve("NOPE", BOB)


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


def certificates(estate: Estate) -> list[dict[str, Any]]:
    return [e for e in estate.audit() if e["action"] == "request.certificate"]


def test_running_again_with_nothing_left_keeps_the_certificate(estate: Estate, rt: Runtime) -> None:
    """The customer's copy stays the one to check: no new file, no new audit entry, no run."""
    estate.write("L1/a_c1.wav", age_days=1)
    scan_all(rt)
    desk = approved(estate, rt)
    first, items = desk.execute("REQ-1", ALICE)
    cert = desk.certificate("REQ-1")
    audited = estate.audit()
    estate.clock.advance(3600)
    again, same = desk.execute("REQ-1", BOB)
    assert (again, same) == (first, items)
    assert rt.catalogue.request("REQ-1") == first  # not even its time of update
    assert desk.certificate("REQ-1") == cert
    assert cert.path.read_text() == cert.text
    assert estate.audit() == audited
    # A recording indexed later that the scope matches is erased by the next run, which
    # certifies it: a new certificate, audited.
    estate.write("L1/b_c1.wav", age_days=1)
    scan_all(rt)
    stored, items = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.COMPLETED
    assert [i.outcome for i in items] == [ItemOutcome.ERASED, ItemOutcome.ERASED]
    renewed = desk.certificate("REQ-1")
    assert renewed.sha256 != cert.sha256
    assert [e["details"]["sha256"] for e in certificates(estate)] == [cert.sha256, renewed.sha256]


def test_a_lost_certificate_is_written_again_by_a_run(estate: Estate, rt: Runtime) -> None:
    estate.write("L1/a_c1.wav", age_days=1)
    scan_all(rt)
    desk = approved(estate, rt)
    desk.execute("REQ-1", ALICE)
    cert = desk.certificate("REQ-1")
    cert.path.unlink()
    desk.execute("REQ-1", ALICE)
    assert desk.certificate("REQ-1").seq > cert.seq
    assert len(certificates(estate)) == 2


def test_a_partial_request_keeps_its_certificate_until_a_hold_changes(
    estate: Estate, rt: Runtime
) -> None:
    """Held by a hold: nothing changes while it holds. Released: the recording is kept for
    the grace, which the certificate must now say, so the next run renews it."""
    estate.write("L1/h_c1.wav", age_days=1)
    scan_all(rt)
    holds = Holds(estate.config, rt.catalogue, rt.audit, estate.clock)
    hold, _ = holds.place(Scope("L1"), case="C", reason="r", until=None, actor=BOB)
    desk = approved(estate, rt)
    stored, _ = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL
    audited = estate.audit()
    assert desk.execute("REQ-1", ALICE)[0] == stored
    assert estate.audit() == audited
    holds.release(hold.id, reason="settled", actor=BOB)
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and item.holds == ()
    assert [e["details"]["sha256"] for e in certificates(estate)][-1] == (
        desk.certificate("REQ-1").sha256
    )
    assert len(certificates(estate)) == 2


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


def test_refusals_name_times_to_the_second(estate: Estate, rt: Runtime) -> None:
    estate.clock.advance(0.25)  # 12:00:00.250000
    desk = approved(estate, rt)
    with pytest.raises(NotAllowedInState) as again:
        desk.approve("REQ-1", BOB)
    assert str(again.value) == (
        "request REQ-1 is verified, not waiting for approval (approved by bob at "
        "2026-11-23T12:00:00Z)"
    )
    with pytest.raises(NotAllowedInState) as reused:
        desk.register(document() | {"evidence": "another letter"}, ALICE)
    assert str(reused.value) == (
        "request id REQ-1 is already registered with different content (by alice at "
        "2026-11-23T12:00:00Z); a new request needs a new id"
    )
    stored = rt.catalogue.request("REQ-1")
    assert stored is not None
    assert stored.info.approved is not None
    assert (stored.info.registered.at, stored.info.approved.at) == (
        "2026-11-23T12:00:00.250000Z", "2026-11-23T12:00:00.250000Z",
    )  # fmt: skip


def test_an_all_request_says_so_in_its_audit_entries_and_certificate(
    estate: Estate, rt: Runtime
) -> None:
    """``"all": true`` is registered, audited and certified as such; its run needs the licence
    id typed back (``check_confirmed``), and a refusal is audited."""
    paths = [estate.write(f"L1/{n}_c1.wav", age_days=1) for n in range(3)]
    other = estate.write("L2/x_c1.wav", age_days=1)
    scan_all(rt)
    desk = approved(estate, rt)
    (registered,) = [e for e in estate.audit() if e["action"] == "request.registered"]
    assert registered["details"]["scope"] == {
        "recordings": [], "call_ids": [], "party": None, "from": None, "to": None, "all": True,
    }  # fmt: skip
    for confirm, message in [
        (None, "request REQ-1 erases every recording of licence L1"),
        ("L2", "'L2' is not the licence of request REQ-1"),
        ("l1", "'l1' is not the licence of request REQ-1"),
    ]:
        with pytest.raises(UsageError, match=f"^confirm_all: {message}"):
            desk.check_confirmed("REQ-1", confirm, BOB)
    assert [e["details"]["step"] for e in refusals(estate)] == ["execute"] * 3
    desk.check_confirmed("REQ-1", "L1", BOB)
    stored, _ = desk.execute("REQ-1", BOB)
    assert stored.state is RequestState.COMPLETED
    assert not any(p.exists() for p in paths) and other.exists()
    data = json.loads(desk.certificate("REQ-1").text)
    assert data["request"]["scope"] == {"all": True}
    assert data["summary"]["erased"] == 3
    desk.register(document("REQ-2", recordings=[rid("L1/0_c1.wav")]), ALICE)
    with pytest.raises(UsageError, match="REQ-2 is not for a whole licence"):
        desk.check_confirmed("REQ-2", "L1", BOB)
    desk.check_confirmed("REQ-2", None, BOB)


def test_a_scope_covering_the_whole_licence_is_refused_at_registration(
    estate: Estate, rt: Runtime
) -> None:
    """Judged against what is indexed now; the refusal is one line, audited, and names
    ``"all": true``. Requests registered before (an open range) still read and run."""
    for days in (1, 5, 9):
        estate.write(f"L1/{days}_c1.wav", age_days=days)
    scan_all(rt)
    desk = requests(estate, rt)
    now = estate.clock.now()
    whole = '"all": true'
    cases = [
        ({"from": "1970-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}, "scope: the time range"),
        ({"from": "2026-11-01T00:00:00Z"}, "scope.to: missing: "),
        ({"to": "2026-11-23T00:00:00Z"}, "scope.from: missing: "),
        ({"from": format_time(now - timedelta(days=9)), "to": "2026-11-22T12:00:01Z"},
         "scope: the time range matches every recording of licence L1 (all 3 indexed now)"),
    ]  # fmt: skip
    for n, (scope, message) in enumerate(cases):
        with pytest.raises(UsageError) as caught:
            desk.register(document(f"R-{n}", **scope), ALICE)
        assert str(caught.value).startswith(message) and whole in str(caught.value)
    assert [e["subject"] for e in refusals(estate)] == [f"R-{n}" for n in range(len(cases))]
    assert rt.catalogue.requests() == []
    # One recording left out: a request, not the whole licence.
    narrow = {"from": format_time(now - timedelta(days=8)), "to": "2100-01-01T00:00:00Z"}
    stored, _ = desk.register(document("R-NARROW", **narrow), ALICE)
    assert stored.state is RequestState.RECEIVED


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


# -- what a run meets on the way: files gone, changed, pinned, moved; holds and failures -------


def erase_entries(estate: Estate) -> list[dict[str, Any]]:
    return [e for e in estate.audit() if e["action"].startswith("erase.")]


def appended(path: Path) -> None:
    """What a writer does to a recording while recd works on it."""
    with path.open("ab") as f:
        f.write(b"+more")


def meanwhile(
    monkeypatch: pytest.MonkeyPatch, rt: Runtime, step: str, action: Callable[[], None]
) -> None:
    """Do ``action`` (what another process or an administrator does while a run is under way)
    once, just before the run's first call of the real eraser's ``step``: a race no real
    timing could show reliably."""
    eraser = rt.erasers["pbx"]
    real = getattr(eraser, step)
    todo = [action]

    def step_after(*args: Any, **kwargs: Any) -> Any:
        while todo:
            todo.pop()()
        return real(*args, **kwargs)

    monkeypatch.setattr(eraser, step, step_after)


def test_an_approval_is_refused_once_the_licence_verifies_by_signature(
    estate: Estate, rt: Runtime
) -> None:
    """Registered under two-person verification, then the licence file says ``signature``:
    a second administrator's approval no longer verifies the request."""
    desk = requests(estate, rt)
    desk.register(document(), ALICE)
    licences = dict(estate.config.licences)
    licences["L1"] = replace(licences["L1"], verification="signature")
    estate.configure(licences=licences)
    desk = requests(estate, rt)
    with pytest.raises(NotAllowedInState) as refused:
        desk.approve("REQ-1", BOB)
    assert str(refused.value) == (
        "licence L1 verifies requests by signature now; an approval does not verify this one "
        "(register a signed request)"
    )
    assert [(e["subject"], e["details"]["step"], e["actor"]) for e in refusals(estate)] == [
        ("REQ-1", "approve", "bob")
    ]
    stored = rt.catalogue.request("REQ-1")
    assert stored is not None and stored.state is RequestState.RECEIVED
    assert stored.info.approved is None


def test_a_rejection_needs_a_reason(estate: Estate, rt: Runtime) -> None:
    desk = requests(estate, rt)
    desk.register(document(), ALICE)
    for blank in ("", "  \t\n"):
        with pytest.raises(RequestInvalid, match=r"^reason: must not be empty$"):
            desk.reject("REQ-1", blank, BOB)
    stored = rt.catalogue.request("REQ-1")
    assert stored is not None and stored.state is RequestState.RECEIVED
    assert not [e for e in estate.audit() if e["action"] == "request.rejected"]


def test_a_recording_named_by_id_and_indexed_later_as_another_licence_is_not_erased(
    estate: Estate, rt: Runtime
) -> None:
    """Unknown at registration, so not refused then; once indexed it turns out to be L2's:
    a request for L1 never reaches it, and its certificate says why."""
    other = estate.write("L2/x_c1.wav", age_days=1)
    desk = requests(estate, rt)
    desk.register(document(recordings=[rid("L2/x_c1.wav")]), ALICE)
    desk.approve("REQ-1", BOB)
    scan_all(rt)
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and other.exists()
    assert (item.outcome, item.licence, item.location) == (
        ItemOutcome.FAILED, "L2", str(other),
    )  # fmt: skip
    assert item.note == "not erased: it belongs to L2, not to L1"
    assert erase_entries(estate) == []
    (skipped,) = json.loads(desk.certificate("REQ-1").text)["skipped"]
    assert (skipped["id"], skipped["reason"]) == (rid("L2/x_c1.wav"), item.note)


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


def test_a_file_deleted_since_the_scan_is_certified_gone_and_marked_missing(
    estate: Estate, rt: Runtime
) -> None:
    path = estate.write("L1/a_c1.wav", age_days=1)
    scan_all(rt)
    path.unlink()  # the catalogue still says present: no scan since
    desk = approved(estate, rt)
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.COMPLETED
    assert (item.outcome, item.note) == (ItemOutcome.GONE, "vanished before erasure")
    row = rt.catalogue.get(rid("L1/a_c1.wav"))
    assert row is not None and row.state is State.MISSING
    assert erase_entries(estate) == []
    assert json.loads(desk.certificate("REQ-1").text)["already_gone"][0]["note"] == (
        "vanished before erasure"
    )


def test_a_file_found_missing_between_batches_is_not_erased(
    estate: Estate, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch reads the catalogue again: what a scan between two batches found gone is
    certified gone, not opened."""
    monkeypatch.setattr("recd.service.requestruns.BATCH", 1)
    first = estate.write("L1/a_c1.wav", age_days=1)
    second = estate.write("L1/b_c1.wav", age_days=1)
    scan_all(rt)
    desk = approved(estate, rt)

    def scan_meanwhile() -> bool:
        second.unlink()
        scan_all(rt)
        return False

    stored, items = desk.execute("REQ-1", ALICE, should_stop=scan_meanwhile)
    assert stored.state is RequestState.COMPLETED and not first.exists()
    assert [(i.recording_id, i.outcome, i.note) for i in items] == [
        (rid("L1/a_c1.wav"), ItemOutcome.ERASED, None),
        (rid("L1/b_c1.wav"), ItemOutcome.GONE, "vanished before erasure"),
    ]
    assert {e["subject"] for e in erase_entries(estate)} == {rid("L1/a_c1.wav")}


def test_recordings_of_a_source_no_longer_configured_fail_and_stay(
    estate: Estate, rt: Runtime
) -> None:
    """The source was taken out of the configuration; its recordings are still catalogued.
    recd cannot erase them there, and says so instead of reporting them gone."""
    path = estate.write("L1/a_c1.wav", age_days=1)
    scan_all(rt)
    approved(estate, rt)
    estate.configure(sources=())
    desk = Requests(estate.config, rt.catalogue, rt.audit, estate.clock, {})
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and path.exists()
    assert (item.outcome, item.note) == (ItemOutcome.FAILED, "source pbx is not configured")
    assert item.location == "pbx:L1/a_c1.wav"
    assert erase_entries(estate) == []
    assert json.loads(desk.certificate("REQ-1").text)["summary"]["failed"] == 1


def test_a_file_rewritten_since_indexing_is_reindexed_then_erased_by_the_next_run(
    estate: Estate, rt: Runtime
) -> None:
    """Same name, same inode, other content: not the recording indexed, so not erased as it.
    The run audits why and re-indexes the file (without the hook, the catalogue keeps the old
    facts until a scan); the next run erases it and certifies the SHA-256 of what is there."""
    path = estate.write("L1/a_c1.wav", age_days=1, data=b"old audio")
    scan_all(rt)
    ino = path.stat().st_ino
    path.write_bytes(b"new audio")
    yesterday = (estate.clock.now() - timedelta(days=1, hours=1)).timestamp()
    os.utime(path, (yesterday, yesterday))
    assert path.stat().st_ino == ino
    approved(estate, rt)
    plain = requests(estate, rt)
    stored, (item,) = plain.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and path.read_bytes() == b"new audio"
    assert item.outcome is ItemOutcome.FAILED and item.note is not None
    assert item.note.startswith("not erased: changed since it was indexed (mtime ")
    (skipped,) = erase_entries(estate)
    assert (skipped["action"], skipped["subject"]) == ("erase.skipped", rid("L1/a_c1.wav"))
    assert skipped["details"]["reason"] == "request:REQ-1"
    assert f"not erased: {skipped['details']['skipped']}" == item.note
    row = rt.catalogue.get(rid("L1/a_c1.wav"))
    assert row is not None and row.mtime_ns != path.stat().st_mtime_ns  # not re-indexed
    desk = Requests(
        estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers,
        reindex=functools.partial(reindex, rt),
    )  # fmt: skip
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and path.exists()
    assert item.outcome is ItemOutcome.FAILED
    row = rt.catalogue.get(rid("L1/a_c1.wav"))
    assert row is not None and row.mtime_ns == path.stat().st_mtime_ns  # re-indexed
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.COMPLETED and not path.exists()
    assert item.sha256 == hashlib.sha256(b"new audio").hexdigest()


def test_a_hardlinked_recording_is_refused_and_left_in_place(
    estate: Estate, rt: Runtime, tmp_path: Path
) -> None:
    """A second name outside the root would keep the data whatever recd overwrites at one."""
    path = estate.write("L1/a_c1.wav", age_days=1, data=b"audio")
    (tmp_path / "kept.wav").hardlink_to(path)
    scan_all(rt)  # indexed with its two links
    desk = approved(estate, rt)
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and path.read_bytes() == b"audio"
    assert (item.outcome, item.note) == (ItemOutcome.FAILED, "not erased: has 2 hard links")
    assert [(e["action"], e["details"]["skipped"]) for e in erase_entries(estate)] == [
        ("erase.skipped", "has 2 hard links")
    ]


def test_a_file_written_to_while_it_is_hashed_is_not_erased(
    estate: Estate, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks of ``prepare`` passed, then a writer appended: the SHA-256 would not be of
    the file checked, so nothing is hashed, intended or erased."""
    path = estate.write("L1/a_c1.wav", age_days=1, data=b"audio")
    scan_all(rt)
    desk = approved(estate, rt)

    meanwhile(monkeypatch, rt, "digest", lambda: appended(path))
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and path.read_bytes() == b"audio+more"
    assert item.note == "not erased: changed since it was checked"
    assert [(e["action"], e["details"]["skipped"]) for e in erase_entries(estate)] == [
        ("erase.skipped", "changed since it was checked")
    ]


def test_a_hold_placed_during_the_run_wins_over_the_plan(
    estate: Estate, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = estate.write("L1/a_c1.wav", age_days=1)
    scan_all(rt)
    desk = approved(estate, rt)
    holds = Holds(estate.config, rt.catalogue, rt.audit, estate.clock)
    placed: list[str] = []

    def place() -> None:
        hold, _ = holds.place(Scope("L1"), case="C-7", reason="court", until=None, actor=BOB)
        placed.append(hold.id)

    meanwhile(monkeypatch, rt, "digest", place)
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and path.exists()
    assert (item.outcome, item.holds, item.note) == (
        ItemOutcome.HELD, tuple(placed), "a legal hold was placed during the run",
    )  # fmt: skip
    assert erase_entries(estate) == []  # not even an intent
    (skipped,) = json.loads(desk.certificate("REQ-1").text)["skipped"]
    assert (skipped["reason"], skipped["held_by"]) == ("legal hold", placed)


def test_a_file_changed_after_it_was_hashed_fails_its_erase_and_the_certificate_says_so(
    estate: Estate, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The certificate's SHA-256 must be of what was erased: a write between the hash and the
    overwrite stops the erase before a byte is written; ``erase.failed`` is audited and the
    certificate points at it."""
    path = estate.write("L1/a_c1.wav", age_days=1, data=b"audio")
    scan_all(rt)
    desk = approved(estate, rt)

    meanwhile(monkeypatch, rt, "erase_many", lambda: appended(path))
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and path.read_bytes() == b"audio+more"
    intent, failed = erase_entries(estate)
    assert (intent["action"], failed["action"]) == ("erase.intent", "erase.failed")
    assert failed["details"]["error"] == "changed since it was checked"
    assert (item.outcome, item.note, item.audit_seq, item.sha256) == (
        ItemOutcome.FAILED, "erase failed: changed since it was checked", failed["seq"], None,
    )  # fmt: skip
    data = json.loads(desk.certificate("REQ-1").text)
    assert data["erased"] == [] and data["summary"]["failed"] == 1
    (skipped,) = data["skipped"]
    assert (skipped["reason"], skipped["audit_seq"]) == (item.note, failed["seq"])


def test_a_swapped_recordings_root_is_not_erased_below(estate: Estate, rt: Runtime) -> None:
    """The root recd checked at start was moved away and another directory put at its path
    (with a file at the same name): neither file is touched, each item fails and is audited."""
    path = estate.write("L1/a_c1.wav", age_days=1, data=b"audio")
    scan_all(rt)
    desk = approved(estate, rt)
    moved = estate.base / "recordings.moved"
    estate.root.rename(moved)
    (estate.root / "L1").mkdir(parents=True)
    path.write_bytes(b"decoy")
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL
    assert (moved / "L1" / "a_c1.wav").read_bytes() == b"audio"
    assert path.read_bytes() == b"decoy"
    assert item.outcome is ItemOutcome.FAILED
    (skipped,) = erase_entries(estate)
    assert skipped["action"] == "erase.skipped"
    assert item.note == f"not erased: {skipped['details']['skipped']}"
    assert skipped["details"]["skipped"].startswith(
        f"{estate.root} is no longer the directory recd checked at start"
    ), skipped


def test_an_unlink_erase_is_certified_not_effective_with_its_reason(
    estate: Estate, rt: Runtime
) -> None:
    path = estate.write("L1/a_c1.wav", age_days=1)
    scan_all(rt)
    approved(estate, rt)
    estate.configure(erase=replace(estate.config.erase, method=EraseMethod.UNLINK))
    desk = requests(estate, rt)
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.COMPLETED and not path.exists()
    assert (item.method, item.effective) == ("unlink", False)
    (erased,) = json.loads(desk.certificate("REQ-1").text)["erased"]
    assert (erased["method"], erased["effective"], erased["ineffective_reason"]) == (
        "unlink", False, "method is unlink (no overwrite)",
    )  # fmt: skip
    assert "s3" not in erased


def test_an_altered_certificate_is_refused_and_the_next_run_writes_it_again(
    estate: Estate, rt: Runtime
) -> None:
    estate.write("L1/a_c1.wav", age_days=1)
    scan_all(rt)
    desk = approved(estate, rt)
    desk.execute("REQ-1", ALICE)
    cert = desk.certificate("REQ-1")
    cert.path.write_text(cert.text.replace('"erased": 1', '"erased": 2'))
    with pytest.raises(RecdError) as altered:
        desk.certificate("REQ-1")
    assert str(altered.value) == (
        f"{cert.path} does not match the digest audited in entry #{cert.seq} ({cert.sha256}): "
        "it was altered after recd wrote it"
    )
    desk.execute("REQ-1", ALICE)
    renewed = desk.certificate("REQ-1")
    assert renewed.seq > cert.seq
    assert json.loads(renewed.text)["summary"]["erased"] == 1
    assert [e["details"]["sha256"] for e in certificates(estate)][-1] == renewed.sha256


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
