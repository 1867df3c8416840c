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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from recd.core.audit import AuditDraft
from recd.core.model import ERASE_PREFIX, Mode, Recording
from recd.core.policy import Outcome, verdict
from recd.core.safety import breaker_trips
from recd.core.text import UNCLASSIFIED
from recd.core.times import parse_time
from recd.errors import os_reason
from recd.ports.sweeping import SweepCatalogue
from recd.service import EraseUseCase
from recd.service.batch import Plan, how, run_batch
from recd.service.plan import (
    Candidate,
    Setback,
    Unplanned,
    erase_details,
    location_of,
    plan_batch,
    source_roots,
)

logger = logging.getLogger(__name__)

BATCH = 256  # files prepared (two descriptors each) and erased per audited batch


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
    failed_ids: set[str] = field(default_factory=set)  # recordings whose erase failed

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


class Sweeper(EraseUseCase[SweepCatalogue]):
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
        due: list[Candidate] = []
        limit = BATCH
        for source, directory in self._served_dirs(now):
            after = ""
            while page := self.catalogue.due_in(source, directory, now, PAGE, after):
                after = page[-1].relpath
                for rec in page:
                    item = self._admit(rec, now, tripped, report)
                    if item is not None:
                        size = item.eraser.batch  # 256 files, or 1,000 S3 keys
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
            with self.catalogue.together():
                self.catalogue.clear_breaker(label)
                # Audited, so that a catalogue rebuilt from the log re-arms it too.
                self.audit.append([AuditDraft("breaker.rearmed", label, {})], self.clock.now())
        return report

    def _served_dirs(self, now: datetime) -> list[tuple[str, str]]:
        """``due_dirs`` of the sources this node serves (``serves``, asked once per source):
        the recordings of the others are another node's (or nobody's, on one host) and are
        not even claimed."""
        serving: dict[str, bool] = {}
        dirs = self.catalogue.due_dirs(now)
        for source, _ in dirs:
            if source not in serving:
                serving[source] = self.serves is None or self.serves(source)
        return [(source, directory) for source, directory in dirs if serving[source]]

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
            label,
            due,
            total,
            safety.max_due_fraction * 100,
            safety.min_breaker_count,
            self.release_hint.format(licence=label),
        )
        if self.dry_run:
            return
        details = {
            "due": due,
            "recordings": total,
            "max_due_fraction": safety.max_due_fraction,
            "min_breaker_count": safety.min_breaker_count,
        }
        with self.catalogue.together():
            self.catalogue.trip_breaker(label, now, due, total)
            self.audit.append([AuditDraft("breaker.tripped", label, details)], now)

    def _admit(
        self, rec: Recording, now: datetime, tripped: set[str], report: SweepReport
    ) -> Candidate | None:
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
        if eraser.blocked is not None:  # said once for the root at start: none is tried
            tally.kept[f"root not writable: {eraser.blocked}"] += 1
            return None
        return Candidate(rec, label, v.reason, eraser)

    def _plans(self, due: list[Candidate], now: datetime, report: SweepReport) -> list[Plan]:
        """Open, check and decide a batch (``plan_batch``); nothing is touched. What is not
        planned is counted as kept (and audited once per reason); a dry run plans nothing."""
        plans: list[Plan] = []
        for planned in plan_batch(self, due, now, self.roots):
            tally = report.tally(planned.label)
            if isinstance(planned, Unplanned):
                self._unplanned(planned, tally)
            elif self.dry_run:
                self._would_erase(planned, tally)
            else:
                plans.append(planned)
        return plans

    def _would_erase(self, plan: Plan, tally: LicenceTally) -> None:
        plan.prepared.close()
        tally.would_erase += 1
        self.telemetry.erased(_kind(plan.details["reason"]), "dry-run", plan.rec.size, None)
        logger.info("dry-run: would erase %s (%s)", plan.details["location"], plan.decision.method)

    def _unplanned(self, u: Unplanned, tally: LicenceTally) -> None:
        if u.setback is Setback.GONE:
            tally.kept["vanished before erasure"] += 1
        elif u.setback is Setback.UNLISTED:  # S3: the listing failed (its one-line reason)
            self._skip(u.rec, f"cannot open: {u.why}", tally, permanent=False)
        else:
            permanent = u.setback is not Setback.WAIT
            self._skip(u.rec, u.why, tally, permanent=permanent)
            if u.setback is Setback.CHANGED:  # not the file indexed: it gets its own deadline
                self.reindex_changed(u.rec)

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
        location = location_of(self.roots, rec)
        if not permanent or self.dry_run:
            self.catalogue.set_skip_reason(rec.id, reason)
            if permanent:
                logger.warning("not erasing %s: %s", location, reason)
            else:
                logger.info("not erasing %s yet: %s", location, reason)
            return
        details = erase_details(self.roots, rec, "retention") | {"skipped": reason}
        with self.catalogue.together():  # the reason stored is the refusal audited once
            self.catalogue.set_skip_reason(rec.id, reason)
            self.audit.append([AuditDraft("erase.skipped", rec.id, details)], self.clock.now())
        logger.warning("not erasing %s: %s", location, reason)
        self.telemetry.erased("retention", "skipped", rec.size, None)

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
            report.failed_ids.add(plan.rec.id)
            self.telemetry.erased(_kind(plan.details["reason"]), "failed", plan.rec.size, None)
            self.catalogue.set_skip_reason(plan.rec.id, f"erase failed: {failed.why}")
            logger.error("erase of %s failed: %s", plan.details["location"], failed.why)


def _kind(reason: str) -> str:
    """``retention`` or ``request`` (from ``request:<id>``): a bounded metrics label."""
    return reason.partition(":")[0]


def _key(item: tuple[str | None, tuple[int, int]]) -> str:
    return item[0] or ""
