"""Placing, releasing and expiring legal holds (SPEC section 5); every change audited, in
one transaction with its entry on a shared catalogue (``recd.ports.together``).

The catalogue marks what a hold matches, now and as later recordings are indexed; the sweep
and request runs never see a held recording, and the catalogue checks again when an erase's
intent is recorded, so a hold placed while a sweep runs wins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from recd.config.load import Config
from recd.core.audit import AuditDraft
from recd.core.holds import Hold
from recd.core.requests import scope_json
from recd.core.scope import Scope
from recd.core.times import format_human_time, format_time
from recd.errors import NotAllowedInState, NotFound, UsageError
from recd.ports.audit import AuditLog
from recd.ports.clock import Clock
from recd.ports.legal import HoldCatalogue
from recd.ports.records import RECD, Actor

logger = logging.getLogger(__name__)

MAX_TEXT = 2000


@dataclass(frozen=True, slots=True)
class Released:
    hold: Hold
    released: int  # recordings no other hold keeps
    due_from: datetime  # none of them is erased before this


class Holds:
    def __init__(
        self, config: Config, catalogue: HoldCatalogue, audit: AuditLog, clock: Clock
    ) -> None:
        self.config = config
        self.catalogue = catalogue
        self.audit = audit
        self.clock = clock

    def place(
        self, scope: Scope, *, case: str, reason: str, until: datetime | None, actor: Actor
    ) -> tuple[Hold, int]:
        """Store the hold and hold every recording it matches; returns it and how many."""
        now = self.clock.now()
        _text("case", case)
        _text("reason", reason)
        if until is not None and until <= now:
            raise UsageError(f"until: {format_human_time(until)} has already passed")
        self._check_licence(scope)
        draft = Hold("", scope, case, reason, now, actor.name, until)
        with self.catalogue.together():
            hold, matched = self.catalogue.place_hold(draft)
            details = {
                "licence": scope.licence,
                "case": case,
                "reason": reason,
                "scope": scope_json(scope),
                "whole_licence": scope.empty,
                "until": None if until is None else format_time(until),
                "held": matched,
                **actor.audit,
            }
            self.audit.append([AuditDraft("hold.placed", hold.id, details, actor.name)], now)
        logger.warning(
            "legal hold %s placed by %s on licence %s (case %s): %d recordings held%s",
            hold.id,
            actor.name,
            scope.licence,
            case,
            matched,
            "; the whole licence" if scope.empty else "",
        )
        return hold, matched

    def release(self, hold_id: str, *, reason: str, actor: Actor) -> Released:
        _text("reason", reason)
        hold = self.catalogue.hold(hold_id)
        if hold is None:
            raise NotFound(f"no legal hold {hold_id} (see `recctl hold ls --all`)")
        if not hold.active:
            raise NotAllowedInState(
                f"hold {hold_id} was already {hold.state} at {_when(hold.released_at)}"
                f" by {hold.released_by}"
            )
        return self._release(hold, reason, actor, expired=False)

    def expire(self) -> list[Released]:
        """Release every active hold whose ``until`` has come (recd is the actor)."""
        now = self.clock.now()
        return [
            self._release(h, f"expired: held until {_when(h.until)}", RECD, expired=True)
            for h in self.catalogue.holds()
            if h.expired_at(now)
        ]

    def _release(self, hold: Hold, reason: str, actor: Actor, *, expired: bool) -> Released:
        now = self.clock.now()
        due_from = now + self.config.holds.release_grace
        with self.catalogue.together():
            released = self.catalogue.release_hold(
                hold, at=now, by=actor.name, reason=reason, expired=expired, not_before=due_from
            )
            details = {
                "licence": hold.licence,
                "case": hold.case,
                "reason": reason,
                "expired": expired,
                "released": released,
                "due_from": format_time(due_from),
                **({} if actor is RECD else actor.audit),
            }
            self.audit.append([AuditDraft("hold.released", hold.id, details, actor.name)], now)
        logger.warning(
            "legal hold %s %s by %s: %d recordings no longer held, none erased before %s",
            hold.id,
            "expired" if expired else "released",
            actor.name,
            released,
            format_human_time(due_from),
        )
        stored = self.catalogue.hold(hold.id)
        assert stored is not None
        return Released(stored, released, due_from)

    def _check_licence(self, scope: Scope) -> None:
        licence = scope.licence
        known = licence in self.config.licences or licence in self.catalogue.licences()
        if not known:
            raise NotFound(
                f"licence {licence} is neither in licences.d nor on any recording recd has "
                "indexed; check the spelling (`recctl policy` lists the licences)"
            )
        for rid in sorted(scope.recordings):
            rec = self.catalogue.get(rid)
            if rec is not None and rec.classification.licence != licence:
                raise UsageError(
                    f"recording {rid} belongs to licence {rec.classification.licence or '(none)'},"
                    f" not {licence}"
                )


def _text(name: str, value: str) -> None:
    if not value.strip():
        raise UsageError(f"{name}: must not be empty")
    if len(value) > MAX_TEXT:
        raise UsageError(f"{name}: at most {MAX_TEXT} characters")


def _when(value: datetime | None) -> str:
    """A time for a person to read (a message, a reason): to the second."""
    return "-" if value is None else format_human_time(value)
