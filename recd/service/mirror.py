"""recd's legal holds mirrored as S3 object legal holds (``s3.mirror_legal_holds``, SPEC 5).

A reconciliation, run after a hold is placed, released or expires and after every poll of a
mirroring source: every present recording a recd hold keeps gets an S3 legal hold ON on each
of its versions, and recordings no longer held get OFF again, but only on the versions recd
itself turned ON (a legal hold that was ON already is someone else's and is left alone). What
recd set is kept in the catalogue, so the work is idempotent and survives restarts; a failure
is logged and retried at the next reconciliation. Each run that changed anything is audited
as one ``hold.mirrored`` entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from recd.config.load import Config
from recd.core.audit import AuditDraft
from recd.core.model import Recording
from recd.errors import os_reason
from recd.ports.audit import AuditLog
from recd.ports.clock import Clock
from recd.ports.legal import MirrorCatalogue
from recd.ports.records import Mirrored
from recd.ports.source import ObjectStore

logger = logging.getLogger(__name__)

PAGE = 500  # recordings read per round; rounds go on until nothing is left to do


@dataclass(slots=True)
class MirrorReport:
    on: int = 0  # versions whose S3 legal hold recd turned ON
    off: int = 0  # versions recd turned OFF again
    kept: int = 0  # versions already ON (someone else's): left as they are
    failed: int = 0  # recordings that will be tried again


class HoldMirror:
    def __init__(
        self,
        config: Config,
        catalogue: MirrorCatalogue,
        audit: AuditLog,
        clock: Clock,
        stores: Mapping[str, ObjectStore],
        progress: Callable[[], None] = lambda: None,
    ) -> None:
        self.progress = progress  # called after each recording (the daemon's watchdog ping)
        self.config = config
        self.catalogue = catalogue
        self.audit = audit
        self.clock = clock
        self.stores = stores

    def run(self) -> MirrorReport:
        report = MirrorReport()
        for source in self.config.sources:
            store = self.stores.get(source.name)
            if source.mirror_legal_holds and store is not None:
                self._source(source.name, store, report)
        if report.on or report.off:
            details = {"on": report.on, "off": report.off, "already_on": report.kept}
            if report.failed:
                details["failed"] = report.failed
            self.audit.append([AuditDraft("hold.mirrored", "s3", details)], self.clock.now())
            logger.info(
                "S3 legal holds: %d version(s) ON, %d OFF, %d already ON by someone else",
                report.on,
                report.off,
                report.kept,
            )
        return report

    def _source(self, name: str, store: ObjectStore, report: MirrorReport) -> None:
        failed: set[str] = set()
        while True:
            hold, free = self.catalogue.mirror_work(name, PAGE + len(failed))
            hold = [r for r in hold if r.id not in failed]
            free = [m for m in free if m.recording_id not in failed]
            if not hold and not free:
                return
            for rec in hold:
                if not self._hold(store, rec, report):
                    failed.add(rec.id)
                self.progress()
            for m in free:
                if not self._free(store, m, report):
                    failed.add(m.recording_id)
                self.progress()

    def _hold(self, store: ObjectStore, rec: Recording, report: MirrorReport) -> bool:
        before = self.catalogue.mirrored(rec.id)
        ours = {v for v, mine in (before.versions if before else ()) if mine}
        versions: list[tuple[str, bool]] = []
        try:
            for version_id, on in store.legal_holds(rec.relpath):
                if on:
                    versions.append((version_id, version_id in ours))
                    report.kept += version_id not in ours
                    continue
                store.set_legal_hold(rec.relpath, version_id, True)
                versions.append((version_id, True))
                report.on += 1
        except OSError as exc:
            self._failed(rec.relpath, "set", exc, report)
            if versions:  # what was set is remembered, so a release turns it OFF
                self.catalogue.set_mirrored(Mirrored(rec.id, rec.relpath, -1, tuple(versions)))
            return False
        self.catalogue.set_mirrored(Mirrored(rec.id, rec.relpath, rec.ino, tuple(versions)))
        return True

    def _free(self, store: ObjectStore, m: Mirrored, report: MirrorReport) -> bool:
        try:
            live = dict(store.legal_holds(m.key))
            for version_id, mine in m.versions:
                if mine and live.get(version_id):
                    store.set_legal_hold(m.key, version_id, False)
                    report.off += 1
        except OSError as exc:
            self._failed(m.key, "remove", exc, report)
            return False
        self.catalogue.set_mirrored(m.recording_id)
        return True

    @staticmethod
    def _failed(key: str, what: str, exc: OSError, report: MirrorReport) -> None:
        report.failed += 1
        logger.error(
            "cannot %s the S3 legal hold of %s: %s (tried again at the next poll)",
            what,
            key,
            os_reason(exc),
        )
