"""RequestInfo at the JSON boundary: the catalogue's stored keys read and written unchanged."""

from __future__ import annotations

import json
from typing import Any

import pytest

from recd.core.requestinfo import CertificateRef, Rejection, RequestInfo, Step
from recd.core.signatures import SignedBy

T1, T2, T3 = (f"2026-11-01T09:0{n}:00.000000Z" for n in (1, 2, 3))
SIGNER = {"name": "Jane Doe", "email": "dpo@acme.example", "key": "ed25519:AAAA"}

#: Rows as recd wrote them before the info was typed: each situation's exact keys.
WRITTEN: list[dict[str, Any]] = [
    # registered, its audit entry not yet written
    {"verification": "two-person", "registered_by": "alice", "registered_uid": 1000,
     "registered_at": T1},
    # signed, run twice, certificate written
    {"verification": "signature", "registered_by": "alice", "registered_uid": 1000,
     "registered_at": T1, "registered_seq": 4, "signed_by": SIGNER, "runs": 2,
     "run_offset": 812, "started_seq": 9, "executed_at": T3, "executed_seq": 12,
     "certificate": {"path": "/var/lib/recd/certificates/R.json", "sha256": "cd" * 32,
                     "seq": 13}},
    # approved, then (by a rebuild from an older log) without its document
    {"verification": "two-person", "registered_by": "alice", "registered_uid": None,
     "registered_at": T1, "registered_seq": 1, "approved_by": "bob", "approved_uid": 1001,
     "approved_at": T2, "approved_seq": 2, "document_missing": True},
    # rejected (a rebuild keeps an unknown uid as null)
    {"verification": "two-person", "registered_by": "alice", "registered_uid": 1000,
     "registered_at": T1, "registered_seq": 1, "rejected_by": "bob", "rejected_uid": None,
     "rejected_at": T2, "rejected_reason": "not the subject", "rejected_seq": 2},
]  # fmt: skip


@pytest.mark.parametrize("row", WRITTEN)
def test_a_stored_row_is_written_back_byte_for_byte(row: dict[str, Any]) -> None:
    text = json.dumps(row, sort_keys=True)
    info = RequestInfo.from_json(json.loads(text))
    assert json.dumps(info.to_json(), sort_keys=True) == text


def test_the_typed_fields_are_what_the_row_says() -> None:
    signed = RequestInfo.from_json(WRITTEN[1])
    assert signed.registered == Step("alice", 1000, T1, 4)
    assert signed.signed_by == SignedBy("Jane Doe", "dpo@acme.example", "ed25519:AAAA")
    assert signed.certificate == CertificateRef("/var/lib/recd/certificates/R.json", "cd" * 32, 13)
    assert (signed.runs, signed.run_offset, signed.approved, signed.rejected) == (
        2,
        812,
        None,
        None,
    )
    assert signed.last_step == 13
    rejected = RequestInfo.from_json(WRITTEN[3])
    assert rejected.rejected == Rejection("bob", None, T2, "not the subject", 2)
    assert not rejected.document_missing and RequestInfo.from_json(WRITTEN[2]).document_missing


def test_last_step_is_the_highest_seq_of_any_step() -> None:
    info = RequestInfo("two-person", Step("alice", 1000, T1, None))
    assert info.last_step == 0
    approved = RequestInfo.from_json(WRITTEN[2])
    assert approved.last_step == 2
