"""Early-deletion requests (SPEC section 6): register, verify, approve, reject.

A request is registered once (the same document again is the same request; other content under
its id is refused), verified by its licence's rule (a signature, or a second administrator's
approval) and then runs (``recd.service.requestruns``) until it is settled. Every step and
every refusal is audited with the caller's uid; a refused step changes nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from recd.core.audit import AuditDraft
from recd.core.requestinfo import Rejection, RequestInfo, Step
from recd.core.requests import (
    ErasureRequest,
    RequestInvalid,
    parse_request,
    scope_json,
    whole_licence_refusal,
)
from recd.core.requeststate import RequestState
from recd.core.scope import Scope
from recd.core.signatures import check_signature
from recd.core.times import format_human_time, format_time, parse_time
from recd.errors import (
    NotAllowedInState,
    NotFound,
    PermissionDenied,
    RecdError,
    UsageError,
)
from recd.ports.records import Actor, StoredRequest
from recd.service.requestruns import RequestRuns, check_document

logger = logging.getLogger(__name__)


class Requests(RequestRuns):
    """The request use cases: the lifecycle here, the runs and certificates inherited."""

    def register(self, document: object, actor: Actor) -> tuple[StoredRequest, bool]:
        """Register a request; returns it and whether it was already registered as is."""
        rid = document.get("request_id") if isinstance(document, dict) else None
        subject = rid if isinstance(rid, str) and rid else "(no request_id)"
        try:
            request = parse_request(document)
            return self._register(request, actor)
        except RecdError as exc:
            self._refused(subject, "register", str(exc), actor)
            raise

    def _register(self, req: ErasureRequest, actor: Actor) -> tuple[StoredRequest, bool]:
        existing = self.catalogue.request(req.id)
        if existing is not None:
            return self._registered(existing, req, actor), True
        licence = self.config.licences.get(req.licence)
        if licence is None:
            raise NotFound(
                f"licence {req.licence} has no file in licences.d: recd cannot tell how its "
                "requests are verified (add the licence file, then register the request)"
            )
        self._check_own_licence(req)
        agents = {k: v.agents for k, v in self.config.licences.items()}
        signed = None
        if licence.verification == "signature" or req.signature is not None:
            signed = check_signature(req, agents)
        if licence.verification == "two-person" and not actor.admin:
            raise PermissionDenied(
                f"{actor.name} is not in group {self.config.daemon.admin_group}: two-person "
                "verification needs both administrators in it"
            )
        now = self.clock.now()
        self._check_not_whole_licence(req.scope, now)
        state = (
            RequestState.VERIFIED
            if licence.verification == "signature"
            else (RequestState.RECEIVED)
        )
        step = Step(actor.name, actor.uid, format_time(now), None)
        info = RequestInfo(licence.verification, step, signed_by=signed)
        stored = StoredRequest(
            req.id, req.licence, state, dict(req.document), req.digest, info, now
        )
        details = _registration(req, stored, actor)
        with self.catalogue.together():
            self.catalogue.put_request(stored)
            (entry,) = self.audit.append(
                [AuditDraft("request.registered", req.id, details, actor.name)], now
            )
            registered = replace(info, registered=replace(step, seq=entry.seq))
            return self._update(stored, info=registered), False

    def _check_own_licence(self, req: ErasureRequest) -> None:
        """Refuse a scope that names another licence's recording by its id."""
        for rid in sorted(req.scope.recordings):
            rec = self.catalogue.get(rid)
            if rec is not None and rec.classification.licence != req.licence:
                owner = rec.classification.licence or "no licence (unclassified)"
                raise NotAllowedInState(
                    f"scope.recordings: recording {rid} belongs to {owner}, not to "
                    f"{req.licence}: a request only reaches its own licence's recordings"
                )

    def _registered(
        self, existing: StoredRequest, req: ErasureRequest, actor: Actor
    ) -> StoredRequest:
        """A request registered again: the same content is the same request (and gives back
        the document of one rebuilt without it); different content is refused."""
        missing = existing.info.document_missing
        if existing.digest == req.digest:
            return self._restore_document(existing, req, actor) if missing else existing
        if missing:
            raise NotAllowedInState(
                f"request {req.id} was rebuilt from an older audit log without its "
                "document, and this file does not match the digest audited when it was "
                f"registered ({existing.digest}): register its file again, as it was"
            )
        raise NotAllowedInState(
            f"request id {req.id} is already registered with different content (by "
            f"{existing.info.registered.by} at {_shown(existing.info.registered.at)}); "
            "a new request needs a new id"
        )

    def _restore_document(
        self, existing: StoredRequest, req: ErasureRequest, actor: Actor
    ) -> StoredRequest:
        """The document of a request rebuilt from an older audit log (which did not hold it),
        given again and matching the audited digest: stored, audited (``request.document``,
        so that a later rebuild has it too), and the request may run as its state says."""
        now = self.clock.now()
        details = {"digest": req.digest, "document": dict(req.document), **actor.audit}
        info = replace(existing.info, document_missing=False)
        restored = replace(existing, document=dict(req.document), info=info, updated=now)
        with self.catalogue.together():
            self.audit.append([AuditDraft("request.document", req.id, details, actor.name)], now)
            self.catalogue.put_request(restored)
        logger.warning(
            "request %s: its document, given again by %s, matches the audited digest",
            req.id,
            actor.name,
        )
        return restored

    def _check_not_whole_licence(self, scope: Scope, now: datetime) -> None:
        """Refuse a scope that covers the whole licence without saying ``"all": true``, judged
        against the recordings of the licence indexed now (``whole_licence_refusal``)."""
        if scope.whole_licence or scope.recordings or scope.call_ids:
            return
        present = self.catalogue.held_count(Scope(scope.licence))  # present ones, held or not
        matched = self.catalogue.held_count(scope) if present else 0
        refusal = whole_licence_refusal(scope, present, matched, now)
        if refusal is not None:
            raise refusal

    def check_confirmed(self, request_id: str, confirm_all: str | None, actor: Actor) -> None:
        """A run of a request for a whole licence (``"all": true``) needs that licence's id
        typed back (``recctl delete --confirm-all``); refused and audited otherwise. Other
        requests need nothing here (``confirm_all`` must then be left out)."""
        stored = self._get(request_id)
        whole = is_whole_licence(stored)
        problem = None
        if whole and confirm_all is None:
            problem = (
                f"request {request_id} erases every recording of licence {stored.licence}"
                f' ("all": true): confirm it with the licence id'
                f" (recctl delete --request-id {request_id} --confirm-all {stored.licence})"
            )
        elif whole and confirm_all != stored.licence:
            problem = (
                f"{confirm_all!r} is not the licence of request {request_id}, which erases"
                f" every recording of licence {stored.licence}"
            )
        elif not whole and confirm_all is not None:
            problem = (
                f"request {request_id} is not for a whole licence (its scope is not"
                ' "all": true): leave out the whole-licence confirmation'
            )
        if problem is not None:
            self._refused(request_id, "execute", f"confirm_all: {problem}", actor)
            raise UsageError(f"confirm_all: {problem}")

    def approve(self, request_id: str, actor: Actor) -> StoredRequest:
        stored = self._get(request_id)
        try:
            self._check_approval(stored, actor)
        except RecdError as exc:
            self._refused(request_id, "approve", str(exc), actor)
            raise
        now = self.clock.now()
        details = {"registered_by": stored.info.registered.by, **actor.audit}
        with self.catalogue.together():
            (entry,) = self.audit.append(
                [AuditDraft("request.approved", request_id, details, actor.name)], now
            )
            return self._update(
                stored,
                RequestState.VERIFIED,
                info=replace(
                    stored.info, approved=Step(actor.name, actor.uid, format_time(now), entry.seq)
                ),
            )

    def _check_approval(self, stored: StoredRequest, actor: Actor) -> None:
        check_document(stored)
        if stored.state is not RequestState.RECEIVED:
            raise NotAllowedInState(
                f"request {stored.id} is {stored.state}, not waiting for approval"
                + (_by(stored) if stored.state is RequestState.VERIFIED else "")
            )
        licence = self.config.licences.get(stored.licence)
        if licence is not None and licence.verification != "two-person":
            raise NotAllowedInState(
                f"licence {stored.licence} verifies requests by signature now; an approval "
                "does not verify this one (register a signed request)"
            )
        if actor.uid == stored.info.registered.uid:
            raise NotAllowedInState(
                f"{actor.name} registered request {stored.id} and cannot also approve it: "
                "two-person verification needs a second administrator"
            )
        if not actor.admin:
            raise PermissionDenied(
                f"{actor.name} is not in group {self.config.daemon.admin_group}: only its "
                "members approve requests"
            )

    def reject(self, request_id: str, reason: str, actor: Actor) -> StoredRequest:
        stored = self._get(request_id)
        if stored.state not in (RequestState.RECEIVED, RequestState.VERIFIED):
            message = f"request {request_id} is {stored.state}: only a request not yet run can "
            message += "be rejected"
            self._refused(request_id, "reject", message, actor)
            raise NotAllowedInState(message)
        if not reason.strip():
            raise RequestInvalid("reason", "must not be empty")
        now = self.clock.now()
        details = {"reason": reason, **actor.audit}
        with self.catalogue.together():
            (entry,) = self.audit.append(
                [AuditDraft("request.rejected", request_id, details, actor.name)], now
            )
            return self._update(
                stored,
                RequestState.REJECTED,
                info=replace(
                    stored.info,
                    rejected=Rejection(actor.name, actor.uid, format_time(now), reason, entry.seq),
                ),
            )


def is_whole_licence(stored: StoredRequest) -> bool:
    """Whether a registered request is for every recording of its licence (``"all": true``);
    requests registered before ``all`` existed never are."""
    scope = stored.document.get("scope")
    return isinstance(scope, Mapping) and scope.get("all") is True


def _by(stored: StoredRequest) -> str:
    approved, signed = stored.info.approved, stored.info.signed_by
    if approved is not None:
        return f" (approved by {approved.by} at {_shown(approved.at)})"
    if signed is None:  # pragma: no cover (verified: approved or signed)
        return " (signed by None <None>)"
    return f" (signed by {signed.name} <{signed.email}>)"


def _registration(req: ErasureRequest, stored: StoredRequest, actor: Actor) -> dict[str, Any]:
    """The details of ``request.registered``: enough to rebuild the request from the log."""
    details = {
        "licence": req.licence,
        "digest": req.digest,
        "verification": stored.info.verification,
        "state": str(stored.state),
        "requested_by": req.document["requested_by"],
        "received": format_time(req.received),
        "evidence": req.evidence,
        "scope": scope_json(req.scope),
        "document": dict(req.document),  # the whole request, to rebuild it from the log
        **actor.audit,
    }
    if (signed := stored.info.signed_by) is not None:
        details["signed_by"] = {"name": signed.name, "email": signed.email, "key": signed.key}
    return details


def _shown(stored_time: str) -> str:
    """A time the request's info keeps (to the microsecond) as a message shows it."""
    return format_human_time(parse_time(stored_time))
