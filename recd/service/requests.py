"""Early-deletion requests (SPEC section 6): register, verify, reject, execute, certify.

Every step and every refusal is audited with the caller's uid. A run erases what the request's
scope matches (a rule, like a hold's: recordings indexed later that match are erased by a later
run), never a held recording, each by the SPEC section 4 rules after reading its SHA-256; then it
writes the deletion certificate and audits its digest. A run interrupted by a signal or a crash
resumes: its items stay ``pending`` until an ``erase.done`` in the audit log, found from the
run's starting offset, settles them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from recd import __version__, durable
from recd.core.audit import (
    AuditDraft,
    AuditEntry,
    format_human_time,
    format_time,
    location_details,
    parse_time,
)
from recd.core.holds import holding
from recd.core.model import Mode, Recording, State
from recd.core.requests import (
    ErasureRequest,
    RequestInvalid,
    SignatureRefused,
    check_signature,
    parse_request,
    scope_json,
    whole_licence_refusal,
)
from recd.core.scope import Scope
from recd.errors import NotAllowedInState, NotFound, PermissionDenied, RecdError, UsageError
from recd.ports import (
    RECD,
    Actor,
    ItemOutcome,
    RequestItem,
    RequestState,
    StoredRequest,
)
from recd.service import EraseUseCase
from recd.service.batch import Plan, run_batch
from recd.service.plan import (
    Candidate,
    Setback,
    Unplanned,
    erase_details,
    location_of,
    plan_batch,
    source_roots,
)
from recd.service.sweep import BATCH

logger = logging.getLogger(__name__)

CERTIFICATE_MODE = 0o640  # the daemon's copy; recctl writes its own
MAX_SCOPE = 1_000_000  # recordings one request may cover
RUNNABLE = (
    RequestState.VERIFIED,
    RequestState.EXECUTING,
    RequestState.PARTIAL,
    RequestState.COMPLETED,
)


@dataclass(frozen=True, slots=True)
class Certificate:
    text: str  # the exact file content
    sha256: str
    path: Path
    seq: int  # the request.certificate audit entry


class Requests(EraseUseCase):
    """The request use cases; ``certificates`` is ``<state_dir>/certificates``."""

    @property
    def certificates(self) -> Path:
        return self.config.daemon.state_dir / "certificates"

    # -- register, approve, reject ------------------------------------------------------------

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
        for rid in sorted(req.scope.recordings):
            rec = self.catalogue.get(rid)
            if rec is not None and rec.classification.licence != req.licence:
                owner = rec.classification.licence or "no licence (unclassified)"
                raise NotAllowedInState(
                    f"scope.recordings: recording {rid} belongs to {owner}, not to "
                    f"{req.licence}: a request only reaches its own licence's recordings"
                )
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
        info: dict[str, Any] = {
            "verification": licence.verification,
            "registered_by": actor.name,
            "registered_uid": actor.uid,
            "registered_at": format_time(now),
        }
        if signed is not None:
            info["signed_by"] = {"name": signed.name, "email": signed.email, "key": signed.key}
        details = {
            "licence": req.licence,
            "digest": req.digest,
            "verification": licence.verification,
            "state": str(state),
            "requested_by": req.document["requested_by"],
            "received": format_time(req.received),
            "evidence": req.evidence,
            "scope": scope_json(req.scope),
            **({"signed_by": info["signed_by"]} if signed is not None else {}),
            "document": dict(req.document),  # the whole request, to rebuild it from the log
            **actor.audit,
        }
        stored = StoredRequest(
            req.id, req.licence, state, dict(req.document), req.digest, info, now
        )
        self.catalogue.put_request(stored)
        (entry,) = self.audit.append(
            [AuditDraft("request.registered", req.id, details, actor.name)], now
        )
        return self._update(stored, info={"registered_seq": entry.seq}), False

    def _registered(
        self, existing: StoredRequest, req: ErasureRequest, actor: Actor
    ) -> StoredRequest:
        """A request registered again: the same content is the same request (and gives back
        the document of one rebuilt without it); different content is refused."""
        missing = existing.info.get("document_missing")
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
            f"{existing.info['registered_by']} at {_shown(existing.info['registered_at'])}); "
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
        self.audit.append([AuditDraft("request.document", req.id, details, actor.name)], now)
        info = {k: v for k, v in existing.info.items() if k != "document_missing"}
        restored = replace(existing, document=dict(req.document), info=info, updated=now)
        self.catalogue.put_request(restored)
        logger.warning("request %s: its document, given again by %s, matches the audited digest",
                       req.id, actor.name)  # fmt: skip
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
        details = {"registered_by": stored.info["registered_by"], **actor.audit}
        (entry,) = self.audit.append(
            [AuditDraft("request.approved", request_id, details, actor.name)], now
        )
        return self._update(
            stored,
            RequestState.VERIFIED,
            info={
                "approved_by": actor.name,
                "approved_uid": actor.uid,
                "approved_at": format_time(now),
                "approved_seq": entry.seq,
            },
        )

    def _check_approval(self, stored: StoredRequest, actor: Actor) -> None:
        _check_document(stored)
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
        if actor.uid == stored.info["registered_uid"]:
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
        (entry,) = self.audit.append(
            [AuditDraft("request.rejected", request_id, {"reason": reason, **actor.audit},
                        actor.name)],
            now,
        )  # fmt: skip
        return self._update(
            stored,
            RequestState.REJECTED,
            info={
                "rejected_by": actor.name,
                "rejected_uid": actor.uid,
                "rejected_at": format_time(now),
                "rejected_reason": reason,
                "rejected_seq": entry.seq,
            },
        )

    # -- preview and execution ----------------------------------------------------------------

    def preview(self, request_id: str) -> tuple[StoredRequest, list[RequestItem]]:
        """What a run would do now: nothing is changed, nothing audited. A request still
        waiting for its approval (``received``) is previewed too, so that the approver sees
        what it erases; a rejected one is refused."""
        stored = self._get(request_id)
        _check_document(stored)
        if stored.state is not RequestState.RECEIVED:
            self._check_runnable(stored)
        done = {i.recording_id: i for i in self.catalogue.items(request_id)}
        items = self._match(stored, done)
        return stored, items

    def execute(
        self, request_id: str, actor: Actor, should_stop: Callable[[], bool] = lambda: False
    ) -> tuple[StoredRequest, list[RequestItem]]:
        """Run (or resume, or re-run) a verified request; returns it and its items."""
        stored = self._get(request_id)
        try:
            self._check_runnable(stored)
            if self.config.daemon.mode is Mode.DRY_RUN:
                raise NotAllowedInState(
                    "recd runs in dry-run mode (daemon.mode): it erases nothing; "
                    f"`recctl delete --request-id {request_id} --dry-run` shows the plan"
                )
        except RecdError as exc:
            self._refused(request_id, "execute", str(exc), actor)
            raise
        if self._settled(stored):
            # Nothing to erase and nothing changed since the last run: a run now would only
            # rewrite the same certificate with a new digest, and the customer's copy would
            # stop matching the last audited one. So nothing is run, written or audited.
            return stored, self.catalogue.items(request_id)
        return self._run(stored, actor, should_stop)

    def resume(self, should_stop: Callable[[], bool] = lambda: False) -> list[str]:
        """Finish every run a crash or a stop interrupted (at start); returns their ids."""
        resumed = []
        for stored in self.resumable():
            logger.warning("resuming the interrupted run of request %s", stored.id)
            self._run(stored, RECD, should_stop)
            resumed.append(stored.id)
        return resumed

    def resumable(self) -> list[StoredRequest]:
        """The runs a crash or a stop interrupted that can resume: not one of a request
        rebuilt without its document (an older audit log), which waits for its file."""
        out = []
        for stored in self.catalogue.requests(RequestState.EXECUTING):
            if stored.info.get("document_missing"):
                logger.error(
                    "request %s: its interrupted run cannot resume: its document is not in "
                    "the audit log; register its file again", stored.id,
                )  # fmt: skip
                continue
            out.append(stored)
        return out

    def _run(
        self, stored: StoredRequest, actor: Actor, should_stop: Callable[[], bool]
    ) -> tuple[StoredRequest, list[RequestItem]]:
        rid = stored.id
        now = self.clock.now()
        previous = {i.recording_id: i for i in self.catalogue.items(rid)}
        if stored.state is RequestState.EXECUTING:
            previous = self._settle(stored, previous)
        runs = int(stored.info.get("runs", 0)) + 1
        offset = self.audit.end_offset()
        (started,) = self.audit.append(
            [AuditDraft("request.started", rid, {"run": runs, **actor.audit}, actor.name)], now
        )
        stored = self._update(
            stored,
            RequestState.EXECUTING,
            info={"runs": runs, "run_offset": offset, "started_seq": started.seq},
        )
        items = self._match(stored, previous)
        self.catalogue.put_items(rid, items)
        by_id = {i.recording_id: i for i in items}
        pending = [i for i in items if i.outcome is ItemOutcome.PENDING]
        interrupted = False
        for start in range(0, len(pending), BATCH):
            for item in self._erase(stored, pending[start : start + BATCH]):
                by_id[item.recording_id] = item
            self.catalogue.put_items(rid, list(by_id.values()))
            if start + BATCH < len(pending) and should_stop():
                interrupted = True
                break
        items = list(by_id.values())
        if interrupted:
            logger.warning("run of request %s interrupted; it resumes when recd starts", rid)
            return stored, items
        return self._finish(stored, items, actor), items

    def _settled(self, stored: StoredRequest) -> bool:
        """Whether a run now would change nothing: the last one finished and its certificate
        is intact, nothing in scope is left to erase, and every recording's outcome (and the
        hold or the note that explains it) is what that certificate says."""
        if stored.state not in (RequestState.COMPLETED, RequestState.PARTIAL):
            return False
        previous = {i.recording_id: i for i in self.catalogue.items(stored.id)}
        now = _outcomes(self._match(stored, previous))
        if any(outcome is ItemOutcome.PENDING for outcome, _, _ in now.values()):
            return False
        if now != _outcomes(previous.values()):
            return False
        try:
            self.certificate(stored.id)
        except RecdError:  # lost or altered: a run writes it again (and audits its digest)
            return False
        return True

    def _check_runnable(self, stored: StoredRequest) -> None:
        _check_document(stored)
        if stored.state in RUNNABLE:
            return
        if stored.state is RequestState.RECEIVED:
            raise NotAllowedInState(
                f"request {stored.id} is not verified (state received): a second administrator "
                f"must run `recctl request approve {stored.id}` first"
            )
        raise NotAllowedInState(
            f"request {stored.id} was rejected by {stored.info.get('rejected_by')}: "
            f"{stored.info.get('rejected_reason')}"
        )

    def _match(self, stored: StoredRequest, previous: dict[str, RequestItem]) -> list[RequestItem]:
        """The request's items now: erased ones stay erased; the rest is looked at again."""
        scope = parse_request(stored.document).scope
        roots = source_roots(self.config)
        holds = self.catalogue.holds()
        items: dict[str, RequestItem] = {}
        recs = {r.id: r for r in self.catalogue.matching(scope, MAX_SCOPE)}
        for rid in scope.recordings:
            old = previous.get(rid)
            if rid not in recs and (old is None or old.outcome is not ItemOutcome.ERASED):
                items[rid] = self._unmatched(rid, stored)
        for rec in recs.values():
            old = previous.get(rec.id)
            if old is not None and old.outcome is ItemOutcome.ERASED:
                items[rec.id] = old
                continue
            items[rec.id] = _item(rec, roots, holds, self.clock.now())
        for rid, old in previous.items():
            items.setdefault(rid, old)
        return sorted(items.values(), key=lambda i: (i.location or "", i.recording_id))

    def _unmatched(self, rid: str, stored: StoredRequest) -> RequestItem:
        """A recording the scope names by id that the scope does not match: never indexed, or
        (indexed after the request was registered) another licence's, which is not erased."""
        rec = self.catalogue.get(rid)
        if rec is None:
            return RequestItem(
                rid, ItemOutcome.GONE, note="not in the catalogue: recd never indexed it"
            )
        owner = rec.classification.licence or "no licence (unclassified)"
        return RequestItem(
            rid,
            ItemOutcome.FAILED,
            location=location_of(source_roots(self.config), rec),
            licence=rec.classification.licence,
            size=rec.size,
            note=f"not erased: it belongs to {owner}, not to {stored.licence}",
        )

    def _erase(self, stored: StoredRequest, batch: Sequence[RequestItem]) -> list[RequestItem]:
        """Hash and erase one batch of pending items; returns them settled."""
        reason = f"request:{stored.id}"
        out, plans = self._plans(batch, reason)
        if not plans:
            return out
        result = run_batch(self, plans)
        holds = self.catalogue.holds()
        items = {i.recording_id: i for i in batch}
        for plan in result.kept:
            held = holding(holds, plan.rec)
            out.append(replace(items[plan.rec.id], outcome=ItemOutcome.HELD, holds=held,
                               note="a legal hold was placed during the run"))  # fmt: skip
            self.telemetry.erased("request", "skipped", plan.rec.size, None)
        for done in result.done:
            d = done.entry.details
            out.append(erased_item(items[done.plan.rec.id], done.entry))
            self.telemetry.erased("request", "done", done.plan.rec.size, None)
            logger.info("erased %s for request %s", d["location"], stored.id)
        for failed in result.failed:
            out.append(
                replace(items[failed.plan.rec.id], outcome=ItemOutcome.FAILED,
                        note=f"erase failed: {failed.why}", audit_seq=failed.entry.seq)
            )  # fmt: skip
            self.telemetry.erased("request", "failed", failed.plan.rec.size, None)
            logger.error("erase of %s for request %s failed: %s",
                         failed.plan.details["location"], stored.id, failed.why)  # fmt: skip
        return out

    def _plans(
        self, batch: Sequence[RequestItem], reason: str
    ) -> tuple[list[RequestItem], list[Plan]]:
        """The items settled before erasing (gone, not erasable) and the plans to erase, each
        with the SHA-256 the certificate keeps (``plan_batch``)."""
        now = self.clock.now()
        out: list[RequestItem] = []
        roots = source_roots(self.config)
        items = {i.recording_id: i for i in batch}
        candidates: list[Candidate] = []
        for item in batch:
            rec = self.catalogue.get(item.recording_id)
            if rec is None or rec.state is not State.PRESENT:
                out.append(replace(item, outcome=ItemOutcome.GONE, note="vanished before erasure"))
            elif rec.source not in self.erasers:
                note = f"source {rec.source} is not configured"
                out.append(replace(item, outcome=ItemOutcome.FAILED, note=note))
            else:
                licence = rec.classification.licence or ""
                candidates.append(Candidate(rec, licence, reason, self.erasers[rec.source]))
        plans: list[Plan] = []
        for planned in plan_batch(self, candidates, now, roots, digest=True):
            if isinstance(planned, Plan):
                plans.append(planned)
            else:
                out.append(self._unplanned(planned, items[planned.rec.id], roots))
        return out, plans

    def _unplanned(self, u: Unplanned, item: RequestItem, roots: Mapping[str, str]) -> RequestItem:
        """A recording not planned: gone, or not erased (audited ``erase.skipped``); another
        file now at its name is indexed again (never erased as this one)."""
        if u.setback is Setback.GONE:
            return replace(item, outcome=ItemOutcome.GONE, note="vanished before erasure")
        details = erase_details(roots, u.rec, u.candidate.reason) | {"skipped": u.why}
        self.audit.append([AuditDraft("erase.skipped", u.rec.id, details)], self.clock.now())
        self.telemetry.erased("request", "skipped", u.rec.size, None)
        if u.setback is Setback.CHANGED and self.reindex is not None:
            with contextlib.suppress(OSError):  # the next scan tries again
                self.reindex(u.rec.source, u.rec.relpath)
        return replace(item, outcome=ItemOutcome.FAILED, note=f"not erased: {u.why}")

    def _settle(
        self, stored: StoredRequest, previous: dict[str, RequestItem]
    ) -> dict[str, RequestItem]:
        """Items an interrupted run left pending, settled from the audit log: recovery wrote
        ``erase.done`` for erases it finished (with the SHA-256 the plan held)."""
        pending = {k for k, v in previous.items() if v.outcome is ItemOutcome.PENDING}
        if not pending:
            return previous
        reason = f"request:{stored.id}"
        settled = dict(previous)
        for entry in self.audit.read_from(int(stored.info.get("run_offset", 0))):
            if entry.subject not in pending or entry.details.get("reason") != reason:
                continue
            if entry.action == "erase.done":
                settled[entry.subject] = erased_item(previous[entry.subject], entry)
        self.catalogue.put_items(stored.id, list(settled.values()))
        return settled

    def _finish(
        self, stored: StoredRequest, items: list[RequestItem], actor: Actor
    ) -> StoredRequest:
        counts = count(items)
        state = (
            RequestState.PARTIAL if counts["held"] or counts["failed"] else (RequestState.COMPLETED)
        )
        now = self.clock.now()
        details = {"state": str(state), **counts, **actor.audit}
        held = {i.recording_id: list(i.holds) for i in items if i.outcome is ItemOutcome.HELD}
        if held:
            details["held_by"] = held
        for outcome in (ItemOutcome.GONE, ItemOutcome.FAILED):  # to rebuild them from the log
            notes = {i.recording_id: i.note for i in items if i.outcome is outcome}
            if notes:
                details[f"{outcome}_items"] = notes
        (entry,) = self.audit.append(
            [AuditDraft("request.executed", stored.id, details, actor.name)], now
        )
        stored = self._update(
            stored, state, info={"executed_at": format_time(now), "executed_seq": entry.seq}
        )
        certificate = self._write_certificate(stored, items, now)
        logger.warning(
            "request %s %s: %d erased, %d held, %d failed, %d already gone; certificate %s",
            stored.id, state, counts["erased"], counts["held"], counts["failed"],
            counts["gone"], certificate.path,
        )  # fmt: skip
        return self._update(
            stored,
            info={
                "certificate": {
                    "path": str(certificate.path),
                    "sha256": certificate.sha256,
                    "seq": certificate.seq,
                }
            },
        )

    # -- certificates -------------------------------------------------------------------------

    def certificate(self, request_id: str) -> Certificate:
        stored = self._get(request_id)
        cert = stored.info.get("certificate")
        if cert is None:
            raise NotAllowedInState(
                f"request {request_id} has no certificate yet (state {stored.state}): "
                f"`recctl delete --request-id {request_id}` runs it and writes one"
            )
        path = Path(cert["path"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RecdError(f"{path}: cannot read the certificate: {exc.strerror}") from exc
        digest = hashlib.sha256(data).hexdigest()
        if digest != cert["sha256"]:
            raise RecdError(
                f"{path} does not match the digest audited in entry #{cert['seq']} "
                f"({cert['sha256']}): it was altered after recd wrote it"
            )
        return Certificate(data.decode("utf-8"), digest, path, int(cert["seq"]))

    def _write_certificate(
        self, stored: StoredRequest, items: list[RequestItem], now: datetime
    ) -> Certificate:
        document = certificate_document(stored, items, self.config.licences, now)
        text = json_text(document)
        data = text.encode("utf-8")
        digest = hashlib.sha256(data).hexdigest()
        path = self.certificates / f"{stored.id}.json"
        path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        durable.write_atomically(path, data, CERTIFICATE_MODE)
        details = {"sha256": digest, "path": str(path), "state": str(stored.state),
                   **count(items)}  # fmt: skip
        (entry,) = self.audit.append([AuditDraft("request.certificate", stored.id, details)], now)
        return Certificate(text, digest, path, entry.seq)

    # -- helpers ------------------------------------------------------------------------------

    def _get(self, request_id: str) -> StoredRequest:
        stored = self.catalogue.request(request_id)
        if stored is None:
            raise NotFound(f"no request {request_id} (see `recctl request ls`)")
        return stored

    def _update(
        self,
        stored: StoredRequest,
        state: RequestState | None = None,
        *,
        info: dict[str, Any] | None = None,
    ) -> StoredRequest:
        new = replace(
            stored,
            state=stored.state if state is None else state,
            info=stored.info | (info or {}),
            updated=self.clock.now(),
        )
        self.catalogue.put_request(new)
        return new

    def _refused(self, subject: str, step: str, why: str, actor: Actor) -> None:
        details = {"step": step, "reason": why, **actor.audit}
        self.audit.append(
            [AuditDraft("request.refused", subject, details, actor.name)], self.clock.now()
        )
        logger.warning("request %s: %s refused for %s: %s", subject, step, actor.name, why)


def _check_document(stored: StoredRequest) -> None:
    """A request rebuilt without its document (an older audit log) is not approved or run
    until its file is registered again, checked against the audited digest."""
    if stored.info.get("document_missing"):
        raise NotAllowedInState(
            f"request {stored.id} was rebuilt from an audit log written by an older recd, "
            "which does not hold the request document (its reason and signature): register "
            f"its file again (recctl request add --file FILE; recd checks it against the audited "
            f"digest {stored.digest}), then approve or run it"
        )


def is_whole_licence(stored: StoredRequest) -> bool:
    """Whether a registered request is for every recording of its licence (``"all": true``);
    requests registered before ``all`` existed never are."""
    scope = stored.document.get("scope")
    return isinstance(scope, Mapping) and scope.get("all") is True


def _item(rec: Recording, roots: Any, holds: Any, now: datetime) -> RequestItem:
    base = RequestItem(
        rec.id,
        ItemOutcome.PENDING,
        location=location_of(roots, rec),
        licence=rec.classification.licence,
        size=rec.size,
    )
    if rec.state is State.ERASED:
        return replace(base, outcome=ItemOutcome.GONE, note="already erased before this run")
    if rec.state is State.MISSING:
        return replace(
            base, outcome=ItemOutcome.GONE, note="missing: no longer where it was indexed"
        )
    if rec.held:
        return replace(base, outcome=ItemOutcome.HELD, holds=holding(holds, rec),
                       note="kept by a legal hold")  # fmt: skip
    if rec.not_before is not None and rec.not_before > now:
        # A hold's release may be a mistake: nothing it kept is erased within the grace.
        note = f"released from a legal hold: not erased before {format_human_time(rec.not_before)}"
        return replace(base, outcome=ItemOutcome.HELD, note=note + " (holds.release_grace)")
    return base


#: What an S3 erase's audit entries add, kept in the certificate: the bucket and key, every
#: version and delete marker deleted (data versions with their SHA-256), the counts, and the
#: confirmation listing's result.
OBJECT_DETAILS = (
    "bucket", "key", "versions", "deleted_versions", "deleted_delete_markers", "confirmed",
)  # fmt: skip


def erased_item(item: RequestItem, entry: AuditEntry) -> RequestItem:
    """``item`` erased, as its ``erase.done`` entry says (from a run, or found by a resume)."""
    d = entry.details
    return replace(
        item,
        outcome=ItemOutcome.ERASED,
        sha256=d.get("sha256"),
        method=d.get("method"),
        effective=d.get("effective"),
        ineffective_reason=d.get("ineffective_reason"),
        time=parse_time(entry.time),
        audit_seq=entry.seq,
        s3=object_part(d),
    )


def object_part(details: Mapping[str, Any]) -> dict[str, Any] | None:
    """The S3 part of an ``erase.done`` entry's details; None for a file."""
    if "bucket" not in details:
        return None
    return {k: details[k] for k in OBJECT_DETAILS if k in details}


def count(items: Iterable[RequestItem]) -> dict[str, int]:
    counts = dict.fromkeys(("erased", "held", "failed", "gone", "pending"), 0)
    for item in items:
        counts[str(item.outcome)] += 1
    return counts


def _by(stored: StoredRequest) -> str:
    info = stored.info
    if "approved_by" in info:
        return f" (approved by {info['approved_by']} at {_shown(info['approved_at'])})"
    signed = info.get("signed_by") or {}
    return f" (signed by {signed.get('name')} <{signed.get('email')}>)"


def _outcomes(
    items: Iterable[RequestItem],
) -> dict[str, tuple[ItemOutcome, tuple[str, ...], str | None]]:
    """What a certificate says of each recording: its outcome and the holds or note why."""
    return {i.recording_id: (i.outcome, i.holds, i.note) for i in items}


def _shown(stored_time: str) -> str:
    """A time the request's info keeps (to the microsecond) as a message shows it."""
    return format_human_time(parse_time(stored_time))


def json_text(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def certificate_document(
    stored: StoredRequest, items: list[RequestItem], licences: Any, now: datetime
) -> dict[str, Any]:
    """The deletion certificate: what was asked, who verified it, what became of each recording
    in scope, and the audit entries to check it against. No audio, nothing the request and the
    catalogue do not hold."""
    doc = stored.document
    info = stored.info
    licence = licences.get(stored.licence)
    verification: dict[str, Any] = {
        "method": info["verification"],
        "registered_by": info["registered_by"],
        "registered_uid": info["registered_uid"],
        "registered_at": info["registered_at"],
    }
    if "approved_by" in info:
        verification |= {
            "approved_by": info["approved_by"],
            "approved_uid": info["approved_uid"],
            "approved_at": info["approved_at"],
        }
    if "signed_by" in info:
        verification["signed_by"] = info["signed_by"]
    erased, skipped, gone = [], [], []
    seqs = [info.get(k) for k in ("registered_seq", "approved_seq", "executed_seq")]
    for item in items:
        entry: dict[str, Any] = {
            "id": item.recording_id,
            **(location_details(item.location) if item.location else {"location": None}),
            "licence": item.licence,
            "size": item.size,
        }
        if item.outcome is ItemOutcome.ERASED:
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
            erased.append(entry)
            seqs.append(item.audit_seq)
        elif item.outcome is ItemOutcome.GONE:
            gone.append(entry | {"note": item.note})
        else:
            entry["reason"] = "legal hold" if item.holds else item.note
            if item.holds:
                entry["held_by"] = list(item.holds)
            if item.audit_seq is not None:
                entry["audit_seq"] = item.audit_seq
            skipped.append(entry)
    counts = count(items)
    return {
        "certificate": "recd deletion certificate",
        "format": 1,
        "issued_at": format_time(now),
        "issued_by": f"recd {__version__} on {socket.gethostname()}",
        "request": {
            "id": stored.id,
            "licence": stored.licence,
            "licence_name": None if licence is None else licence.name,
            "requested_by": doc["requested_by"],
            "received": doc["received"],
            "reason": doc["reason"],
            "evidence": doc["evidence"],
            "scope": doc["scope"],
            "digest": stored.digest,
        },
        "verification": verification,
        "state": str(stored.state),
        "summary": {
            "erased": counts["erased"],
            "held": counts["held"],
            "failed": counts["failed"],
            "already_gone": counts["gone"],
            "bytes_erased": sum(i.size or 0 for i in items if i.outcome is ItemOutcome.ERASED),
        },
        "erased": erased,
        "skipped": skipped,
        "already_gone": gone,
        "audit_seqs": sorted(s for s in seqs if isinstance(s, int)),
    }


__all__ = ["Certificate", "Requests", "SignatureRefused", "certificate_document"]
