"""Request runs (SPEC section 6): preview, execute, resume; the base of the request use cases.

A run erases what the request's scope matches now (a rule, like a hold's: recordings indexed
later that match are erased by a later run), never a held recording, each by the SPEC section 4
rules after reading its SHA-256 (``recd.service.plan``), in audited batches
(``recd.service.batch``); then it writes the deletion certificate and audits its digest. A run
interrupted by a signal or a crash is ``executing``: its items stay ``pending`` until an
``erase.done`` in the audit log, found from the run's starting offset, settles them, and the
daemon runs it again at start (``resumable``). Every step and refusal is audited with the
caller's uid; a run that would change nothing writes and audits nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from recd.core.audit import AuditDraft, AuditEntry
from recd.core.holds import Hold, holding
from recd.core.model import Mode, Recording, State
from recd.core.replayrequests import object_part
from recd.core.requestinfo import CertificateRef, RequestInfo
from recd.core.requests import parse_request
from recd.core.requeststate import ItemOutcome, RequestItem, RequestState
from recd.core.times import format_human_time, format_time, parse_time
from recd.errors import NotAllowedInState, NotFound, RecdError
from recd.ports.legal import RunCatalogue
from recd.ports.records import Actor, StoredRequest
from recd.service import EraseUseCase
from recd.service.batch import Plan, run_batch
from recd.service.certificates import Certificate, count, read_certificate, write_certificate
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

MAX_SCOPE = 1_000_000  # recordings one request may cover
RUNNABLE = (
    RequestState.VERIFIED,
    RequestState.EXECUTING,
    RequestState.PARTIAL,
    RequestState.COMPLETED,
)


class RequestRuns(EraseUseCase[RunCatalogue]):
    """Runs of registered requests, and what every request use case shares: finding a request,
    storing its new state, auditing a refusal."""

    def preview(self, request_id: str) -> tuple[StoredRequest, list[RequestItem]]:
        """What a run would do now: nothing is changed, nothing audited. A request still
        waiting for its approval (``received``) is previewed too, so that the approver sees
        what it erases; a rejected one is refused."""
        stored = self._get(request_id)
        check_document(stored)
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

    def resumable(self) -> list[StoredRequest]:
        """The runs a crash or a stop interrupted that can resume: not one of a request
        rebuilt without its document (an older audit log), which waits for its file."""
        out = []
        for stored in self.catalogue.requests(RequestState.EXECUTING):
            if stored.info.document_missing:
                why = "its document is not in the audit log; register its file again"
                logger.error("request %s: its interrupted run cannot resume: %s", stored.id, why)
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
        runs = (stored.info.runs or 0) + 1
        offset = self.audit.end_offset()
        with self.catalogue.together():
            (started,) = self.audit.append(
                [AuditDraft("request.started", rid, {"run": runs, **actor.audit}, actor.name)], now
            )
            stored = self._update(
                stored,
                RequestState.EXECUTING,
                info=replace(stored.info, runs=runs, run_offset=offset, started_seq=started.seq),
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
            read_certificate(stored)
        except RecdError:  # lost or altered: a run writes it again (and audits its digest)
            return False
        return True

    def _check_runnable(self, stored: StoredRequest) -> None:
        check_document(stored)
        if stored.state in RUNNABLE:
            return
        if stored.state is RequestState.RECEIVED:
            raise NotAllowedInState(
                f"request {stored.id} is not verified (state received): a second administrator "
                f"must run `recctl request approve {stored.id}` first"
            )
        rejected = stored.info.rejected
        raise NotAllowedInState(
            f"request {stored.id} was rejected by {rejected and rejected.by}: "
            f"{rejected and rejected.reason}"
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
            note = "a legal hold was placed during the run"
            out.append(replace(items[plan.rec.id], outcome=ItemOutcome.HELD, holds=held, note=note))
            self.telemetry.erased("request", "skipped", plan.rec.size, None)
        for done in result.done:
            d = done.entry.details
            out.append(erased_item(items[done.plan.rec.id], done.entry))
            self.telemetry.erased("request", "done", done.plan.rec.size, None)
            logger.info("erased %s for request %s", d["location"], stored.id)
        for failed in result.failed:
            note = f"erase failed: {failed.why}"
            item = items[failed.plan.rec.id]
            out.append(
                replace(item, outcome=ItemOutcome.FAILED, note=note, audit_seq=failed.entry.seq)
            )
            self.telemetry.erased("request", "failed", failed.plan.rec.size, None)
            location = failed.plan.details["location"]
            logger.error("erase of %s for request %s failed: %s", location, stored.id, failed.why)
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
                out.append(replace(item, outcome=ItemOutcome.FAILED, note=self._elsewhere(rec)))
            elif (blocked := self.erasers[rec.source].blocked) is not None:
                note = f"source {rec.source}: root not writable: {blocked}"
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

    def _elsewhere(self, rec: Recording) -> str:
        """Why a recording of a source without an eraser here was not erased, and what to do:
        a source of other hosts (``nodes``, or on a shared catalogue any source this host does
        not configure) is erased by running the request again through one of them (a partial
        request may be run again)."""
        shared = self.config.catalogue.shared
        if shared or any(s.name == rec.source for s in self.config.sources):
            return (
                f"source {rec.source} is not served by this host ({self.config.daemon.node}): "
                "run the request again through a host that serves it"
            )
        return f"source {rec.source} is not configured"

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
        for entry in self.audit.read_from(stored.info.run_offset or 0):
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
        with self.catalogue.together():
            (entry,) = self.audit.append(
                [AuditDraft("request.executed", stored.id, details, actor.name)], now
            )
            stored = self._update(
                stored,
                state,
                info=replace(stored.info, executed_at=format_time(now), executed_seq=entry.seq),
            )
        with self.catalogue.together():  # the file is written before the chain is locked
            certificate = write_certificate(self, stored, items, now)
            stored = self._update(
                stored,
                info=replace(
                    stored.info,
                    certificate=CertificateRef(
                        str(certificate.path), certificate.sha256, certificate.seq
                    ),
                ),
            )
        tally = "{erased} erased, {held} held, {failed} failed, {gone} already gone".format(
            **counts
        )
        logger.warning(
            "request %s %s: %s; certificate %s", stored.id, stored.state, tally, certificate.path
        )
        return stored

    def certificate(self, request_id: str) -> Certificate:
        """The certificate of the request's last run, checked against its audited digest."""
        return read_certificate(self._get(request_id))

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
        info: RequestInfo | None = None,
    ) -> StoredRequest:
        new = replace(
            stored,
            state=stored.state if state is None else state,
            info=stored.info if info is None else info,
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


def check_document(stored: StoredRequest) -> None:
    """A request rebuilt without its document (an older audit log) is not approved or run
    until its file is registered again, checked against the audited digest."""
    if stored.info.document_missing:
        raise NotAllowedInState(
            f"request {stored.id} was rebuilt from an audit log written by an older recd, "
            "which does not hold the request document (its reason and signature): register "
            f"its file again (recctl request add --file FILE; recd checks it against the audited "
            f"digest {stored.digest}), then approve or run it"
        )


def _item(
    rec: Recording, roots: Mapping[str, str], holds: Sequence[Hold], now: datetime
) -> RequestItem:
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
        held = holding(holds, rec)
        return replace(base, outcome=ItemOutcome.HELD, holds=held, note="kept by a legal hold")
    if rec.not_before is not None and rec.not_before > now:
        # A hold's release may be a mistake: nothing it kept is erased within the grace.
        note = f"released from a legal hold: not erased before {format_human_time(rec.not_before)}"
        return replace(base, outcome=ItemOutcome.HELD, note=note + " (holds.release_grace)")
    return base


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


def _outcomes(
    items: Iterable[RequestItem],
) -> dict[str, tuple[ItemOutcome, tuple[str, ...], str | None]]:
    """What a certificate says of each recording: its outcome and the holds or note why."""
    return {i.recording_id: (i.outcome, i.holds, i.note) for i in items}
