"""Scan tracking: full reconciliations of the sources, and what the loop shows of them.

A full scan reconciles one source with the catalogue (at start, every ``daemon.rescan``, after a
reload, on `recctl scan`); a partial one covers a subtree the watchers asked for (an overflow, a
new directory). ``Scans`` runs them through ``recd.service.indexing`` and keeps, per source, the
end and duration of its last full scan and which one is being scanned now, for ``recctl
status`` and the metrics; it also indexes the files the watchers saw change. A scan that fails
with ``OSError`` is logged once here and tried again at the next rescan. What a finished scan
means for the rest of the daemon (mirroring S3 holds, a sweep, the watchers' degraded polling)
is the ``scanned`` callback's business.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from recd.config.types import Config
from recd.daemon.runtime import Runtime
from recd.daemon.watching import SourceEvents
from recd.errors import NotAllowedInState, RecdError, os_reason
from recd.ports.clock import Clock, Telemetry
from recd.ports.notifier import Notifier
from recd.service.duty import Serving
from recd.service.indexing import Indexer, IndexErrors, IndexStats

logger = logging.getLogger(__name__)


class Scans:
    """Scans of the current runtime's sources; ``scanned(name, full)`` follows each one."""

    def __init__(
        self,
        runtime: Callable[[], Runtime],
        clock: Clock,
        notifier: Notifier,
        *,
        heartbeat: Callable[[], None],
        telemetry: Callable[[], Telemetry],
        changed: Callable[[], None],
        scanned: Callable[[str, bool], None],
    ) -> None:
        self._runtime = runtime
        self.clock = clock
        self.notifier = notifier
        self._heartbeat = heartbeat
        self._telemetry = telemetry
        self._changed = changed  # what the loop publishes changed (scanning, last scan)
        self._scanned = scanned
        self.next_scan = 0.0  # monotonic time of the next full rescan; 0: at once
        self.last: dict[str, tuple[datetime, float]] = {}  # source -> last full scan, seconds
        self.scanning: str | None = None
        self._index_errors = IndexErrors()  # files that failed to index, logged once each

    def indexer(self, name: str) -> Indexer | None:
        """The indexer of source ``name``, or None when no such source is configured or this
        node does not serve it now (``Duty``: another node scans and indexes it)."""
        rt = self._runtime()
        source = rt.sources.get(name)
        configs = {s.name: s for s in rt.config.sources}
        if source is None or name not in configs or not rt.duty.serves(name):
            return None

        def progress(files: int) -> None:
            self.notifier.notify(status=f"scanning {name}: {files} files so far")
            self._heartbeat()

        self._index_errors.telemetry = self._telemetry()
        return Indexer(
            rt.config,
            configs[name],
            source,
            rt.catalogue,
            rt.tag_reader,
            progress,
            self._index_errors,
        )

    def index_events(self, events: Mapping[str, SourceEvents]) -> set[str]:
        """Index what the watchers saw, per source; the ids of the recordings indexed that
        are due."""
        now, due = self.clock.now(), set()
        for name, seen in events.items():
            indexer = self.indexer(name)
            if indexer is None:
                continue
            rows = indexer.index_files(seen.files, seen.gone, now)
            wall = self.clock.now().timestamp()  # committed: what the lag is measured to
            for row in rows:
                self._telemetry().indexed(max(0.0, wall - seen.received.get(row.relpath, wall)))
                if row.deadline is not None and row.deadline <= now:
                    due.add(row.id)
        return due

    def reindex(self, source: str, relpath: str) -> None:
        """Index one file again (a sweep or request run found it changed since indexed)."""
        indexer = self.indexer(source)
        if indexer is not None:
            indexer.reindex(relpath, self.clock.now())

    def scan_all(self) -> None:
        """Reconcile every source fully (at start, every ``daemon.rescan``, after reload)."""
        rt = self._runtime()
        for name in list(rt.sources):
            with contextlib.suppress(OSError):  # logged; tried again at the next rescan
                self.scan(name)
        self.next_scan = self.clock.monotonic() + rt.config.daemon.rescan.total_seconds()

    def scan_sources(self, names: list[str] | None) -> list[IndexStats]:
        """`recctl scan`: scan ``names`` fully, None: every source this node serves; an error
        names every source that failed. A named source this node does not serve is refused
        (NotAllowedInState, nothing scanned) rather than silently not scanned."""
        rt = self._runtime()
        if names is None:
            names = list(rt.sources)  # ``scan`` leaves out those this node does not serve
        else:
            for name in names:
                rt.duty.serves(name)  # asks the owners of a one-at-a-time source
                self._changed()  # the answer may change what status shows
                refuse_unserved(rt.config, name, rt.duty.serving(name))
        results, problems = [], []
        for name in names:
            try:
                stats = self.scan(name)
            except OSError as exc:
                problems.append(f"source {name}: cannot scan {exc.filename}: {os_reason(exc)}")
                continue
            if stats is not None:
                results.append(stats)
        if problems:
            raise RecdError("; ".join(problems))
        return results

    def reconcile(self, name: str, under: str) -> None:
        """A reconciliation the watchers asked for; a failure is logged and retried later."""
        with contextlib.suppress(OSError):
            self.scan(name, under)

    def scan(self, name: str, under: str = "") -> IndexStats | None:
        """Scan one source (or its subtree ``under``); an OSError is logged and re-raised."""
        indexer = self.indexer(name)
        if indexer is None:  # not served here (now): status shows why
            self._changed()
            return None
        self.scanning = name
        self._changed()
        if not under:
            self.notifier.notify(status=f"scanning {name}")
        started = self.clock.monotonic()
        try:
            stats = indexer.run(self.clock.now(), under)
        except OSError as exc:
            logger.error("source %s: cannot scan %s: %s", name, exc.filename, os_reason(exc))
            raise
        finally:
            self.scanning = None
            self._changed()
        stats.seconds = self.clock.monotonic() - started
        if not under:
            self.last[name] = (self.clock.now(), stats.seconds)
        self._scanned(name, not under)
        return stats


def refuse_unserved(config: Config, source: str, serving: Serving) -> None:
    """``recctl scan NAME`` of a source this node does not serve: say why in one line."""
    node = config.daemon.node
    if serving is Serving.NOT_LISTED:
        nodes = next((s.nodes for s in config.sources if s.name == source), None) or ()
        raise NotAllowedInState(
            f"source {source}: this node ({node}) does not serve it: its nodes list only "
            f"{', '.join(nodes)}; scan it with recctl on one of those, or add {node} to its nodes"
        )
    if serving is not Serving.SERVED:
        raise NotAllowedInState(
            f"source {source}: another node serves it now (one node at a time), or this node "
            f"({node}) cannot reach the shared catalogue (see its log); scan it on that node"
        )
