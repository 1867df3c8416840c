"""Settle every erase a crash interrupted, before anything else runs (SPEC section 7).

For each intent still in the catalogue, the audit log from the intent's offset tells how far it
got: no ``erase.intent`` entry naming it (its own, in older logs, or its batch's) means nothing
was touched (the intent is dropped); an ``erase.done`` or ``erase.failed`` entry means only the
catalogue missed the news. An intent with no outcome is finished: if the inode is gone the
erase had completed and ``erase.done`` is written (``recovered: true``); if it is still at its
name or at the temp name, the erase is run again to the end (an overwrite may have been cut
short). An S3 source's keys are finished together, a chunk at a time (``recoverobjects``).
Afterwards the catalogue and the audit log agree.

Only intents this node can finish are taken: those of sources it serves (``serves``) and has
an eraser for. On a catalogue shared by several nodes the others, and their claims, are left
untouched for the node that serves their source (the daemon takes over expired ones before
each sweep, not only at start); a source no node here knows may be configured on another. On
one host, an intent of a configured source this node does not serve is left too (kept, with
one line saying why), and one of a source no longer configured is audited as failed: nobody
else could ever finish it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from recd.core.audit import AuditDraft
from recd.core.erasure import Action, Decision
from recd.core.intents import INTENT, announced
from recd.core.model import EraseMethod, Recording
from recd.core.times import parse_time
from recd.ports.audit import AuditLog
from recd.ports.eraser import EraseError, EraseOutcome, Eraser, Refused
from recd.ports.records import Intent
from recd.ports.sweeping import SweepCatalogue
from recd.service import EraseUseCase
from recd.service.recoverobjects import Unfinished, finish_objects, recovered, unrecovered

logger = logging.getLogger(__name__)

#: Intents settled (erased, audited, resolved) between two looks at ``should_stop``, so that a
#: legal hold sent meanwhile does not wait long: 32 files (each may be overwritten again), or
#: as many S3 keys as a sweep's batch (``S3_CHUNK``; one listing walk, DeleteObjects requests
#: and one confirming walk: each walk passes every key below the chunk's common prefix).
CHUNK = 32
S3_CHUNK = 1000


def chunks(intents: list[Intent]) -> Iterator[list[Intent]]:
    """``intents`` in chunks: the files' of ``CHUNK``, then the S3 keys' of ``S3_CHUNK``."""
    objects = [i for i in intents if i.plan.get("method") == EraseMethod.S3_DELETE]
    files = [i for i in intents if i.plan.get("method") != EraseMethod.S3_DELETE]
    for group, size in ((files, CHUNK), (objects, S3_CHUNK)):
        for start in range(0, len(group), size):
            yield group[start : start + size]


@dataclass(slots=True)
class RecoveryReport:
    confirmed: int = 0  # audit said done; catalogue caught up
    dropped: int = 0  # never started, or audited as failed
    finished: int = 0  # completed now
    failed: int = 0  # could not be completed; audited as failed
    left: int = 0  # not looked at: the run was told to stop (``should_stop``)

    @property
    def total(self) -> int:
        return self.confirmed + self.dropped + self.finished + self.failed


def _outcomes(audit: AuditLog, intents: list[Intent]) -> dict[str, dict[str, datetime | None]]:
    """For each intent id: the erase actions the audit log holds for it (and when)."""
    wanted = {i.id for i in intents}
    found: dict[str, dict[str, datetime | None]] = {}
    for entry in audit.read_from(min(i.audit_offset for i in intents)):
        if entry.action == INTENT:  # one per recording (older logs) or one per batch
            ids = [a.intent for a in announced(entry)]
        else:
            iid = entry.details.get("intent")
            ids = [iid] if isinstance(iid, str) else []
        for iid in ids:
            if iid in wanted:
                found.setdefault(iid, {})[entry.action] = parse_time(entry.time)
    return found


class Recovery(EraseUseCase[SweepCatalogue]):
    def run(self, should_stop: Callable[[], bool] = lambda: False) -> RecoveryReport:
        """Settle the intents taken a chunk at a time (``chunks``), each chunk's entries and
        catalogue changes committed together after its erases. ``should_stop`` is asked
        between chunks (the daemon's: a signal or an admin command waits): the intents left
        stay this node's, for its next recovery (before each sweep on a shared catalogue);
        ``left`` counts them."""
        report = RecoveryReport()
        intents = self._taken()
        if not intents:
            return report
        logger.warning("recovering %d interrupted erasure(s)", len(intents))
        outcomes = _outcomes(self.audit, intents)
        done = 0
        for chunk in chunks(intents):
            if done and should_stop():
                report.left = len(intents) - done
                logger.info(
                    "recovery: %d interrupted erasure(s) left for the next sweep (a signal or "
                    "an admin command came first)",
                    report.left,
                )
                break
            self._settle(chunk, outcomes, report)
            done += len(chunk)
        logger.warning(
            "recovery: %d confirmed, %d finished, %d failed, %d never started",
            report.confirmed,
            report.finished,
            report.failed,
            report.dropped,
        )
        return report

    def _settle(
        self,
        intents: list[Intent],
        outcomes: dict[str, dict[str, datetime | None]],
        report: RecoveryReport,
    ) -> None:
        erased: list[tuple[str, datetime]] = []
        dropped: list[str] = []
        drafts: list[AuditDraft] = []
        rerun: list[Intent] = []
        for intent in intents:
            seen = outcomes.get(intent.id, {})
            done_at = seen.get("erase.done")
            if done_at is not None:
                erased.append((intent.id, done_at))
                report.confirmed += 1
            elif "erase.failed" in seen or "erase.intent" not in seen:
                dropped.append(intent.id)
                report.dropped += 1
            else:
                rerun.append(intent)
        for intent, draft in self._finish_all(rerun):
            drafts.append(draft)
            if draft.action == "erase.done":
                erased.append((intent.id, self.clock.now()))
                report.finished += 1
            else:
                dropped.append(intent.id)
                report.failed += 1
        for eraser in self.erasers.values():
            eraser.sync()
        with self.catalogue.together():  # after the erases: see ``recd.service.batch``
            if drafts:
                self.audit.append(drafts, self.clock.now())
            self.catalogue.resolve_intents(erased, dropped)

    def _finishes(self, source: str) -> bool:
        """Whether this node can finish an erase of ``source``: it has its eraser and serves it."""
        return source in self.erasers and (self.serves is None or self.serves(source))

    def _taken(self) -> list[Intent]:
        """The intents this run settles (see the module docstring)."""
        now = self.clock.now()
        if self.catalogue.shared:
            finishable = [source for source in self.erasers if self._finishes(source)]
            return self.catalogue.pending_intents(now, finishable)
        configured = {s.name for s in self.config.sources}
        taken: list[Intent] = []
        left: set[str] = set()
        for intent in self.catalogue.pending_intents(now):
            rec = self.catalogue.get(intent.recording_id)
            if rec is None or rec.source not in configured or self._finishes(rec.source):
                taken.append(intent)
            else:
                left.add(rec.source)
        for source in sorted(left):
            logger.info(
                "source %s is not served by this node: its interrupted erasures are left", source
            )
        return taken

    def _finish_all(self, intents: list[Intent]) -> list[tuple[Intent, AuditDraft]]:
        """Run the interrupted erases ``intents`` to their end; each one's entry, in order.
        An S3 source's are finished together (``finish_objects``), files one at a time."""
        finished: dict[str, AuditDraft] = {}
        objects: dict[str, list[Unfinished]] = {}  # by source
        for intent in intents:
            base = {"intent": intent.id, **intent.plan, "recovered": True}
            rec = self.catalogue.get(intent.recording_id)
            eraser = None if rec is None else self.erasers.get(rec.source)
            if rec is None or eraser is None:
                why = "source is no longer configured; erase left unfinished"
                finished[intent.id] = unrecovered(intent.recording_id, base, why)
            elif base["method"] == EraseMethod.S3_DELETE:
                objects.setdefault(rec.source, []).append(Unfinished(intent, rec, base))
            else:
                finished[intent.id] = self._finish(eraser, rec, intent, base)
        for source, items in objects.items():
            drafts = finish_objects(self.erasers[source], items, self.config.erase.pattern)
            finished |= {u.intent.id: d for u, d in zip(items, drafts, strict=True)}
        return [(intent, finished[intent.id]) for intent in intents]

    def _finish(
        self, eraser: Eraser, rec: Recording, intent: Intent, base: dict[str, Any]
    ) -> AuditDraft:
        try:
            return recovered(rec.id, base, self._rerun(eraser, rec, intent, base))
        except (EraseError, OSError) as exc:
            return unrecovered(rec.id, base, exc)

    def _rerun(
        self, eraser: Eraser, rec: Recording, intent: Intent, plan: dict[str, Any]
    ) -> EraseOutcome | None:
        """Run an interrupted erase of a file to its end; None when it had already completed.

        At the original name the size must be the indexed one (an overwrite keeps the size) or
        0 (the erase had truncated it), so a new file that reused the name and the inode number
        is not taken for it. At the temp name (random, recd's own) any size is accepted.
        """
        where = eraser.locate(rec.relpath, intent.temp_name, rec.dev, rec.ino)
        if where == "gone":
            return None
        relpath = rec.relpath
        if where == "temp":
            relpath = f"{rec.relpath.rpartition('/')[0]}/{intent.temp_name}".lstrip("/")
        decision = Decision(
            Action.ERASE,
            EraseMethod(plan["method"]),
            bool(plan["effective"]),
            plan.get("ineffective_reason"),
        )
        prepared = eraser.prepare(relpath, rec.dev, rec.ino, None)
        try:
            if where == "original" and prepared.facts.size not in (rec.size, 0):
                raise Refused(
                    f"{rec.relpath} has size {prepared.facts.size}, neither the indexed "
                    f"{rec.size} nor 0 (truncated by the erase); not the file being erased"
                )
            return eraser.erase(
                prepared,
                decision,
                pattern=self.config.erase.pattern,
                verify=self.config.erase.verify,
                temp_name=intent.temp_name,
            )
        finally:
            prepared.close()
