"""What the daemon's loop shows other threads: the published ``DaemonState`` and the scrape view.

The loop replaces one immutable ``DaemonState`` whenever something in it changes (a scan starts
or ends, a pause begins or ends); the admin socket's threads and the metrics server's thread
only read it. A scrape (``scrape_snapshot``, on the metrics thread) combines that state with a
few indexed aggregates read through a read-only catalogue connection of its own and the audit
log's size, so it never waits for the loop.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime

from recd.config.load import Config
from recd.core.safety import ClockProblem
from recd.daemon.admin.dispatch import metrics_snapshot
from recd.daemon.admin.records import DaemonState, SourceStatus
from recd.daemon.build import open_reader
from recd.daemon.collector import S3Totals, Snapshot
from recd.daemon.runtime import Runtime
from recd.daemon.scans import Scans
from recd.daemon.watching import Watching
from recd.ports.reader import CatalogueReader
from recd.service.duty import Serving

#: A source not scanned since start is scanned next when this node serves it, or may (the first
#: scan asks who serves a one-at-a-time source).
_NEXT = (Serving.SERVED, Serving.UNKNOWN)


def daemon_state(
    previous: DaemonState,
    config: Config,
    runtime: Runtime | None,
    scans: Scans,
    watching: Watching,
    problems: tuple[ClockProblem | None, str | None, str | None, str | None],
) -> DaemonState:
    """The state to publish now; ``problems``: the clock guard's, the audit outage's, the
    audit log check's and the catalogue database's (``dbwait``)."""
    sources = []
    for s in config.sources:
        last = scans.last.get(s.name)
        served = Serving.UNKNOWN if runtime is None else runtime.duty.serving(s.name)
        sources.append(
            SourceStatus(
                name=s.name,
                type=s.type,
                watch=watching.mode(s.name),
                # a source not yet scanned since start counts as scanning: it is next, unless
                # this node does not serve it (not listed, or another node holds it)
                scanning=scans.scanning == s.name or (last is None and served in _NEXT),
                last_scan=None if last is None else last[0],
                scan_seconds=None if last is None else last[1],
                objects=_objects(runtime, s.name),
                unwritable=_unwritable(runtime, s.name),
                served=served,
            )
        )
    clock, audit, log, catalogue = problems
    return DaemonState(
        previous.started,
        os.getpid(),
        None if clock is None else clock.text,
        tuple(sources),
        audit,
        log,
        None if clock is None else clock.reason,
        catalogue,
    )


def _unwritable(runtime: Runtime | None, name: str) -> str | None:
    """Why recd cannot write the source's root, found at start or the last reload."""
    eraser = None if runtime is None else runtime.erasers.get(name)
    return None if eraser is None else eraser.blocked


def _objects(runtime: Runtime | None, name: str) -> S3Totals | None:
    """What the last completed poll of an S3 source listed (None for directories)."""
    source = None if runtime is None else runtime.sources.get(name)
    totals = None if source is None else source.last_scan
    if totals is None:
        return None
    return S3Totals(totals.objects, totals.versions, totals.delete_markers, totals.bytes)


@contextlib.contextmanager
def catalogue_reader(config: Config) -> Iterator[CatalogueReader]:
    """A read-only connection to the catalogue, for a reader on another thread."""
    reader = open_reader(config)
    try:
        yield reader
    finally:
        reader.close()


def scrape_snapshot(
    state: DaemonState,
    reader: CatalogueReader,
    now: datetime,
    config: Config,
    runtime: Runtime | None,
) -> Snapshot:
    """The metrics collector's view at scrape time; ``runtime`` as read once by the caller (a
    reload may swap it meanwhile), None while there is none."""
    snapshot = metrics_snapshot(state, reader, now, config)
    if runtime is None:
        return snapshot
    extent = runtime.audit.extent()
    return replace(snapshot, audit_log_bytes=extent.live_bytes, audit_segments=extent.segments)
