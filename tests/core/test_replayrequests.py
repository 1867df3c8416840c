"""Requests and breakers an audit log records, replayed from its entries alone (issue 14)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from recd.core.replaybreakers import replay_breakers
from recd.core.replayrequests import (
    HELD_NOTE,
    document_digest,
    replay_decisions,
    replay_requests,
)
from recd.core.requestinfo import CertificateRef, Rejection, Step
from recd.core.requeststate import ItemOutcome, RequestItem
from recd.core.times import format_time
from tests.core.helpers import R1, R2, R3, R4, Entry, at, log, released, retention, tripped

SIGNED = {"name": "Jane Doe", "email": "dpo@three.example", "key": "ed25519:AAAA"}


def document(rid: str, licence: str = "L1") -> dict[str, Any]:
    return {
        "request_id": rid,
        "licence": licence,
        "requested_by": {"name": "Jane Doe", "email": "dpo@three.example", "role": "DPO"},
        "received": "2026-10-20T10:00:00Z",
        "reason": "Erasure requested by the data subject",
        "evidence": "letter 77",
        "scope": {"recordings": [R1, R2, R3, R4]},
    }


def registered(rid: str, *, signed: bool = False, whole: bool = True, **extra: Any) -> Entry:
    doc = document(rid)
    details: dict[str, Any] = {
        "licence": "L1",
        "digest": document_digest(doc),
        "verification": "signature" if signed else "two-person",
        "state": "verified" if signed else "received",
        "requested_by": doc["requested_by"],
        "received": doc["received"],
        "evidence": doc["evidence"],
        "scope": doc["scope"],
        "uid": 1000,
    }
    if signed:
        details["signed_by"] = SIGNED
    if whole:
        details["document"] = doc
    return ("request.registered", rid, details | extra, "alice")


def approved(rid: str, uid: int | None = 1001, actor: str = "bob") -> Entry:
    details = {"registered_by": "alice"} | ({} if uid is None else {"uid": uid})
    return ("request.approved", rid, details, actor)


def started(rid: str, run: int = 1) -> Entry:
    return ("request.started", rid, {"run": run, "uid": 1001}, "bob")


def erased(rid: str, rec: str, **extra: Any) -> Entry:
    details = {"location": f"/srv/rec/L1/{rec}.wav", "licence": "L1", "size": 4096,
               "reason": f"request:{rid}", "sha256": "ab" * 32, "method": "overwrite",
               "effective": True, **extra}  # fmt: skip
    return ("erase.done", rec, details, "recd")


def executed(rid: str, state: str = "completed", **extra: Any) -> Entry:
    details = {"state": state, "erased": 2, "held": 0, "failed": 0, "gone": 0, "pending": 0,
               "uid": 1001, **extra}  # fmt: skip
    return ("request.executed", rid, details, "bob")


def certificate(rid: str, sha256: str = "cd" * 32) -> Entry:
    details = {"sha256": sha256, "path": f"/var/lib/recd/certificates/{rid}.json",
               "state": "completed", "erased": 2}  # fmt: skip
    return ("request.certificate", rid, details, "recd")


# --- requests ----------------------------------------------------------------------------------


def test_a_signed_request_comes_back_verified_with_its_document_and_signer() -> None:
    replayed = replay_requests(log(registered("REQ-1", signed=True)), {})
    record = replayed.requests["REQ-1"]
    assert (record.licence, record.state, record.document) == ("L1", "verified", document("REQ-1"))
    assert record.digest == document_digest(document("REQ-1"))
    assert record.info.to_json() == {
        "verification": "signature", "registered_by": "alice", "registered_uid": 1000,
        "registered_at": format_time(at(1)), "registered_seq": 1, "signed_by": SIGNED,
    }  # fmt: skip
    assert (record.updated, record.items, replayed.problems) == (at(1), {}, ())


def test_a_two_person_request_comes_back_with_its_approval() -> None:
    record = replay_requests(log(registered("REQ-1"), approved("REQ-1")), {}).requests["REQ-1"]
    assert record.state == "verified"
    assert record.info.approved == Step("bob", 1001, format_time(at(2)), 2)


def test_an_approval_that_cannot_be_rebuilt_leaves_the_request_unrunnable() -> None:
    for approval in (approved("REQ-1", uid=None), approved("REQ-1", uid=1000, actor="alice")):
        replayed = replay_requests(log(registered("REQ-1"), approval), {})
        assert replayed.requests["REQ-1"].state == "received"
        assert "approved_by" not in replayed.requests["REQ-1"].info.to_json()
        [problem] = replayed.problems
        assert problem.startswith("seq 2: request REQ-1: ") and "received" in problem


def test_a_verified_registration_without_its_signature_needs_an_approval() -> None:
    entry = registered("REQ-1", signed=True)
    del entry[2]["signed_by"]  # type: ignore[attr-defined]
    replayed = replay_requests(log(entry), {})
    assert replayed.requests["REQ-1"].state == "received"
    assert "names no signature" in replayed.problems[0]


def test_an_older_entry_without_the_document_keeps_what_it_has_and_waits_for_the_file() -> None:
    replayed = replay_requests(log(registered("REQ-1", whole=False), approved("REQ-1")), {})
    record = replayed.requests["REQ-1"]
    assert record.state == "verified" and record.info.to_json()["document_missing"] is True
    assert "reason" not in record.document
    assert record.document["scope"] == document("REQ-1")["scope"]
    assert record.digest == document_digest(document("REQ-1")), "the audited digest is kept"
    assert "holds no request document (an older recd wrote it)" in replayed.problems[0]

    wrong = document("REQ-1") | {"reason": "something else"}
    given_again = replay_requests(
        log(registered("REQ-1", whole=False), approved("REQ-1"),
            ("request.document", "REQ-1", {"document": wrong}, "carol"),
            ("request.document", "REQ-1", {"document": document("REQ-1")}, "carol")),
        {},
    )  # fmt: skip
    record = given_again.requests["REQ-1"]
    assert record.document == document("REQ-1") and "document_missing" not in record.info.to_json()
    problem = given_again.problems[1]
    assert problem.startswith("seq 3: request REQ-1: the document given again does not match")


def test_a_document_that_does_not_match_its_digest_is_not_trusted() -> None:
    entry = registered("REQ-1", signed=True)
    entry[2]["document"]["reason"] = "changed"
    replayed = replay_requests(log(entry), {})
    assert replayed.requests["REQ-1"].info.to_json()["document_missing"] is True
    assert "does not match its digest" in replayed.problems[0]


def test_a_rejection_keeps_who_and_why() -> None:
    rejected = ("request.rejected", "REQ-1", {"reason": "not the subject", "uid": 1001}, "bob")
    record = replay_requests(log(registered("REQ-1"), rejected), {}).requests["REQ-1"]
    assert record.state == "rejected"
    assert record.info.rejected == Rejection("bob", 1001, format_time(at(2)), "not the subject", 2)


def test_a_run_comes_back_with_its_items_and_certificate() -> None:
    entries = log(
        registered("REQ-1", signed=True),
        started("REQ-1"),
        erased("REQ-1", R1),
        ("erase.failed", R2, {"location": "/srv/rec/L1/b.wav", "licence": "L1", "size": 9,
                              "reason": "request:REQ-1", "error": "I/O error"}, "recd"),
        erased("REQ-OTHER", R4),  # another request's, never registered here: ignored
        retention(),  # a sweep's erase: no request's
        executed("REQ-1", "partial", held_by={R3: ["H-0001"]}, gone_items={R4: "missing"}),
        certificate("REQ-1"),
    )  # fmt: skip
    replayed = replay_requests(entries, {})
    record = replayed.requests["REQ-1"]
    info = record.info
    assert (record.state, info.runs, info.started_seq) == ("partial", 1, 2)
    assert (info.executed_seq, info.executed_at) == (7, format_time(at(7)))
    path = "/var/lib/recd/certificates/REQ-1.json"
    assert info.certificate == CertificateRef(path, "cd" * 32, 8)
    assert record.items == {
        R1: RequestItem(R1, ItemOutcome.ERASED, f"/srv/rec/L1/{R1}.wav", "L1", 4096, "ab" * 32,
                       "overwrite", True, None, at(3), 3),
        R2: RequestItem(R2, ItemOutcome.FAILED, "/srv/rec/L1/b.wav", "L1", 9, audit_seq=4,
                       note="erase failed: I/O error"),
        R3: RequestItem(R3, ItemOutcome.HELD, holds=("H-0001",), note=HELD_NOTE),
        R4: RequestItem(R4, ItemOutcome.GONE, note="missing"),
    }  # fmt: skip
    assert replayed.problems == ()


def test_a_path_that_is_not_utf8_comes_back_exact() -> None:
    raw = b"/srv/rec/L1/caf\xe9.wav"
    step = erased("REQ-1", R1, location="/srv/rec/L1/caf\\xe9.wav", location_bytes=raw.hex())
    entries = log(registered("REQ-1", signed=True), started("REQ-1"), step)
    item = replay_requests(entries, {}).requests["REQ-1"].items[R1]
    assert item.location == raw.decode("utf-8", "surrogateescape")


def test_a_run_of_a_request_never_shown_verified_does_not_make_it_runnable() -> None:
    entries = log(registered("REQ-1"), started("REQ-1"), erased("REQ-1", R1), executed("REQ-1"))
    replayed = replay_requests(entries, {})
    record = replayed.requests["REQ-1"]
    assert record.state == "received" and record.items[R1].outcome == "erased"
    assert "a run started while received" in replayed.problems[0]


def test_steps_of_a_request_the_log_never_registered_are_reported() -> None:
    replayed = replay_requests(log(approved("REQ-9"), certificate("REQ-9")), {})
    assert replayed.requests == {}
    assert [p.split(",")[0] for p in replayed.problems] == [
        "seq 1: request.approved of request REQ-9", "seq 2: request.certificate of request REQ-9",
    ]  # fmt: skip


# --- one go, in slices, twice ------------------------------------------------------------------

RIDS = ("REQ-1", "REQ-2")
RECS = (R1, R2, R3)


def _steps() -> st.SearchStrategy[Entry]:
    rid, rec = st.sampled_from(RIDS), st.sampled_from(RECS)
    return st.one_of(
        st.builds(lambda r, s, w: registered(r, signed=s, whole=w), rid, st.booleans(),
                  st.booleans()),
        st.builds(lambda r, u: approved(r, uid=u), rid, st.sampled_from([None, 1000, 1001])),
        st.builds(lambda r: ("request.rejected", r, {"reason": "no", "uid": 1001}, "bob"), rid),
        st.builds(started, rid, st.integers(1, 3)),
        st.builds(erased, rid, rec),
        st.builds(lambda r, c: ("erase.skipped", c, {"reason": f"request:{r}",
                                                     "skipped": "no"}, "recd"), rid, rec),
        st.builds(lambda r, s, c: executed(r, s, held_by={c: ["H-0001"]},
                                           failed_items={R3: "x"}),
                  rid, st.sampled_from(["completed", "partial"]), rec),
        st.builds(certificate, rid, st.sampled_from(["aa" * 32, "bb" * 32])),
        st.builds(lambda r: ("request.document", r, {"document": document(r)}, "carol"), rid),
        st.builds(tripped, st.sampled_from(["L1", "L2"])),
        st.builds(released, st.sampled_from(["L1", "L2"])),
        st.builds(lambda b: ("breaker.rearmed", b, {}, "recd"), st.sampled_from(["L1", "L2"])),
        st.builds(retention, st.sampled_from(["L1", "L2"])),
    )  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(_steps(), max_size=25), st.data())
def test_replaying_in_slices_or_twice_is_replaying_once(steps: list[Entry], data: Any) -> None:
    entries = log(*steps)
    cut = data.draw(st.integers(0, len(entries)))
    once = replay_requests(entries, {})
    sliced = replay_requests(entries[cut:], replay_requests(entries[:cut], {}).requests)
    assert sliced.requests == once.requests
    assert replay_requests(entries, once.requests).requests == once.requests, "not idempotent"
    assert replay_requests(entries[:cut], once.requests).requests == once.requests
    breakers = replay_breakers(entries, {})
    halves = replay_breakers(entries[cut:], replay_breakers(entries[:cut], {}).breakers)
    assert halves.breakers == breakers.breakers
    assert replay_breakers(entries, breakers.breakers).breakers == breakers.breakers
    assert replay_breakers(entries[:cut], breakers.breakers).breakers == breakers.breakers
    assert replay_decisions(entries, {}, {}) == (once, breakers), "one reading differs"
    for record in once.requests.values():
        if record.state in ("verified", "executing", "completed", "partial"):
            shown = record.info.approved or record.info.signed_by
            assert shown is not None, f"{record.id} runnable without a verification the log shows"


# --- entries a replay cannot use: reported, never a traceback, never more than the log shows ---


def test_a_registration_without_its_licence_or_digest_is_reported_and_not_rebuilt() -> None:
    no_licence = registered("REQ-1", licence="")
    no_digest = registered("REQ-2", digest=None)
    no_id: Entry = ("request.registered", "", {**no_licence[2], "licence": "L1"}, "alice")
    replayed = replay_requests(log(no_licence, no_digest, no_id, approved("REQ-1")), {})
    assert replayed.requests == {}
    assert replayed.problems[:3] == tuple(
        f"seq {n}: request.registered names no request, licence or digest; ignored"
        for n in (1, 2, 3)
    )
    assert replayed.problems[3].startswith("seq 4: request.approved of request REQ-1, never ")


def test_a_registration_in_a_state_no_recd_registers_is_rebuilt_received() -> None:
    replayed = replay_requests(log(registered("REQ-1", state="completed")), {})
    assert replayed.requests["REQ-1"].state == "received", "never runnable without approval"
    assert replayed.problems == (
        "seq 1: request REQ-1: registered in state 'completed'; rebuilt as received",
    )


def test_a_document_that_cannot_be_digested_is_not_trusted() -> None:
    [entry] = log(registered("REQ-1", signed=True))
    details = dict(entry.details)
    details["document"] = document("REQ-1") | {"reason": "caf\ud800"}  # a lone surrogate
    replayed = replay_requests([replace(entry, details=details)], {})
    record = replayed.requests["REQ-1"]
    assert record.info.to_json()["document_missing"] is True
    assert "reason" not in record.document
    assert "does not match its digest" in replayed.problems[0]


def test_a_run_executed_in_a_state_no_recd_writes_is_rebuilt_partial() -> None:
    entries = log(registered("REQ-1", signed=True), started("REQ-1"), erased("REQ-1", R1),
                  executed("REQ-1", "done"))  # fmt: skip
    replayed = replay_requests(entries, {})
    record = replayed.requests["REQ-1"]
    assert record.state == "partial", "a run the log does not show complete is not complete"
    assert record.items[R1].outcome == "erased"
    assert replayed.problems == (
        "seq 4: request REQ-1: executed in state 'done'; rebuilt as partial",
    )


def test_a_certificate_entry_without_its_hash_or_path_is_ignored() -> None:
    broken = certificate("REQ-1")
    del broken[2]["sha256"]  # type: ignore[attr-defined]
    entries = log(registered("REQ-1", signed=True), started("REQ-1"), executed("REQ-1"), broken)
    replayed = replay_requests(entries, {})
    record = replayed.requests["REQ-1"]
    assert record.state == "completed" and "certificate" not in record.info.to_json()
    assert replayed.problems == (
        "seq 4: request REQ-1: the certificate entry has no sha256 or path; ignored",
    )


def test_an_erased_item_stays_erased_whatever_a_later_entry_says() -> None:
    failed = ("erase.failed", R1, {"reason": "request:REQ-1", "error": "I/O error"}, "recd")
    entries = log(registered("REQ-1", signed=True), started("REQ-1"), erased("REQ-1", R1), failed)
    item = replay_requests(entries, {}).requests["REQ-1"].items[R1]
    assert (item.outcome, item.audit_seq) == ("erased", 3)


def test_an_object_erase_keeps_its_bucket_and_versions() -> None:
    s3 = {"bucket": "calls", "key": "L1/a.wav", "versions": 2, "deleted_versions": 2,
          "deleted_delete_markers": 0, "confirmed": True}  # fmt: skip
    entries = log(registered("REQ-1", signed=True), started("REQ-1"), erased("REQ-1", R1, **s3))
    item = replay_requests(entries, {}).requests["REQ-1"].items[R1]
    assert item.s3 == s3


def test_a_location_whose_bytes_are_not_hex_falls_back_to_its_text() -> None:
    step = erased("REQ-1", R1, location_bytes="not hex")
    entries = log(registered("REQ-1", signed=True), started("REQ-1"), step)
    item = replay_requests(entries, {}).requests["REQ-1"].items[R1]
    assert item.location == f"/srv/rec/L1/{R1}.wav"
