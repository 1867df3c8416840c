"""Requests and breakers survive a lost catalogue (issue 14): the service, the real catalogue,
real files and audit log. ``catalog.db`` is deleted between two runtimes; the next one's
rebuild (``recd.daemon.runtime.rebuilder``, as the daemon and ``recd --once`` run it) brings
back each
request with its approvals, items and certificate, and each breaker tripped or released."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from recd.cli.render.replies import Request
from recd.cli.render.requests import request_lines
from recd.core.audit import AuditDraft
from recd.core.model import recording_id
from recd.core.requests import parse_request, scope_json
from recd.core.requeststate import ItemOutcome, RequestState
from recd.core.safety import SafetySettings
from recd.daemon.admin.legal import request_json
from recd.daemon.once import release_breaker
from recd.daemon.runtime import Runtime, rebuilder, scan_all
from recd.errors import NotAllowedInState
from recd.ports.records import RECD, Actor
from recd.service.certificates import Certificate
from recd.service.rebuild import Rebuilt
from recd.service.requests import Requests
from tests.estate import Estate
from tests.fakes import FakeClock

ALICE = Actor("alice", 1001, admin=True)
BOB = Actor("bob", 1002, admin=True)


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    return Estate(tmp_path, fake_clock)


def rebuilt_runtime(estate: Estate) -> tuple[Runtime, Rebuilt]:
    """``catalog.db`` lost, a runtime opened on none, the log replayed and recorded, scanned."""
    (estate.base / "state" / "catalog.db").unlink()
    rt = estate.runtime()
    rebuilding = rebuilder(rt)
    restored = rebuilding.restore()
    assert restored is not None and restored.why == "missing"
    done = rebuilding.record()
    assert done is not None and done.why == "missing"
    scan_all(rt)
    return rt, done


@pytest.fixture
def lose() -> Iterator[list[Runtime]]:
    opened: list[Runtime] = []
    yield opened
    for rt in opened:
        rt.close()


def executed(estate: Estate) -> Certificate:
    """REQ-1 on L1/a.wav registered by ALICE, approved and run by BOB; its certificate."""
    estate.write("L1/a.wav", age_days=1)
    rt = estate.runtime()
    try:
        scan_all(rt)
        before = desk(estate, rt)
        before.register(document("REQ-1", "L1/a.wav"), ALICE)
        before.approve("REQ-1", BOB)
        before.execute("REQ-1", BOB)
        return before.certificate("REQ-1")
    finally:
        rt.close()


def desk(estate: Estate, rt: Runtime) -> Requests:
    return Requests(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers)


def document(request_id: str, *relpaths: str) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "licence": "L1",
        "requested_by": {"name": "Jane Doe", "email": "dpo@x.example", "role": "DPO"},
        "received": "2026-11-20T10:00:00Z",
        "reason": "Erasure requested by the data subject",
        "evidence": "letter 77",
        "scope": {"recordings": [estate_id(p) for p in relpaths]},
    }


def estate_id(relpath: str) -> str:
    return recording_id("pbx", relpath)


def rebuilt_entry(estate: Estate) -> dict[str, Any]:
    [entry] = [e for e in estate.audit() if e["action"] == "catalogue.rebuilt"]
    return dict(entry["details"])


def test_an_approved_request_runs_after_the_loss_with_its_approvals(
    estate: Estate, lose: list[Runtime]
) -> None:
    for name in ("a", "b", "keep"):
        estate.write(f"L1/{name}.wav", age_days=1)
    rt = estate.runtime()
    scan_all(rt)
    before = desk(estate, rt)
    registered, _ = before.register(document("REQ-1", "L1/a.wav", "L1/b.wav"), ALICE)
    approved = before.approve("REQ-1", BOB)
    rt.close()

    rt, done = rebuilt_runtime(estate)
    lose.append(rt)
    stored = rt.catalogue.request("REQ-1")
    assert stored is not None
    assert (stored.state, stored.document, stored.digest) == (
        RequestState.VERIFIED, registered.document, registered.digest,
    )  # fmt: skip
    assert stored.info == approved.info
    assert done.requests is not None and done.requests.problems == ()
    assert rebuilt_entry(estate) | {"problems": []} == rebuilt_entry(estate)
    assert (rebuilt_entry(estate)["requests"], rebuilt_entry(estate)["requests_verified"]) == (1, 1)

    after = desk(estate, rt)
    after.execute("REQ-1", BOB)
    cert = json.loads(after.certificate("REQ-1").text)
    assert cert["request"]["digest"] == registered.digest
    assert {k: cert["verification"][k] for k in ("registered_by", "registered_uid",
                                                 "approved_by", "approved_uid")} == {
        "registered_by": "alice", "registered_uid": 1001, "approved_by": "bob",
        "approved_uid": 1002,
    }  # fmt: skip
    assert sorted(e["id"] for e in cert["erased"]) == sorted(
        [estate_id("L1/a.wav"), estate_id("L1/b.wav")]
    )
    assert not (estate.root / "L1/a.wav").exists() and (estate.root / "L1/keep.wav").exists()


def test_an_executed_request_keeps_its_certificate_and_does_not_run_again(
    estate: Estate, lose: list[Runtime]
) -> None:
    estate.write("L1/a.wav", age_days=1)
    estate.write("L1/held.wav", age_days=1)
    rt = estate.runtime()
    scan_all(rt)
    before = desk(estate, rt)
    before.register(document("REQ-1", "L1/a.wav", "L1/gone.wav"), ALICE)
    before.approve("REQ-1", BOB)
    before.execute("REQ-1", BOB)
    certificate = before.certificate("REQ-1")
    items = rt.catalogue.items("REQ-1")
    rt.close()

    rt, _ = rebuilt_runtime(estate)
    lose.append(rt)
    stored = rt.catalogue.request("REQ-1")
    assert stored is not None and stored.state is RequestState.COMPLETED
    assert rt.catalogue.items("REQ-1") == items, "items differ after the rebuild"
    after = desk(estate, rt)
    assert after.certificate("REQ-1").sha256 == certificate.sha256
    count = len(estate.audit())
    after.execute("REQ-1", BOB)
    assert len(estate.audit()) == count, "a settled request ran again"
    assert rebuilt_entry(estate)["certificates"] == 1


def test_a_lost_certificate_is_reported_with_the_hash_the_log_keeps(
    estate: Estate, lose: list[Runtime]
) -> None:
    certificate = executed(estate)
    certificate.path.unlink()

    rt, _ = rebuilt_runtime(estate)
    lose.append(rt)
    [problem] = rebuilt_entry(estate)["problems"]
    assert problem.startswith(f"request REQ-1: certificate {certificate.path} is lost")
    assert f"the audit log keeps its SHA-256 {certificate.sha256} (entry #{certificate.seq})" in (
        problem
    )
    assert rebuilt_entry(estate)["certificates"] == 0


def test_an_altered_certificate_is_reported_and_left_where_it_is(
    estate: Estate, lose: list[Runtime]
) -> None:
    certificate = executed(estate)
    altered = certificate.path.read_bytes().replace(b"completed", b"completeD")
    certificate.path.write_bytes(altered)

    rt, _ = rebuilt_runtime(estate)
    lose.append(rt)
    [problem] = rebuilt_entry(estate)["problems"]
    assert problem == (
        f"request REQ-1: certificate {certificate.path} does not match the SHA-256 "
        f"{certificate.sha256} audited in entry #{certificate.seq}: it was altered after recd "
        "wrote it"
    )
    assert rebuilt_entry(estate)["certificates"] == 0
    assert certificate.path.read_bytes() == altered, "the evidence was touched"
    stored = rt.catalogue.request("REQ-1")
    assert stored is not None and stored.state is RequestState.COMPLETED


def test_a_request_an_older_log_kept_without_its_document_runs_once_it_is_given_again(
    estate: Estate, lose: list[Runtime]
) -> None:
    estate.write("L1/a.wav", age_days=1)
    doc = document("REQ-1", "L1/a.wav")
    request = parse_request(doc)
    old = {  # request.registered as an older recd wrote it: no document
        "licence": "L1", "digest": request.digest, "verification": "two-person",
        "state": "received", "requested_by": doc["requested_by"], "received": doc["received"],
        "evidence": doc["evidence"], "scope": scope_json(request.scope), "uid": 1001,
    }  # fmt: skip
    rt = estate.runtime()
    now = estate.clock.now()
    approval = AuditDraft("request.approved", "REQ-1", {"uid": 1002}, "bob")
    rt.audit.append([AuditDraft("request.registered", "REQ-1", old, "alice"), approval], now)
    rt.close()

    rt, _ = rebuilt_runtime(estate)
    lose.append(rt)
    stored = rt.catalogue.request("REQ-1")
    assert stored is not None and stored.info.document_missing
    assert (stored.state, stored.digest) == (RequestState.VERIFIED, request.digest)
    [problem] = rebuilt_entry(estate)["problems"]
    assert "REQ-1: the entry holds no request document (an older recd wrote it)" in problem
    after = desk(estate, rt)
    with pytest.raises(NotAllowedInState, match=r"register its file again \(recctl request add"):
        after.execute("REQ-1", BOB)
    assert (estate.root / "L1/a.wav").exists()
    shown = request_json(stored, [])
    assert shown["document_missing"] is True
    [line] = [x for x in request_lines(cast(Request, shown), []) if x.startswith("document:")]
    assert line.endswith("not in the audit log (an older recd's): it does not run until its "
                         "file is registered again (recctl request add --file)")  # fmt: skip
    restored = replace(stored, info=replace(stored.info, document_missing=False))
    assert "document_missing" not in request_json(restored, [])
    with pytest.raises(NotAllowedInState, match="register its file again, as it was"):
        after.register(doc | {"reason": "another"}, ALICE)
    again, existing = after.register(doc, ALICE)
    assert existing and again.document == doc and not again.info.document_missing
    assert estate.audit()[-1]["action"] == "request.document"
    after.execute("REQ-1", BOB)
    assert not (estate.root / "L1/a.wav").exists()
    assert [i.outcome for i in rt.catalogue.items("REQ-1")] == [ItemOutcome.ERASED]


def test_an_interrupted_run_without_its_document_waits_instead_of_resuming(
    estate: Estate, lose: list[Runtime]
) -> None:
    estate.write("L1/a.wav", age_days=1)
    doc = document("REQ-1", "L1/a.wav")
    request = parse_request(doc)
    old = {"licence": "L1", "digest": request.digest, "verification": "two-person",
           "state": "received", "scope": scope_json(request.scope), "uid": 1001}  # fmt: skip
    rt = estate.runtime()
    rt.audit.append([
        AuditDraft("request.registered", "REQ-1", old, "alice"),
        AuditDraft("request.approved", "REQ-1", {"uid": 1002}, "bob"),
        AuditDraft("request.started", "REQ-1", {"run": 1, "uid": 1002}, "bob"),
    ], estate.clock.now())  # fmt: skip
    rt.close()

    rt, _ = rebuilt_runtime(estate)
    lose.append(rt)
    stored = rt.catalogue.request("REQ-1")
    assert stored is not None and stored.state is RequestState.EXECUTING
    after = desk(estate, rt)
    assert after.resumable() == []
    assert (estate.root / "L1/a.wav").exists()
    after.register(doc, ALICE)
    assert [r.id for r in after.resumable()] == ["REQ-1"]
    after.execute("REQ-1", RECD)  # as the daemon resumes it at start
    assert not (estate.root / "L1/a.wav").exists()


# --- breakers ------------------------------------------------------------------------------------

BREAKER = SafetySettings(max_due_fraction=0.5, min_breaker_count=2)


def tripped_estate(estate: Estate) -> None:
    """Three due recordings of L1 trip its breaker in a sweep."""
    estate.configure(safety=BREAKER)
    for i in range(3):
        estate.write(f"L1/old{i}.wav", age_days=31)
    assert estate.sweep().licences["L1"].breaker


def due_left(estate: Estate) -> int:
    return sum(1 for i in range(3) if (estate.root / f"L1/old{i}.wav").exists())


def test_a_tripped_breaker_stays_tripped_after_the_loss(estate: Estate) -> None:
    tripped_estate(estate)
    for i in range(4):  # 3 due of 7: a fresh catalogue alone would not trip
        estate.write(f"L1/new{i}.wav", age_days=1)
    (estate.base / "state" / "catalog.db").unlink()
    estate.once()
    assert due_left(estate) == 3, "the loss released the breaker"
    assert rebuilt_entry(estate)["breakers_tripped"] == 1


def test_a_breaker_released_before_the_loss_stays_released(estate: Estate) -> None:
    tripped_estate(estate)
    release_breaker(estate.config, estate.clock, "L1", "bob")
    (estate.base / "state" / "catalog.db").unlink()
    estate.once()
    assert due_left(estate) == 0, "the release was lost with the catalogue"
    assert estate.actions("breaker.")[-1] == ("breaker.rearmed", "L1")


def test_a_breaker_rearmed_before_the_loss_trips_again(estate: Estate) -> None:
    tripped_estate(estate)
    release_breaker(estate.config, estate.clock, "L1", "bob")
    assert estate.sweep().erased == 3
    for i in range(3):
        estate.write(f"L1/old{i}.wav", age_days=31)
    (estate.base / "state" / "catalog.db").unlink()
    estate.once()
    assert due_left(estate) == 3, "a release was used twice"
    assert estate.actions("breaker.")[-1] == ("breaker.tripped", "L1")


def test_a_catalogue_restored_from_before_a_release_gets_the_release_back(
    estate: Estate,
) -> None:
    """The catalogue copied while the breaker was tripped comes back behind the log: the
    replay since its mark releases the breaker it still holds tripped."""
    estate.configure(safety=BREAKER)
    for i in range(3):
        estate.write(f"L1/old{i}.wav", age_days=31)
    estate.once()  # as recd --once: tripped, and the catalogue marked at the log's end
    assert due_left(estate) == 3
    state = estate.base / "state"
    old = (state / "catalog.db").read_bytes()
    assert not (state / "catalog.db-wal").exists(), "the copy would miss the write-ahead log"
    release_breaker(estate.config, estate.clock, "L1", "bob")
    (state / "catalog.db").write_bytes(old)
    estate.once()
    assert rebuilt_entry(estate)["why"] == "behind"
    assert due_left(estate) == 0, "the stale catalogue's breaker outlived its release"
    assert estate.actions("breaker.")[-1] == ("breaker.rearmed", "L1")


def test_a_run_whose_log_holds_one_batch_intent_is_rebuilt_item_by_item(
    estate: Estate, lose: list[Runtime]
) -> None:
    """The run's erasures are announced by one batch ``erase.intent`` (SPEC 7), whose subject
    is the batch, not a recording: the rebuild takes each item from its own outcome entry and
    makes no item of the batch."""
    for name in ("a", "b"):
        estate.write(f"L1/{name}.wav", age_days=1)
    rt = estate.runtime()
    scan_all(rt)
    before = desk(estate, rt)
    before.register(document("REQ-1", "L1/a.wav", "L1/b.wav"), ALICE)
    before.approve("REQ-1", BOB)
    before.execute("REQ-1", BOB)
    items = rt.catalogue.items("REQ-1")
    rt.close()
    [intent] = [e for e in estate.audit() if e["action"] == "erase.intent"]
    assert intent["details"]["reason"] == "request:REQ-1"
    ids = {estate_id("L1/a.wav"), estate_id("L1/b.wav")}
    assert {r["id"] for r in intent["details"]["recordings"]} == ids

    rt, _ = rebuilt_runtime(estate)
    lose.append(rt)
    assert rt.catalogue.items("REQ-1") == items, "items differ after the rebuild"
    assert {i.recording_id for i in items} == ids
    assert all(i.outcome is ItemOutcome.ERASED for i in items)
