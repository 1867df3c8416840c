"""The canned replies recctl's tests answer with, as data: each stands for what the real daemon
replies to one command (``recd.protocol`` documents the shapes).

The command tests (tests/cli/commands/) make their fake daemon answer these; test_replies.py
checks that each has the shape of the real ``Admin``'s reply to the same command, so a recctl
tested against them is tested against what a real daemon sends."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tests.core.helpers import document

STATUS: dict[str, Any] = {
    "version": "0.1.0",
    "node": "pbx-a",
    "mode": "enforce",
    "pid": 4242,
    "started": "2026-11-23T08:00:00.123456Z",
    "recordings": 12034,
    "bytes": 1_534_000_000,
    "unclassified": 34,
    "overdue": 0,
    "next_deadline": "2026-12-01T10:00:00Z",
    "breaker": ["ACME", "OTHER"],
    "clock_guard": {"paused": False, "reason": None},
    "audit_log": {"writable": True, "problem": None},
    "audit_check": {"paused": False, "problem": None},
    "sources": [
        {
            "name": "pbx1",
            "type": "directory",
            "watch": "inotify",
            "scanning": False,
            "last_scan": "2026-11-23T14:00:00.5Z",
            "scan_seconds": 4.213,
            "objects": None,
            "unwritable": None,
            "served": "served",
        },
        {
            "name": "archive",
            "type": "s3",
            "watch": "none",
            "scanning": True,
            "last_scan": None,
            "scan_seconds": None,
            "objects": None,
            "unwritable": None,
            "served": "served",
        },
    ],
    "licences": [
        {"licence": "3CX-1234-5678", "recordings": 12000, "bytes": 1_533_000_000, "due": 2},
        {"licence": None, "recordings": 34, "bytes": 1_000_000, "due": 0},
    ],
}


REC: dict[str, Any] = {
    "id": "8a47373e7a113408a3a4",
    "source": "pbx1",
    "location": "/srv/rec/1001/1700.wav",
    "licence": "3CX-1234-5678",
    "started": "2026-11-23T13:43:09Z",
    "deadline": "2027-02-23T13:43:09Z",
    "size": 1234567,
    "held": False,
    "state": "present",
    "skip_reason": None,
    "not_before": None,
}


HOSTILE: dict[str, Any] = {
    "id": "b3c0b50ec44a25938d00",
    "source": "archive",
    "location": "s3://recordings/tenants/x/\x1b[31m\n.wav",
    "licence": None,
    "started": "2026-11-20T09:00:00+01:00",
    "deadline": None,
    "size": 512,
    "held": True,
    "state": "present",
    "skip_reason": "has 2 hard links",
    "not_before": None,
}


SHOW: dict[str, Any] = REC | {
    "fields": {
        "licence": {"value": "3CX-1234-5678", "from": "source"},
        "started": {"value": "2026-11-23T13:43:09Z", "from": "pattern"},
        "call_id": {"value": "1700", "from": "pattern"},
        "duration": {"value": 63.5, "from": "tags"},
        "parties": {"value": ["+441234", "+449876"], "from": "tags"},
        "format": {"value": "wav", "from": ""},
    },
    "retention": {
        "period": "3mo",
        "rule": "retention in /etc/recd/licences.d/acme.toml",
        "deadline": "2027-02-23T13:43:09Z",
    },
    "first_seen": "2026-11-23T13:44:00.000001Z",
    "mtime": "2026-11-23T13:44:59Z",
    "dev": 2049,
    "ino": 131,
}


POLICY: list[dict[str, Any]] = [
    {
        "licence": "3CX-1234-5678",
        "name": "Acme Ltd",
        "retention": "3mo",
        "rule": "retention in /etc/recd/licences.d/acme.toml",
        "recordings": 12000,
        "breaker": True,
    },
    {
        "licence": None,
        "name": None,
        "retention": "keep",
        "rule": "retention.unclassified = keep in /etc/recd/recd.toml",
        "recordings": 34,
        "breaker": False,
    },
]


SCANS: list[dict[str, Any]] = [
    {"source": "pbx1", "files": 12034, "new": 12, "changed": 3, "missing": 1, "seconds": 4.213},
    {"source": "archive", "files": 1, "new": 0, "changed": 0, "missing": 0, "seconds": 0.04},
]


BREAKERS: list[dict[str, Any]] = [
    {
        "licence": "ACME",
        "tripped_at": "2026-11-23T14:21:19.5Z",
        "due": 1200,
        "total": 2000,
        "released_at": None,
        "released_by": None,
    },
    {
        "licence": "OTHER",
        "tripped_at": "2026-11-20T14:21:19Z",
        "due": 5,
        "total": 6,
        "released_at": "2026-11-20T15:00:00Z",
        "released_by": "alice",
    },
]


RELEASE: dict[str, Any] = {"licence": "ACME", "due": 1200}


CONFIRMED: dict[str, Any] = {"wall": "2026-11-23T12:00:00Z", "problem": None}


REC_A = "8a47373e7a113408a3a4"


REC_B = "b3c0b50ec44a25938d00"


HOLD: dict[str, Any] = {
    "id": "H-0003",
    "licence": "acme",
    "case": "CASE-9",
    "reason": "litigation: Acme v. Example",
    "scope": {
        "recordings": [REC_A, REC_B],
        "call_ids": ["1712"],
        "party": "+441234567890",
        "from": "2026-11-01T00:00:00Z",
        "to": "2026-11-15T00:00:00Z",
    },
    "whole_licence": False,
    "state": "active",
    "placed_at": "2026-11-23T13:43:09.123456Z",
    "placed_by": "alice",
    "until": None,
    "released_at": None,
    "released_by": None,
    "release_reason": None,
    "held": 12,
}


WHOLE: dict[str, Any] = HOLD | {
    "id": "H-0004",
    "scope": {"recordings": [], "call_ids": [], "party": None, "from": None, "to": None},
    "whole_licence": True,
    "until": "2026-12-31T00:00:00Z",
    "held": 1,
}


RELEASED: dict[str, Any] = HOLD | {
    "id": "H-0001",
    "licence": "other",
    "scope": {
        "recordings": [],
        "call_ids": ["17", "18"],
        "party": None,
        "from": "2026-10-01T08:30:00Z",
        "to": None,
    },
    "state": "released",
    "released_at": "2026-11-20T09:00:00Z",
    "released_by": "bob",
    "release_reason": "case settled",
    "held": 0,
}


#: What ``hold release`` replies: the hold as released, how many it alone held, when they fall due.
HOLD_RELEASE: dict[str, Any] = HOLD | {
    "state": "released",
    "released_at": "2026-11-23T10:00:00Z",
    "released_by": "bob",
    "release_reason": "case settled",
    "released": 12,
    "due_from": "2026-11-30T10:00:00.000001Z",
}


DOCUMENT: dict[str, Any] = document(licence="acme")  # SPEC 11's example, for licence acme


COUNTS = {"erased": 0, "held": 0, "failed": 0, "gone": 0, "pending": 0}


REQUEST: dict[str, Any] = {
    "id": "REQ-2026-0042",
    "licence": "acme",
    "state": "received",
    "requested_by": {"name": "Jane Doe", "email": "dpo@acme.example", "role": "DPO"},
    "received": "2026-11-20T10:00:00Z",
    "reason": "Erasure requested by the data subject",
    "evidence": "letter ACME/DP/77",
    "scope": DOCUMENT["scope"],
    "whole_licence": False,
    "verification": "two-person",
    "registered_at": "2026-11-23T13:50:00Z",
    "registered_by": "alice",
    "approved_at": None,
    "approved_by": None,
    "signed_by": None,
    "rejected_at": None,
    "rejected_by": None,
    "rejected_reason": None,
    "executed_at": None,
    "certificate": None,
    "counts": COUNTS,
}


SIGNED: dict[str, Any] = REQUEST | {
    "id": "REQ-2026-0043",
    "state": "verified",
    "verification": "signature",
    "signed_by": {"name": "Jane Doe", "email": "dpo@acme.example", "key": "ed25519:AAAA"},
}


APPROVED: dict[str, Any] = REQUEST | {
    "state": "verified",
    "approved_at": "2026-11-23T14:00:00Z",
    "approved_by": "bob",
}


DONE: dict[str, Any] = APPROVED | {
    "id": "REQ-2026-0040",
    "state": "partial",
    "executed_at": "2026-11-23T15:00:00Z",
    "certificate": {
        "path": "/var/lib/recd/certificates/REQ-2026-0040.json",
        "sha256": "ab" * 32,
        "seq": 812,
    },
    "counts": {"erased": 3, "held": 1, "failed": 0, "gone": 2, "pending": 0},
}


ITEMS: list[dict[str, Any]] = [
    {"id": REC_A, "location": "/srv/rec/1001/1712.wav", "licence": "acme", "size": 1_200_000,
     "outcome": "erased", "holds": [], "note": None},
    {"id": REC_B, "location": "/srv/rec/1001/1712-2.wav", "licence": "acme", "size": 512,
     "outcome": "held", "holds": ["H-0002", "H-0003"], "note": None},
    {"id": "c0ffee0000c0ffee0000", "location": None, "licence": "acme", "size": None,
     "outcome": "gone", "holds": [], "note": "never indexed"},
]  # fmt: skip


CERTIFICATE = json.dumps(
    {"request_id": "REQ-2026-0040", "requested_by": "Zo\u00eb", "recordings": []}, indent=2,
    ensure_ascii=False,
) + "\n"  # fmt: skip


CERT_SHA = hashlib.sha256(CERTIFICATE.encode()).hexdigest()


CERT_REPLY: dict[str, Any] = {
    "text": CERTIFICATE,
    "sha256": CERT_SHA,
    "path": "/var/lib/recd/certificates/REQ-2026-0040.json",
    "seq": 812,
}


PREVIEW_ITEMS: list[dict[str, Any]] = [
    {"id": REC_A, "location": "/srv/rec/1001/1712.wav", "licence": "acme", "size": 1_200_000,
     "outcome": "erase", "holds": [], "note": None},
    {"id": REC_B, "location": "/srv/rec/1001/1712-2.wav", "licence": "acme", "size": 512,
     "outcome": "held", "holds": ["H-0002"], "note": None},
    {"id": "c0ffee0000c0ffee0000", "location": None, "licence": "acme", "size": None,
     "outcome": "gone", "holds": [], "note": "never indexed"},
]  # fmt: skip


PREVIEW: dict[str, Any] = {
    "request": APPROVED,
    "items": PREVIEW_ITEMS,
    "erase": 1,
    "bytes": 1_200_000,
    "held": 1,
    "gone": 1,
}
