"""Shared by tests/core: SPEC 11's example request document, its canonical JSON written out
by hand, and an Ed25519 key as a licence and a request file write it; sealed audit entries, one a
minute from T0, for the replay tests (requests and breakers); NOW, the policy and safety tests'
fixed instant. Plain functions, no I/O."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from recd.core.audit import GENESIS, AuditDraft, AuditEntry, seal


def document(**changes: Any) -> dict[str, Any]:
    """SPEC 11's example request, unsigned, with ``changes`` applied (None removes a key)."""
    doc: dict[str, Any] = {
        "request_id": "REQ-2026-0042",
        "licence": "3CX-1234-5678",
        "requested_by": {"name": "Jane Doe", "email": "dpo@acme.example", "role": "DPO"},
        "received": "2026-11-20T10:00:00Z",
        "reason": "Erasure requested by the data subject",
        "evidence": "letter ACME/DP/77",
        "scope": {
            "recordings": [],
            "call_ids": ["1712"],
            "party": "+441234567890",
            "from": "2026-11-01T00:00:00Z",
            "to": "2026-11-15T00:00:00Z",
        },
    }
    for key, value in changes.items():
        if value is None:
            del doc[key]
        else:
            doc[key] = value
    return doc


def public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_text(private: Ed25519PrivateKey) -> str:
    """The key as a licence file and a request file write it."""
    return "ed25519:" + base64.b64encode(public(private)).decode()


def canonical(doc: dict[str, Any]) -> bytes:
    """The canonical JSON docs/admin-guide.md gives signers, written out here rather than taken
    from recd's ``canonical_json``: keys sorted, no spaces, UTF-8 rather than escapes."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
R1, R2, R3, R4 = (f"{n:020x}" for n in (1, 2, 3, 4))
Entry = tuple[str, str, Mapping[str, Any], str]


def at(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def log(*steps: Entry) -> list[AuditEntry]:
    """Sealed entries, one a minute from T0: (action, subject, details, actor)."""
    entries: list[AuditEntry] = []
    prev = GENESIS
    for n, (action, subject, details, actor) in enumerate(steps, start=1):
        entry = seal(AuditDraft(action, subject, details, actor), seq=n, prev=prev, time=at(n))
        entries.append(entry)
        prev = entry.hash
    return entries


def tripped(label: str = "L1", due: int = 30) -> Entry:
    return ("breaker.tripped", label, {"due": due, "recordings": 40}, "recd")


def released(label: str = "L1") -> Entry:
    return ("breaker.released", label, {"due": 30, "recordings": 40, "uid": 1001}, "bob")


def retention(licence: str = "L1") -> Entry:
    return ("erase.done", R1, {"licence": licence, "reason": "retention"}, "recd")


NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
