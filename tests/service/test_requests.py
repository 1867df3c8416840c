"""Early-deletion requests through the service, the real catalogue, real files and audit log:
registration and every refusal, two-person and signature verification, execution with SHA-256
and the certificate, holds winning, re-runs and an interrupted run resuming."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recd.core.requests import RequestInvalid
from recd.core.requeststate import ItemOutcome, RequestState
from recd.core.times import format_time
from recd.daemon.runtime import Runtime, scan_all
from recd.errors import NotAllowedInState, NotFound, PermissionDenied, UsageError
from tests.estate import Estate
from tests.fakes import FakeClock
from tests.keys import signed
from tests.service.helpers import (
    ALICE,
    BOB,
    EVE,
    approved,
    document,
    keyed_estate,
    refusals,
    requests,
    rid,
)


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock, keys: dict[str, Ed25519PrivateKey]) -> Estate:
    return keyed_estate(tmp_path, fake_clock, keys)


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


# -- what a run meets on the way: files gone, changed, pinned, moved; holds and failures -------


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
