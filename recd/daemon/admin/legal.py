"""The admin commands of legal holds and early-deletion requests (SPEC sections 5 and 6).

Listings and details are read on the connection's thread from a read-only catalogue; every
change runs on the loop. A request run can take long (each recording is hashed, then
overwritten): the loop runs it in batches between other work, and the reply waits for the end.
Result shapes are documented in ``recd.protocol``.
"""

from __future__ import annotations

import os
from concurrent.futures import Future
from typing import Protocol

from recd.core.holds import Hold
from recd.core.requests import scope_from_json, scope_json
from recd.core.requeststate import ItemOutcome, RequestItem, RequestState
from recd.daemon.admin.args import Args, flag, opt_text, opt_time, text
from recd.daemon.admin.dispatch import Handler, Loop
from recd.daemon.admin.records import JsonObject, iso
from recd.daemon.control import Caller, admin_gid
from recd.errors import NotFound, UsageError
from recd.ports.reader import CatalogueReader
from recd.ports.records import Actor, StoredRequest
from recd.protocol import Reply
from recd.service.certificates import count
from recd.service.holds import Holds, Released
from recd.service.requests import Requests

Run = tuple[StoredRequest, list[RequestItem]]


class LegalLoop(Loop, Protocol):
    def holds(self) -> Holds:
        """The hold use cases (on the loop only)."""

    def requests(self) -> Requests:
        """The request use cases (on the loop only)."""

    def holds_changed(self) -> None:
        """A hold was placed or released: mirror holds to S3 where configured, and sweep at
        the next wake-up (recordings may be due now)."""

    def run_request(self, request_id: str, actor: Actor) -> Future[Run]:
        """Start or continue a run (on the loop); the future ends with it."""


def actor_of(caller: Caller, admin_group: str) -> Actor:
    """An administrator is root, recd's own user (who may use the socket, and owns the state
    anyway) or a member of ``admin_group``, as the admin socket authorises callers."""
    gid = admin_gid(admin_group)
    member = gid is not None and gid in (caller.gid, *caller.groups)
    return Actor(caller.user, caller.uid, admin=caller.uid in (0, os.geteuid()) or member)


def hold_json(hold: Hold, held: int) -> JsonObject:
    return {
        "id": hold.id,
        "licence": hold.licence,
        "case": hold.case,
        "reason": hold.reason,
        "scope": scope_json(hold.scope),
        "whole_licence": hold.scope.empty,
        "state": str(hold.state),
        "placed_at": iso(hold.placed_at),
        "placed_by": hold.placed_by,
        "until": iso(hold.until),
        "released_at": iso(hold.released_at),
        "released_by": hold.released_by,
        "release_reason": hold.release_reason,
        "held": held,
    }


def request_json(stored: StoredRequest, items: list[RequestItem]) -> JsonObject:
    doc, info = stored.document, stored.info
    cert, signed = info.certificate, info.signed_by
    approved, rejected = info.approved, info.rejected
    scope = scope_from_json(
        stored.licence, doc.get("scope") or {}, allow_empty=True, allow_all=True
    )
    missing = {"document_missing": True} if info.document_missing else {}
    return {
        "id": stored.id,
        "licence": stored.licence,
        "state": str(stored.state),
        **missing,  # rebuilt from an older audit log without the document: waits for its file
        "requested_by": doc.get("requested_by"),
        "received": doc.get("received"),
        "reason": doc.get("reason"),
        "evidence": doc.get("evidence"),
        "scope": scope_json(scope),
        "whole_licence": scope.whole_licence,
        "verification": info.verification,
        "registered_at": info.registered.at,
        "registered_by": info.registered.by,
        "approved_at": approved and approved.at,
        "approved_by": approved and approved.by,
        "signed_by": signed and {"name": signed.name, "email": signed.email, "key": signed.key},
        "rejected_at": rejected and rejected.at,
        "rejected_by": rejected and rejected.by,
        "rejected_reason": rejected and rejected.reason,
        "executed_at": info.executed_at,
        "certificate": cert and {"path": cert.path, "sha256": cert.sha256, "seq": cert.seq},
        "counts": count(items),
    }


def item_json(item: RequestItem, preview: bool = False) -> JsonObject:
    pending = preview and item.outcome is ItemOutcome.PENDING
    outcome = "erase" if pending else str(item.outcome)
    return {
        "id": item.recording_id,
        "location": item.location,
        "licence": item.licence,
        "size": item.size,
        "outcome": outcome,
        "holds": list(item.holds),
        "note": item.note,
    }


class Legal:
    """The handlers; ``commands`` is merged into ``Admin.commands``."""

    def __init__(self, loop: LegalLoop) -> None:
        self.loop = loop
        self.commands: dict[str, Handler] = {
            "hold place": self.hold_place,
            "hold release": self.hold_release,
            "hold ls": self.hold_ls,
            "hold show": self.hold_show,
            "request add": self.request_add,
            "request approve": self.request_approve,
            "request reject": self.request_reject,
            "request ls": self.request_ls,
            "request show": self.request_show,
            "request preview": self.request_preview,
            "request execute": self.request_execute,
            "request certificate": self.request_certificate,
        }

    def _actor(self, caller: Caller) -> Actor:
        return actor_of(caller, self.loop.config.daemon.admin_group)

    # -- holds --------------------------------------------------------------------------------

    def hold_place(self, args: Args, caller: Caller) -> Reply:
        licence = text(args, "licence")
        scope = scope_from_json(
            licence,
            {k: args.get(k) for k in ("recordings", "call_ids", "party", "from", "to")},
            key="",
            allow_empty=True,
        )
        case, reason = text(args, "case"), text(args, "reason")
        until = opt_time(args, "until")
        actor = self._actor(caller)

        def place() -> tuple[Hold, int]:
            placed = self.loop.holds().place(
                scope, case=case, reason=reason, until=until, actor=actor
            )
            self.loop.holds_changed()
            return placed

        hold, held = self.loop.call_soon(place)
        return Reply.success(hold_json(hold, held))

    def hold_release(self, args: Args, caller: Caller) -> Reply:
        hold_id, reason = text(args, "hold"), text(args, "reason")
        actor = self._actor(caller)

        def release() -> Released:
            released = self.loop.holds().release(hold_id, reason=reason, actor=actor)
            self.loop.holds_changed()
            return released

        released = self.loop.call_soon(release)
        result = hold_json(released.hold, 0)
        result |= {"released": released.released, "due_from": iso(released.due_from)}
        return Reply.success(result)

    def hold_ls(self, args: Args, caller: Caller) -> Reply:
        everything = flag(args, "all")
        with self.loop.reader() as reader:
            holds = reader.holds(everything=everything)
            rows = [hold_json(h, reader.held_count(h.scope) if h.active else 0) for h in holds]
        return Reply.success(rows)

    def hold_show(self, args: Args, caller: Caller) -> Reply:
        hold_id = text(args, "hold")
        with self.loop.reader() as reader:
            hold = reader.hold(hold_id)
            if hold is None:
                raise NotFound(f"no legal hold {hold_id} (see `recctl hold ls --all`)")
            held = reader.held_count(hold.scope) if hold.active else 0
        return Reply.success(hold_json(hold, held))

    # -- requests -----------------------------------------------------------------------------

    def request_add(self, args: Args, caller: Caller) -> Reply:
        document = args.get("document")
        actor = self._actor(caller)
        stored, existing = self.loop.call_soon(
            lambda: self.loop.requests().register(document, actor)
        )
        result = request_json(stored, [])
        if existing:
            result["existing"] = True
        return Reply.success(result)

    def request_approve(self, args: Args, caller: Caller) -> Reply:
        rid, actor = text(args, "request"), self._actor(caller)
        stored = self.loop.call_soon(lambda: self.loop.requests().approve(rid, actor))
        return Reply.success(request_json(stored, []))

    def request_reject(self, args: Args, caller: Caller) -> Reply:
        rid, reason, actor = text(args, "request"), text(args, "reason"), self._actor(caller)
        stored = self.loop.call_soon(lambda: self.loop.requests().reject(rid, reason, actor))
        return Reply.success(request_json(stored, []))

    def request_ls(self, args: Args, caller: Caller) -> Reply:
        state = _request_state(args)
        with self.loop.reader() as reader:
            rows = [request_json(r, reader.items(r.id)) for r in reader.requests(state)]
        return Reply.success(rows)

    def request_show(self, args: Args, caller: Caller) -> Reply:
        rid = text(args, "request")
        with self.loop.reader() as reader:
            stored = _found(reader, rid)
            items = reader.items(rid)
        result = request_json(stored, items)
        result["items"] = [item_json(i) for i in items]
        return Reply.success(result)

    def request_preview(self, args: Args, caller: Caller) -> Reply:
        rid = text(args, "request")
        stored, items = self.loop.call_soon(lambda: self.loop.requests().preview(rid))
        pending = [i for i in items if i.outcome is ItemOutcome.PENDING]
        return Reply.success(
            {
                "request": request_json(stored, items),
                "items": [item_json(i, preview=True) for i in items],
                "erase": len(pending),
                "bytes": sum(i.size or 0 for i in pending),
                "held": sum(1 for i in items if i.outcome is ItemOutcome.HELD),
                "gone": sum(1 for i in items if i.outcome is ItemOutcome.GONE),
            }
        )

    def request_execute(self, args: Args, caller: Caller) -> Reply:
        rid, actor = text(args, "request"), self._actor(caller)
        confirm = opt_text(args, "confirm_all")
        self.loop.call_soon(lambda: self.loop.requests().check_confirmed(rid, confirm, actor))
        future = self.loop.call_soon(lambda: self.loop.run_request(rid, actor))
        stored, items = future.result()
        return Reply.success(
            {"request": request_json(stored, items), "items": [item_json(i) for i in items]}
        )

    def request_certificate(self, args: Args, caller: Caller) -> Reply:
        rid = text(args, "request")
        cert = self.loop.call_soon(lambda: self.loop.requests().certificate(rid))
        return Reply.success(
            {"text": cert.text, "sha256": cert.sha256, "path": str(cert.path), "seq": cert.seq}
        )


def _found(reader: CatalogueReader, rid: str) -> StoredRequest:
    stored = reader.request(rid)
    if stored is None:
        raise NotFound(f"no request {rid} (see `recctl request ls`)")
    return stored


def _request_state(args: Args) -> RequestState | None:
    value = args.get("state")
    if value is None:
        return None
    try:
        return RequestState(value)
    except ValueError:
        states = ", ".join(s.value for s in RequestState)
        raise UsageError(f"state: one of {states}; not {value!r}") from None
