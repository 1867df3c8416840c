"""A catalogue that never saw the audit log gets its legal holds, requests and breakers back
from it (SPEC section 8).

At start (the daemon, `recd --once`), before recovery, a scan or a sweep: a catalogue with no
audit mark (``catalog.db`` was missing, 0 bytes, or new) beside an audit log with entries is
given every hold the log places and releases (``recd.core.rebuild``), with the same ids, in one
transaction, before anything can be erased; then every request (approvals, runs, items,
certificate) and breaker (``recd.service.rebuildrequests``). The rebuild is audited
(``catalogue.rebuilt``) and logged; only then is the catalogue marked as reflecting the log, so
a crash at any point before that rebuilds again on the next start (restoring twice is
harmless).

Recordings are not in the log's hold entries: the scan after the rebuild indexes them, and the
catalogue holds (or, for a released hold still in its grace, floors) what each hold's scope
matches, as for any recording indexed later.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recd.config import Config
from recd.core.audit import AuditDraft
from recd.core.rebuild import Replayed, replay_holds
from recd.ports import AuditLog, AuditMark, Catalogue, Clock
from recd.service.rebuildrequests import RestoredRequests, restore_requests

logger = logging.getLogger(__name__)

#: Why a catalogue is rebuilt: the file was not there, was 0 bytes, has no audit mark, or
#: was corrupt (moved aside as ``catalog.db.corrupt-<time>``, a new one started).
MISSING = "missing"
EMPTY = "empty"
UNMARKED = "unmarked"
CORRUPT = "corrupt"

_SAID = {
    MISSING: "was missing",
    EMPTY: "was empty (0 bytes)",
    UNMARKED: "had no record of the audit log",
    CORRUPT: "was corrupt",
}


@dataclass(frozen=True, slots=True)
class Rebuilt:
    why: str
    replayed: Replayed
    held: int  # present recordings held right after (0 before the first scan)
    requests: RestoredRequests | None = None  # requests and breakers, from the same log


class Rebuild:
    """Two steps, so that the holds are back before recd writes anything and the audit entry
    comes after the start's own checks (the clock's, against the last entry):

    ``restore`` (no audit write): when the catalogue has no audit mark and the log has
    entries, store the log's holds in one transaction. ``record``: audit the rebuild, log it
    and mark the catalogue. A crash or an audit outage between the two restores again next
    time; nothing is erased meanwhile that a hold keeps.
    """

    def __init__(
        self,
        config: Config,
        catalogue: Catalogue,
        audit: AuditLog,
        clock: Clock,
        found: str | None,
        found_details: Mapping[str, Any] | None = None,
    ) -> None:
        """``found``: ``MISSING`` or ``EMPTY`` when the catalogue file was so before it was
        opened, ``CORRUPT`` when it was moved aside (None: it was there); ``found_details``
        go in the audit entry (for ``CORRUPT``: ``aside``, the name it was moved to, and
        ``error``)."""
        self.config = config
        self.catalogue = catalogue
        self.audit = audit
        self.clock = clock
        self.found = found
        self.found_details = dict(found_details or {})
        self._done: Rebuilt | None = None
        self._checked = False

    def restore(self) -> Rebuilt | None:
        """The holds back in the catalogue, if it never saw the log; None if it did."""
        if self._checked:
            return self._done
        self._checked = True
        if self.catalogue.audit_mark() is not None:
            return None
        if self.audit.last() is None:  # nothing to rebuild from: both start here
            self.catalogue.set_audit_mark(AuditMark(0, None))
            return None
        replayed = replay_holds(self.audit.read_all(), self.config.holds.release_grace)
        held = self.catalogue.restore_holds(replayed.holds)
        requests = restore_requests(self.catalogue, self.audit.read_all())
        self._done = Rebuilt(self.found or UNMARKED, replayed, held, requests)
        return self._done

    @property
    def pending(self) -> bool:
        """Restored but not yet audited."""
        return self._done is not None

    def record(self, extra: Mapping[str, Any] | None = None) -> Rebuilt | None:
        """Audit (``catalogue.rebuilt``), log and mark what ``restore`` did; ``extra``: more
        details (the daemon's unconfirmed clock). An append that fails raises; then call it
        again once the log is writable."""
        done = self.restore()
        if done is None:
            return None
        replayed, requests = done.replayed, done.requests
        problems = [*replayed.problems, *(requests.problems if requests else ())]
        details = {
            "why": done.why,
            "holds": len(replayed.holds),
            "active": replayed.active,
            "released": replayed.released,
            "last_seq": replayed.last_seq,
            "last_hash": replayed.last_hash,
            **self.found_details,
            **(requests.details() if requests else {}),
            "problems": problems,
            **(extra or {}),
        }
        draft = AuditDraft("catalogue.rebuilt", "catalog.db", details)
        entries = self.audit.append([draft], self.clock.now())
        self.catalogue.set_audit_mark(AuditMark(entries[-1].seq, entries[-1].hash))
        self._done = None
        counts = requests.details() if requests else {}
        logger.warning(
            "%s %s; rebuilt %d legal holds (%d active, %d released), %d requests (%d "
            "certificates found) and %d breakers (%d tripped) from the audit log (seq 1-%d) "
            "before erasing anything",
            self.config.daemon.state_dir / "catalog.db", _SAID[done.why], len(replayed.holds),
            replayed.active, replayed.released, counts.get("requests", 0),
            counts.get("certificates", 0), counts.get("breakers", 0),
            counts.get("breakers_tripped", 0), replayed.last_seq,
        )  # fmt: skip
        for problem in problems:
            logger.warning("audit log, rebuilding the catalogue: %s", problem)
        return done
