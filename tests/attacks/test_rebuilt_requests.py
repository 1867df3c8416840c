"""Attack: a lost catalogue rebuilt from an audit log that claims more than it shows.

The catalogue is rebuilt from the audit log alone (issue 14), so the log's request entries
decide what may run. A log (an older recd's, or one written by hand and chained again) that
says a two-person request is verified without the approval that verifies it, approves it by
the administrator who registered it, or carries a request document that does not match its
audited digest, must not give a rebuilt catalogue a request that erases anything. Real files,
the real catalogue and audit log; ``recd --once`` rebuilds, as at any start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recd.core.audit import AuditDraft
from recd.core.model import recording_id
from recd.core.requests import parse_request, scope_json
from recd.core.requeststate import RequestState
from recd.errors import NotAllowedInState
from recd.ports.records import Actor
from recd.service.requests import Requests
from tests.estate import Estate
from tests.fakes import FakeClock

BOB = Actor("bob", 1002, admin=True)


def document() -> dict[str, Any]:
    return {
        "request_id": "REQ-1",
        "licence": "L1",
        "requested_by": {"name": "Jane Doe", "email": "dpo@x.example", "role": "DPO"},
        "received": "2026-11-20T10:00:00Z",
        "reason": "Erasure requested by the data subject",
        "evidence": "letter 77",
        "scope": {"recordings": [recording_id("pbx", "L1/a.wav")]},
    }


def registered(**changes: Any) -> AuditDraft:
    doc = document()
    request = parse_request(doc)
    details = {
        "licence": "L1", "digest": request.digest, "verification": "two-person",
        "state": "received", "requested_by": doc["requested_by"], "received": doc["received"],
        "evidence": doc["evidence"], "scope": scope_json(request.scope), "document": doc,
        "uid": 1001,
    } | changes  # fmt: skip
    return AuditDraft("request.registered", "REQ-1", details, "alice")


CLAIMS = {
    "verified without an approval": [registered(state="verified")],
    "approved by the uid that registered it": [
        registered(),
        AuditDraft("request.approved", "REQ-1", {"uid": 1001}, "alice"),
    ],
    "approved with no uid": [registered(), AuditDraft("request.approved", "REQ-1", {}, "bob")],
    "a document that is not the audited one": [
        registered(document=document() | {"scope": {"all": True}}),
        AuditDraft("request.approved", "REQ-1", {"uid": 1002}, "bob"),
    ],
}


@pytest.mark.parametrize("claim", sorted(CLAIMS))
def test_a_rebuilt_request_never_runs_on_a_claim_the_log_does_not_show(
    claim: str, tmp_path: Path, fake_clock: FakeClock
) -> None:
    estate = Estate(tmp_path, fake_clock)
    a = estate.write("L1/a.wav", age_days=1)
    other = estate.write("L1/other.wav", age_days=1)
    rt = estate.runtime()
    rt.audit.append(CLAIMS[claim], estate.clock.now())
    rt.close()

    estate.once()  # no catalogue yet: rebuilt from the log, then scanned
    [rebuilt] = [e["details"] for e in estate.audit() if e["action"] == "catalogue.rebuilt"]
    assert rebuilt["problems"], "the rebuild said nothing of what it did not trust"
    rt = estate.runtime()
    try:
        stored = rt.catalogue.request("REQ-1")
        assert stored is not None
        desk = Requests(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers)
        with pytest.raises(NotAllowedInState):
            desk.execute("REQ-1", BOB)
    finally:
        rt.close()
    assert a.exists() and other.exists()
    assert stored.state is RequestState.RECEIVED or stored.info.document_missing
