"""What happened to a registered request: who registered, verified, rejected and ran it, and when.

``RequestInfo`` is the typed state beside the request document; the catalogue stores it as one
JSON object (``to_json``/``from_json``, the only places that know its keys). The JSON keeps the
keys recd has always written — ``registered_by``, ``approved_at``, ``certificate``... — and
writes a key only in the situations it always did: a step not taken has no keys, a registration
always has its uid (null when an older audit log did not say it), a rejection all five of its
keys. Times are kept as the stored text (microsecond UTC, ``format_time``), never re-rendered,
so that a catalogue read and written again holds the same bytes. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recd.core.signatures import SignedBy


@dataclass(frozen=True, slots=True)
class Step:
    """A step an administrator took: who (``by``, ``uid``), when (``at``) and its audit entry."""

    by: str
    uid: int | None  # None: an older audit log did not say
    at: str  # stored time text
    seq: int | None  # None: registered, its audit entry not yet written


@dataclass(frozen=True, slots=True)
class Rejection:
    by: str
    uid: int | None
    at: str
    reason: str
    seq: int


@dataclass(frozen=True, slots=True)
class CertificateRef:
    """Where the last run's certificate was written and the digest its audit entry holds."""

    path: str
    sha256: str
    seq: int  # the request.certificate entry


@dataclass(frozen=True, slots=True)
class RequestInfo:
    verification: str  # "signature" or "two-person"
    registered: Step
    signed_by: SignedBy | None = None  # the agent whose signature verified it
    approved: Step | None = None
    rejected: Rejection | None = None
    runs: int | None = None  # runs started (None: never run)
    run_offset: int | None = None  # audit log offset where the last run started
    started_seq: int | None = None
    executed_at: str | None = None
    executed_seq: int | None = None
    certificate: CertificateRef | None = None
    document_missing: bool = False  # rebuilt from an older audit log without the document

    @property
    def last_step(self) -> int:
        """The seq of the last step (registered ... executed, certificate) this reflects."""
        seqs = [self.registered.seq, self.started_seq, self.executed_seq]
        seqs += [s.seq for s in (self.approved, self.rejected, self.certificate) if s]
        return max((s for s in seqs if s is not None), default=0)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verification": self.verification}
        out |= _step_json("registered", self.registered)
        if self.signed_by is not None:
            s = self.signed_by
            out["signed_by"] = {"name": s.name, "email": s.email, "key": s.key}
        if self.approved is not None:
            out |= _step_json("approved", self.approved)
        if self.rejected is not None:
            r = self.rejected
            out |= {"rejected_by": r.by, "rejected_uid": r.uid, "rejected_at": r.at}
            out |= {"rejected_reason": r.reason, "rejected_seq": r.seq}
        for key in ("runs", "run_offset", "started_seq", "executed_at", "executed_seq"):
            if (value := getattr(self, key)) is not None:
                out[key] = value
        if self.certificate is not None:
            c = self.certificate
            out["certificate"] = {"path": c.path, "sha256": c.sha256, "seq": c.seq}
        if self.document_missing:
            out["document_missing"] = True
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RequestInfo:
        signed, cert = data.get("signed_by"), data.get("certificate")
        rejected = None
        if "rejected_by" in data:
            rejected = Rejection(
                data["rejected_by"],
                data.get("rejected_uid"),
                data["rejected_at"],
                data.get("rejected_reason") or "",
                data["rejected_seq"],
            )
        return cls(
            data["verification"],
            _step_from(data, "registered"),
            None if signed is None else SignedBy(signed["name"], signed["email"], signed["key"]),
            _step_from(data, "approved") if "approved_by" in data else None,
            rejected,
            data.get("runs"),
            data.get("run_offset"),
            data.get("started_seq"),
            data.get("executed_at"),
            data.get("executed_seq"),
            None if cert is None else CertificateRef(cert["path"], cert["sha256"], cert["seq"]),
            bool(data.get("document_missing")),
        )


def _step_json(name: str, step: Step) -> dict[str, Any]:
    out = {f"{name}_by": step.by, f"{name}_uid": step.uid, f"{name}_at": step.at}
    if step.seq is not None:
        out[f"{name}_seq"] = step.seq
    return out


def _step_from(data: Mapping[str, Any], name: str) -> Step:
    return Step(
        data[f"{name}_by"], data.get(f"{name}_uid"), data[f"{name}_at"], data.get(f"{name}_seq")
    )
