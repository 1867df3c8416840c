"""The deletion certificate of a request run: build it, write it, read it back checked.

A certificate is a JSON document (``certificate_document``) written whole or not at all to
``<state_dir>/certificates/<request id>.json`` and its SHA-256 audited (``request.certificate``)
before the request points to it. Reading one back checks that digest: a certificate altered
after recd wrote it is refused, never shown as recd's.
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from recd import __version__, durable
from recd.config.types import Licence
from recd.core.audit import AuditDraft, location_details
from recd.core.requestinfo import RequestInfo
from recd.core.requeststate import ItemOutcome, RequestItem
from recd.core.times import format_time
from recd.errors import NotAllowedInState, RecdError, os_reason
from recd.ports.records import StoredRequest
from recd.ports.sweeping import SweepCatalogue
from recd.service import EraseUseCase

CERTIFICATE_MODE = 0o640  # the daemon's copy; recctl writes its own


@dataclass(frozen=True, slots=True)
class Certificate:
    text: str  # the exact file content
    sha256: str
    path: Path
    seq: int  # the request.certificate audit entry


def read_certificate(stored: StoredRequest) -> Certificate:
    """The request's certificate as recd wrote it; refused when there is none yet, it cannot be
    read, or it does not match the audited digest."""
    cert = stored.info.certificate
    if cert is None:
        raise NotAllowedInState(
            f"request {stored.id} has no certificate yet (state {stored.state}): "
            f"`recctl delete --request-id {stored.id}` runs it and writes one"
        )
    path = Path(cert.path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecdError(f"{path}: cannot read the certificate: {os_reason(exc)}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != cert.sha256:
        raise RecdError(
            f"{path} does not match the digest audited in entry #{cert.seq} "
            f"({cert.sha256}): it was altered after recd wrote it"
        )
    return Certificate(data.decode("utf-8"), digest, path, cert.seq)


def write_certificate(
    uc: EraseUseCase[SweepCatalogue], stored: StoredRequest, items: list[RequestItem], now: datetime
) -> Certificate:
    """Write the certificate of ``stored``'s run and audit its digest."""
    document = certificate_document(stored, items, uc.config.licences, now)
    text = json_text(document)
    data = text.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    path = uc.config.daemon.state_dir / "certificates" / f"{stored.id}.json"
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    durable.write_atomically(path, data, CERTIFICATE_MODE)
    details = {"sha256": digest, "path": str(path), "state": str(stored.state), **count(items)}
    (entry,) = uc.audit.append([AuditDraft("request.certificate", stored.id, details)], now)
    return Certificate(text, digest, path, entry.seq)


def count(items: Iterable[RequestItem]) -> dict[str, int]:
    counts = dict.fromkeys(("erased", "held", "failed", "gone", "pending"), 0)
    for item in items:
        counts[str(item.outcome)] += 1
    return counts


def json_text(document: object) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def certificate_document(
    stored: StoredRequest, items: list[RequestItem], licences: Mapping[str, Licence], now: datetime
) -> dict[str, Any]:
    """The deletion certificate: what was asked, who verified it, what became of each recording
    in scope, and the audit entries to check it against. No audio, nothing the request and the
    catalogue do not hold."""
    doc = stored.document
    licence = licences.get(stored.licence)
    lists: dict[str, list[dict[str, Any]]] = {"erased": [], "skipped": [], "already_gone": []}
    for item in items:
        listed, entry = _item_entry(item)
        lists[listed].append(entry)
    info = stored.info
    seqs = [info.registered.seq, info.approved and info.approved.seq, info.executed_seq]
    seqs += [i.audit_seq for i in items if i.outcome is ItemOutcome.ERASED]
    return {
        "certificate": "recd deletion certificate",
        "format": 1,
        "issued_at": format_time(now),
        "issued_by": f"recd {__version__} on {socket.gethostname()}",
        "request": {
            "id": stored.id,
            "licence": stored.licence,
            "licence_name": None if licence is None else licence.name,
            **{k: doc[k] for k in ("requested_by", "received", "reason", "evidence", "scope")},
            "digest": stored.digest,
        },
        "verification": _verification(info),
        "state": str(stored.state),
        "summary": _summary(items),
        **lists,
        "audit_seqs": sorted(s for s in seqs if isinstance(s, int)),
    }


def _verification(info: RequestInfo) -> dict[str, Any]:
    """Who registered the request and who or what verified it."""
    registered = info.registered
    out: dict[str, Any] = {
        "method": info.verification,
        "registered_by": registered.by,
        "registered_uid": registered.uid,
        "registered_at": registered.at,
    }
    if (approved := info.approved) is not None:
        out |= {"approved_by": approved.by, "approved_uid": approved.uid}
        out["approved_at"] = approved.at
    if (signed := info.signed_by) is not None:
        out["signed_by"] = {"name": signed.name, "email": signed.email, "key": signed.key}
    return out


def _summary(items: list[RequestItem]) -> dict[str, int]:
    counts = count(items)
    return {
        "erased": counts["erased"],
        "held": counts["held"],
        "failed": counts["failed"],
        "already_gone": counts["gone"],
        "bytes_erased": sum(i.size or 0 for i in items if i.outcome is ItemOutcome.ERASED),
    }


def _item_entry(item: RequestItem) -> tuple[str, dict[str, Any]]:
    """The certificate's list for ``item`` (erased, skipped, already_gone) and its entry."""
    entry: dict[str, Any] = {
        "id": item.recording_id,
        **(location_details(item.location) if item.location else {"location": None}),
        "licence": item.licence,
        "size": item.size,
    }
    if item.outcome is ItemOutcome.GONE:
        return "already_gone", entry | {"note": item.note}
    if item.outcome is not ItemOutcome.ERASED:
        entry["reason"] = "legal hold" if item.holds else item.note
        if item.holds:
            entry["held_by"] = list(item.holds)
        if item.audit_seq is not None:
            entry["audit_seq"] = item.audit_seq
        return "skipped", entry
    entry |= {
        "sha256": item.sha256,
        "method": item.method,
        "effective": item.effective,
        "erased_at": None if item.time is None else format_time(item.time),
        "audit_seq": item.audit_seq,
    }
    if not item.effective:
        entry["ineffective_reason"] = item.ineffective_reason
    if item.s3 is not None:
        entry["s3"] = dict(item.s3)
    return "erased", entry
