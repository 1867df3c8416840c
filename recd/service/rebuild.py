"""The catalogue against the audit log at start: rebuilt, replayed, or erasing stopped (SPEC 8).

At start (the daemon, `recd --once`), before recovery, a scan or a sweep, the audit log's chain
is checked from the catalogue's checkpoint, the closed segments beside it from the prints the
catalogue keeps of them (``recd.service.segcheck``: only segments new or changed since are
read), and the catalogue's audit mark looked up in the log (``recd.service.logcheck``). Then:

- no audit mark (``catalog.db`` was missing, 0 bytes, corrupt and moved aside, or new) beside
  a log with entries: every hold the log places and releases (``recd.core.rebuild``) is
  restored, same ids, then every request (approvals, runs, items, certificate) and breaker
  (``recd.service.rebuildrequests``), from the same read of the log (every segment);
- a mark behind the log's end (a catalogue restored from a backup, a crash before the mark
  moved): the entries after the mark are replayed over the catalogue's own holds, requests
  and breakers, with idempotent upserts (an entry the catalogue already reflects changes
  nothing);
- a mark ahead of the log, at an entry with another hash, a chain that does not verify, or a
  closed segment changed, gone or not linked to its neighbours:
  ``problem`` says why; nothing is replayed, and the caller erases nothing until an
  administrator acknowledges it.

Each rebuild is one transaction, audited (``catalogue.rebuilt``, with what was found) and
logged; only then is the catalogue marked as reflecting the log, so a crash at any point
before that rebuilds again on the next start (restoring a hold twice is harmless).

Recordings are not in the log's hold entries: the scan after the rebuild indexes them, and the
catalogue holds (or, for a released hold still in its grace, floors) what each hold's scope
matches, as for any recording indexed later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from recd.config.load import Config
from recd.core.audit import AuditDraft, AuditEntry
from recd.core.holds import Hold
from recd.core.logcheck import Finding
from recd.core.rebuild import PLACED, Replayed, replay_holds
from recd.core.text import plural
from recd.ports.audit import AuditLog
from recd.ports.clock import Clock
from recd.ports.marks import AuditMarkCatalogue, RebuildCatalogue
from recd.ports.records import AuditCheckpoint, AuditMark
from recd.service.logcheck import after_mark, check_chain, find_mark
from recd.service.rebuildrequests import RestoredRequests, restore_requests
from recd.service.segcheck import check_segments

logger = logging.getLogger(__name__)

#: Why a catalogue is rebuilt: the file was not there, was 0 bytes, has no audit mark, was
#: corrupt (moved aside as ``catalog.db.corrupt-<time>``, a new one started), or its mark is
#: behind the log's end.
MISSING = "missing"
EMPTY = "empty"
UNMARKED = "unmarked"
CORRUPT = "corrupt"
BEHIND = "behind"
WHYS = (MISSING, EMPTY, UNMARKED, CORRUPT, BEHIND)

_SAID = {
    MISSING: "was missing",
    EMPTY: "was empty (0 bytes)",
    UNMARKED: "had no record of the audit log",
    CORRUPT: "was corrupt",
    BEHIND: "was behind the audit log",
}

#: The actions a replay reads; the others are facts of the disk or the bucket, or reports
#: (an ``erase.*`` entry is read only for a request's items: reason ``request:<id>``).
REPLAYED = ("hold.", "request.", "breaker.")
ERASE = "erase."


@dataclass(frozen=True, slots=True)
class Rebuilt:
    why: str
    replayed: Replayed
    held: int  # present recordings held right after (0 before the first scan)
    mark_seq: int | None = None  # the entry the catalogue reflected (BEHIND), else None
    entries: int = 0  # entries the replay read (REPLAYED actions only)
    requests: RestoredRequests | None = None  # requests and breakers, from the same entries


class Rebuild:
    """Two steps, so that the holds are back before recd writes anything and the audit entry
    comes after the start's own checks (the clock's, against the last entry):

    ``restore`` (no audit write): check the log's chain (the live log from the checkpoint,
    the closed segments from their prints) and find the catalogue's mark in it
    (``problem`` says what is wrong, if anything); when the catalogue has no audit mark, or
    one behind the log's end, store what the log's entries (all, or those after the mark)
    say, in one transaction. ``record``: audit the rebuild, log it and mark the catalogue. A
    crash or an audit outage between the two restores again next time (idempotent); nothing
    is erased meanwhile that a hold keeps.
    """

    def __init__(
        self,
        config: Config,
        catalogue: RebuildCatalogue,
        audit: AuditLog,
        clock: Clock,
        found: str | None,
        progress: Callable[[str], None] = lambda status: None,
        found_details: Mapping[str, Any] | None = None,
    ) -> None:
        """``found``: ``MISSING`` or ``EMPTY`` when the catalogue file was so before it was
        opened, ``CORRUPT`` when it was moved aside (None: it was there). ``progress``: told
        (a ``STATUS=`` line) before a replay, and before closed audit segments are read.
        ``found_details`` go in the audit entry (for ``CORRUPT``: ``aside``, the name it was
        moved to, and ``error``)."""
        self.config = config
        self.catalogue = catalogue
        self.audit = audit
        self.clock = clock
        self.found = found
        self.found_details = dict(found_details or {})
        self.progress = progress
        self.problem: Finding | None = None  # erase nothing until acknowledged
        self.checked = 0  # entries whose chain was parsed and linked at start
        self.segments_read = 0  # closed segments read at start (new or changed since)
        self._done: Rebuilt | None = None
        self._checked = False
        self._seen: AuditMark | None = None  # the log's end when restore began to read it

    @property
    def path(self) -> str:
        return self.config.audit_place

    def restore(self) -> Rebuilt | None:
        """Check the log; restore what the catalogue lacks of it. None: nothing restored
        (up to date, or ``problem`` is set)."""
        if self._checked:
            return self._done
        self._checked = True
        mark = self.catalogue.audit_mark()
        state = check_chain(self.path, self.audit, self.catalogue.audit_checkpoint())
        self.checked = state.checked
        known = self.catalogue.audit_segments()
        closed = check_segments(self.path, self.audit, known, self.progress)
        self.segments_read = closed.verified
        lost = None if mark is None else find_mark(self.path, self.audit, mark)
        self.problem = state.problem or lost or closed.problem
        if self.problem is None and state.checkpoint is not None:
            self.catalogue.set_audit_checkpoint(state.checkpoint)
        if self.problem is None:
            self.catalogue.set_audit_segments(closed.prints)
        last = self._last()
        if last is None and mark is None:  # nothing to rebuild from: both start here
            self.catalogue.set_audit_mark(AuditMark(0, None, 0))
            return None
        start: tuple[Hold, ...] = ()
        if mark is None:
            why = self.found or UNMARKED
        elif lost is not None or mark.seq is None or last is None or last.seq <= mark.seq:
            return None  # up to date, or the log does not hold the catalogue's mark
        else:
            why, start = BEHIND, tuple(self.catalogue.holds(everything=True))
        status = f"rebuilding the catalogue from the audit log ({_SAID[why]})"
        if why != BEHIND:
            self.progress(status)  # before reading: the whole log is read
        read = _Read(after_mark(self.audit, mark))
        relevant = read.relevant()
        if why == BEHIND:
            if not relevant:  # only erasures and reports since (a crash): nothing to replay
                self.mark()
                return None
            self.progress(status)
        replayed = self._replay(relevant, start)
        replayed = replace(
            replayed,
            last_seq=read.last_seq,
            last_hash=read.last_hash,
            problems=(*read.dropped, *replayed.problems),
        )
        held = self.catalogue.restore_holds(replayed.holds)
        # Requests and breakers over the catalogue's own (none when it was lost), from the
        # same entries; idempotent upserts.
        requests = restore_requests(self.catalogue, relevant)
        mark_seq = None if mark is None else mark.seq
        self._done = Rebuilt(why, replayed, held, mark_seq, read.count, requests)
        return self._done

    def _last(self) -> AuditEntry | None:
        """The log's last entry, remembered (``_seen``) as how far this restore reads."""
        last = self.audit.last()
        if last is not None:
            self._seen = AuditMark(last.seq, last.hash, self.audit.end_offset())
        return last

    def _replay(self, entries: Sequence[AuditEntry], holds: Iterable[Hold]) -> Replayed:
        """The holds ``entries`` place and release, over ``holds`` (the catalogue's own when
        it is behind; none when it was lost)."""
        return replay_holds(entries, self.config.holds.release_grace, holds)

    def mark(self) -> None:
        """Mark the catalogue at the log's last entry: it reflects every decision in the log
        (call only when that is so: after a start that found no problem, and between the
        daemon's steps, when each decision's catalogue change and audit entry are both done,
        whichever came first).

        A catalogue shared by several hosts (``catalogue.url``) is marked only as far as this
        restore read and replayed the log itself: another host's entry appended since may
        still lack its catalogue change (written just after it), or never get it (that host
        died between the two), and a mark past it would tell every later start that nothing
        is to be replayed there: a hold lost."""
        if not self.config.catalogue.shared:
            mark_at_end(self.catalogue, self.audit)
        elif self._seen is not None:
            self.catalogue.set_audit_mark(self._seen)

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
        counts = requests.details() if requests else {}
        details = {
            "why": done.why,
            "holds": len(replayed.holds),
            "active": replayed.active,
            "released": replayed.released,
            "mark_seq": done.mark_seq,
            "entries": done.entries,
            "last_seq": replayed.last_seq,
            "last_hash": replayed.last_hash,
            **self.found_details,
            **counts,
            "problems": problems,
            **(extra or {}),
        }
        draft = AuditDraft("catalogue.rebuilt", "catalog.db", details)
        with self.catalogue.together():  # the offset read inside sees the entry appended
            entries = self.audit.append([draft], self.clock.now())
            self.catalogue.set_audit_mark(
                AuditMark(entries[-1].seq, entries[-1].hash, self.audit.end_offset())
            )
        self._done = None
        if done.why == BEHIND:
            logger.warning(
                "%s %s (it reflected entry %d of %d); replayed the %s after it (%s placed or "
                "released since, %d of them active; requests and breakers brought up to date) "
                "before erasing anything",
                self.config.daemon.state_dir / "catalog.db",
                _SAID[done.why],
                done.mark_seq,
                replayed.last_seq,
                plural(done.entries, "decision"),
                plural(len(replayed.holds), "legal hold"),
                replayed.active,
            )
        else:
            logger.warning(
                "%s %s; rebuilt %s (%d active, %d released), %s (%d certificates found) and "
                "%s (%d tripped) from the audit log (seq 1-%d) before erasing anything",
                self.config.daemon.state_dir / "catalog.db",
                _SAID[done.why],
                plural(len(replayed.holds), "legal hold"),
                replayed.active,
                replayed.released,
                plural(counts.get("requests", 0), "request"),
                counts.get("certificates", 0),
                plural(counts.get("breakers", 0), "breaker"),
                counts.get("breakers_tripped", 0),
                replayed.last_seq,
            )
        for problem in problems:
            logger.warning("audit log, rebuilding the catalogue: %s", problem)
        return done


class _Read:
    """The entries a replay reads: only ``REPLAYED`` actions kept, the last seq and hash read
    and how many were kept counted. Past a break in the chain (a damaged, changed, removed
    or reordered entry) only placings of holds are kept: an entry there is intact but not
    vouched for, and in doubt the replay keeps more, never less (a release, or a request's
    step, is left for the administrator who acknowledges the log to redo)."""

    def __init__(self, entries: Iterator[tuple[AuditEntry, bool]]) -> None:
        self._entries = entries
        self.count = 0
        self.last_seq = 0
        self.last_hash: str | None = None
        self.dropped: list[str] = []

    def relevant(self) -> list[AuditEntry]:
        kept = []
        for entry, linked in self._entries:
            self.last_seq, self.last_hash = entry.seq, entry.hash
            if not entry.action.startswith(REPLAYED) and not _request_erase(entry):
                continue
            if linked or entry.action == PLACED:
                kept.append(entry)
            else:
                self.dropped.append(
                    f"seq {entry.seq}: {entry.action} {entry.subject} comes after a break in "
                    "the chain; not replayed"
                )
        self.count = len(kept)
        return kept


def _request_erase(entry: AuditEntry) -> bool:
    """An ``erase.*`` entry of a request's run (its item's outcome)."""
    reason = entry.details.get("reason")
    return (
        entry.action.startswith(ERASE) and isinstance(reason, str) and reason.startswith("request:")
    )


def catch_up(config: Config, catalogue: RebuildCatalogue, audit: AuditLog, clock: Clock) -> bool:
    """A catalogue shared by several hosts, before each sweep: what the others logged since
    the mark (holds, requests, breakers) replayed into it, quietly (idempotent upserts; no
    audit entry: the entries replayed are already in the chain), and the mark moved to what
    was read. Covers a host that died between its audit entry and its catalogue change, so
    its hold still keeps on every host. False when the chain does not verify or does not
    hold the mark (nothing replayed; the start's check says so and pauses erasing)."""
    rebuilding = Rebuild(config, catalogue, audit, clock, None)
    rebuilding.restore()
    if rebuilding.problem is not None:
        return False
    rebuilding.mark()
    return True


def mark_at_end(catalogue: AuditMarkCatalogue, audit: AuditLog) -> None:
    """Mark the catalogue at the log's last entry (see ``Rebuild.mark``)."""
    last = audit.last()
    if last is not None:
        catalogue.set_audit_mark(AuditMark(last.seq, last.hash, audit.end_offset()))


def problem_draft(path: str, problem: Finding) -> AuditDraft:
    """The ``audit.problem`` entry for what the check at start found."""
    details = {"kind": problem.kind, "problem": problem.text, **problem.details}
    return AuditDraft("audit.problem", path, details)


def report_problem(audit: AuditLog | None, path: str, problem: Finding, now: datetime) -> None:
    """Audit (``audit.problem``; not with ``audit`` None: the caller writes the draft later)
    and log what the check at start found: the log itself says, in the entries recd goes on
    writing, why erasing stopped."""
    if audit is not None:
        audit.append([problem_draft(path, problem)], now)
    logger.error(
        "erasing paused: %s; nothing is erased until an administrator checks it and runs "
        "`recctl audit acknowledge --reason TEXT`",
        problem.text,
    )


def acknowledge(
    catalogue: AuditMarkCatalogue,
    audit: AuditLog,
    path: str,
    problem: Finding | None,
    actor: str,
    reason: str,
    now: datetime,
) -> AuditEntry:
    """An administrator takes the log as it is now (``audit.acknowledged``, with what was
    found): the catalogue is marked at its last entry and the chain checked up to there, and
    the closed segments there now are trusted as they are, so the next start checks only what
    comes after (or changes since). Returns the entry."""
    details: dict[str, Any] = {"reason": reason}
    if problem is not None:
        details |= {"kind": problem.kind, "problem": problem.text, **problem.details}
    (entry,) = audit.append([AuditDraft("audit.acknowledged", path, details, actor=actor)], now)
    end = audit.end_offset()
    (digest,) = audit.digests([end])
    checkpoint = AuditCheckpoint(entry.seq, entry.hash, end, digest, audit.live_start())
    catalogue.set_audit_checkpoint(checkpoint)
    catalogue.set_audit_segments(check_segments(path, audit, catalogue.audit_segments()).prints)
    catalogue.set_audit_mark(AuditMark(entry.seq, entry.hash, end))
    logger.warning(
        "audit log %s acknowledged by %s (%s)%s: erasing resumes",
        path,
        actor,
        reason,
        "" if problem is None else f" after: {problem.text}",
    )
    return entry
