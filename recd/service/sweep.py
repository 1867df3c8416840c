"""One sweep: erase every due recording that no rule keeps, in audited batches.

For each batch: every file is opened and checked first (nothing is touched); then the intents
are made durable (catalogue, then audit log); then the files are erased; then their directories
are flushed; then ``erase.done``/``erase.failed`` is written to the audit log and only then is
the catalogue told. A crash anywhere leaves intents that ``recovery`` settles on the next start.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from recd.config.load import Config
from recd.core.audit import AuditDraft, location_details
from recd.core.erasure import Action, decide
from recd.core.model import ERASE_PREFIX, Mode, Recording
from recd.core.policy import Outcome, verdict
from recd.core.safety import breaker_trips
from recd.core.text import UNCLASSIFIED
from recd.core.times import format_time, parse_time
from recd.errors import os_reason
from recd.ports.eraser import Changed, EraseError, Eraser, EraseTarget, Gone, PreparedErase
from recd.service import EraseUseCase
from recd.service.batch import Plan, how, method_details, run_batch

logger = logging.getLogger(__name__)

BATCH = 256  # files prepared (two descriptors each) and erased per audited batch


def batch_size(eraser: Eraser) -> int:
    """Recordings per audited batch for ``eraser`` (``Eraser.batch``: 256 files, or 1,000 S3
    keys listed in one walk and deleted 1,000 versions a request)."""
    return eraser.batch


PAGE = 1000  # due recordings read from the catalogue at a time
TEMP_PREFIX = ERASE_PREFIX  # the sources never index these names


@dataclass(slots=True)
class LicenceTally:
    recordings: int = 0
    due: int = 0
    erased: int = 0
    failed: int = 0
    would_erase: int = 0
    kept: Counter[str] = field(default_factory=Counter)  # why due recordings were kept
    breaker: bool = False


@dataclass(slots=True)
class SweepReport:
    now: datetime
    dry_run: bool
    licences: dict[str, LicenceTally] = field(default_factory=dict)
    interrupted: bool = False  # stopped between batches; the rest waits for the next sweep

    def tally(self, label: str) -> LicenceTally:
        return self.licences.setdefault(label, LicenceTally())

    @property
    def erased(self) -> int:
        return sum(t.erased for t in self.licences.values())

    @property
    def failed(self) -> int:
        return sum(t.failed for t in self.licences.values())


def label_of(licence: str | None) -> str:
    return licence if licence is not None else UNCLASSIFIED


def source_roots(config: Config) -> dict[str, str]:
    """Each source's root, as text, for ``location_of``: a directory, or ``s3://bucket``
    (an S3 recording's relpath is its whole key)."""
    roots = {s.name: str(s.path).rstrip("/") for s in config.sources if s.path is not None}
    roots |= {s.name: f"s3://{s.bucket}" for s in config.sources if s.bucket is not None}
    return roots


def location_of(roots: Mapping[str, str], rec: Recording) -> str:
    """Where a recording is, for people: the full path (``source:key`` where no path)."""
    root = roots.get(rec.source)
    return f"{rec.source}:{rec.relpath}" if root is None else f"{root}/{rec.relpath}"


def erase_details(roots: Mapping[str, str], rec: Recording, reason: str) -> dict[str, Any]:
    """The audit details every erase entry of ``rec`` carries (SPEC section 8)."""
    details: dict[str, Any] = {
        **location_details(location_of(roots, rec)),
        "licence": rec.classification.licence,
        "size": rec.size,
        "reason": reason,
    }
    if rec.deadline is not None:
        details["deadline"] = format_time(rec.deadline)
    return details


class Sweeper(EraseUseCase):
    #: The command that releases a breaker, for the log line; the daemon names recctl's.
    release_hint = "recd release-breaker {licence}"

    @property
    def dry_run(self) -> bool:
        return self.config.daemon.mode is Mode.DRY_RUN

    @functools.cached_property
    def roots(self) -> dict[str, str]:
        return source_roots(self.config)

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> SweepReport:
        """Erase what is due now. ``should_stop`` is asked between batches: a daemon that got
        a signal finishes the batch in flight and returns; the next sweep picks up the rest."""
        now = self.clock.now()
        report = SweepReport(now, self.dry_run)
        tripped, released = self._breakers(now, report)
        # Directory by directory, so each batch flushes few directories (ids are hashes: in
        # id order a batch would touch every directory of the source).
        due: list[_Due] = []
        limit = BATCH
        for source, directory in self.catalogue.due_dirs(now):
            after = ""
            while page := self.catalogue.due_in(source, directory, now, PAGE, after):
                after = page[-1].relpath
                for rec in page:
                    item = self._admit(rec, now, tripped, report)
                    if item is not None:
                        size = batch_size(item.eraser)
                        limit = min(limit, size) if due else size
                        due.append(item)
                    if len(due) >= limit:
                        self._execute(self._plans(due, now, report), report)
                        due = []
                        if should_stop():
                            report.interrupted = True
                            return report
        if due:
            self._execute(self._plans(due, now, report), report)
        for label in released:
            self.catalogue.clear_breaker(label)
            # Audited, so that a catalogue rebuilt from the log re-arms it too.
            self.audit.append([AuditDraft("breaker.rearmed", label, {})], self.clock.now())
        return report

    def _breakers(self, now: datetime, report: SweepReport) -> tuple[set[str], set[str]]:
        """Licences whose erasure the breaker stops in this sweep, and released ones to re-arm."""
        existing = self.catalogue.breakers()
        tripped: set[str] = set()
        released: set[str] = set()
        for licence, (total, due) in sorted(self.catalogue.counts(now).items(), key=_key):
            label = label_of(licence)
            tally = report.tally(label)
            tally.recordings, tally.due = total, due
            breaker = existing.get(label)
            if breaker is not None:
                if breaker.released_at is None:
                    tripped.add(label)
                else:
                    released.add(label)
            elif breaker_trips(due, total, self.config.safety):
                tripped.add(label)
                self._trip(label, now, due, total)
        for label in tripped:
            report.tally(label).breaker = True
        return tripped, released

    def _trip(self, label: str, now: datetime, due: int, total: int) -> None:
        safety = self.config.safety
        logger.error(
            "mass-deletion breaker%s for %s: %d of its %d recordings are due at once "
            "(limit %.0f%%, at least %d); none of them will be erased until `%s`",
            " would trip (dry-run)" if self.dry_run else " tripped",
            label, due, total, safety.max_due_fraction * 100, safety.min_breaker_count,
            self.release_hint.format(licence=label),
        )  # fmt: skip
        if self.dry_run:
            return
        self.catalogue.trip_breaker(label, now, due, total)
        details = {
            "due": due,
            "recordings": total,
            "max_due_fraction": safety.max_due_fraction,
            "min_breaker_count": safety.min_breaker_count,
        }
        self.audit.append([AuditDraft("breaker.tripped", label, details)], now)

    def _admit(
        self, rec: Recording, now: datetime, tripped: set[str], report: SweepReport
    ) -> _Due | None:
        """A due recording no rule keeps, to be opened with its batch; else counted as kept."""
        label = label_of(rec.classification.licence)
        tally = report.tally(label)
        if label in tripped:
            tally.kept["mass-deletion breaker"] += 1
            return None
        v = verdict(rec, now)
        if v.outcome is not Outcome.ERASE:  # pragma: no cover (held rows are not due)
            tally.kept[str(v.reason)] += 1
            return None
        eraser = self.erasers.get(rec.source)
        if eraser is None:
            self._skip(rec, f"source {rec.source} is not configured", tally, permanent=False)
            return None
        return _Due(rec, label, v.reason, eraser)

    def _plans(self, due: list[_Due], now: datetime, report: SweepReport) -> list[Plan]:
        """Open and check a batch (each eraser at once: S3 lists the keys in one walk), then
        decide each; nothing is touched."""
        plans: list[Plan] = []
        for eraser, items in _by_eraser(due):
            targets = [
                EraseTarget(d.rec.relpath, d.rec.dev, d.rec.ino, d.rec.size, d.rec.stamps)
                for d in items
            ]
            for d, opened in zip(items, eraser.prepare_many(targets), strict=True):
                plan = self._plan(d, opened, now, report.tally(d.label))
                if plan is not None:
                    plans.append(plan)
        return plans

    def _plan(
        self,
        d: _Due,
        opened: PreparedErase | EraseError | OSError,
        now: datetime,
        tally: LicenceTally,
    ) -> Plan | None:
        rec = d.rec
        if isinstance(opened, Gone):
            self.catalogue.mark_missing([rec.id])
            tally.kept["vanished before erasure"] += 1
            return None
        if isinstance(opened, EraseError):
            self._skip(rec, opened.reason, tally, permanent=True)
            if isinstance(opened, Changed):  # not the file indexed: it gets its own deadline
                self.reindex_changed(rec)
            return None
        if isinstance(opened, OSError):  # S3: the listing failed (its one-line reason)
            reason = f"cannot open: {os_reason(opened)}"
            self._skip(rec, reason, tally, permanent=False)
            return None
        decision = decide(opened.facts, self.config.erase, now)
        if decision.action is not Action.ERASE:
            opened.close()
            reason = decision.reason or str(decision.action)
            self._skip(rec, reason, tally, permanent=decision.action is Action.REFUSE)
            return None
        details = erase_details(self.roots, rec, d.reason)
        details |= method_details(decision.method, decision.effective, decision.reason)
        details |= opened.details
        if self.dry_run:
            opened.close()
            tally.would_erase += 1
            self.telemetry.erased(_kind(d.reason), "dry-run", rec.size, None)
            logger.info("dry-run: would erase %s (%s)", details["location"], decision.method)
            return None
        return Plan(rec, d.label, d.eraser, opened, decision, details)

    def reindex_changed(self, rec: Recording) -> None:
        """Index again the file now at ``rec``'s location (a prepare found it changed)."""
        if self.reindex is None:
            return
        try:
            self.reindex(rec.source, rec.relpath)
        except OSError as exc:  # the next scan tries again
            logger.warning("%s not re-indexed: %s", location_of(self.roots, rec), os_reason(exc))

    def _skip(self, rec: Recording, reason: str, tally: LicenceTally, *, permanent: bool) -> None:
        """Keep a due recording this time; audit a refusal once, when its reason changes."""
        tally.kept[reason] += 1
        if rec.skip_reason == reason:
            return
        self.catalogue.set_skip_reason(rec.id, reason)
        location = location_of(self.roots, rec)
        if not permanent:
            logger.info("not erasing %s yet: %s", location, reason)
            return
        logger.warning("not erasing %s: %s", location, reason)
        if not self.dry_run:
            self.telemetry.erased("retention", "skipped", rec.size, None)
            details = erase_details(self.roots, rec, "retention") | {"skipped": reason}
            self.audit.append([AuditDraft("erase.skipped", rec.id, details)], self.clock.now())

    def _execute(self, plans: list[Plan], report: SweepReport) -> None:
        result = run_batch(self, plans)
        for plan in result.kept:
            report.tally(plan.label).kept["held"] += 1
            logger.info("not erasing %s: a legal hold was placed on it", plan.details["location"])
        for done in result.done:
            plan = done.plan
            report.tally(plan.label).erased += 1
            lag = (
                None
                if plan.rec.deadline is None
                else parse_time(done.entry.time) - plan.rec.deadline
            )
            self.telemetry.erased(
                _kind(plan.details["reason"]),
                "done",
                plan.rec.size,
                None if lag is None else lag.total_seconds(),
            )
            logger.info("erased %s (%s)", plan.details["location"], how(done.entry.details))
        for failed in result.failed:
            plan = failed.plan
            report.tally(plan.label).failed += 1
            self.telemetry.erased(_kind(plan.details["reason"]), "failed", plan.rec.size, None)
            self.catalogue.set_skip_reason(plan.rec.id, f"erase failed: {failed.why}")
            logger.error("erase of %s failed: %s", plan.details["location"], failed.why)


@dataclass(frozen=True, slots=True)
class _Due:
    """A due recording admitted to a batch: no breaker or rule keeps it."""

    rec: Recording
    label: str
    reason: str  # the verdict's reason: "retention"
    eraser: Eraser


def _by_eraser(due: list[_Due]) -> list[tuple[Eraser, list[_Due]]]:
    groups: dict[int, tuple[Eraser, list[_Due]]] = {}
    for d in due:
        groups.setdefault(id(d.eraser), (d.eraser, []))[1].append(d)
    return list(groups.values())


def _kind(reason: str) -> str:
    """``retention`` or ``request`` (from ``request:<id>``): a bounded metrics label."""
    return reason.partition(":")[0]


def _key(item: tuple[str | None, tuple[int, int]]) -> str:
    return item[0] or ""
