"""The daemon's watchers: one inotify tree watcher per directory source, and what their events
ask the loop to do.

watchdog drops events without telling when the kernel queue overflows, and a directory's
first files may be written before its watch exists. So events are a fast path, never the
record: an overflow (or a watcher that lost a watch) asks for a full reconciliation of the
source, a directory that appeared or vanished for a reconciliation of that subtree, and a
source whose watches could not all be added (``fs.inotify.max_user_watches``) is scanned
every ``DEGRADED_POLL`` instead, with a log line and the ``recd_source_watch_degraded``
metric. Every source is still reconciled fully at start and every ``daemon.rescan``.

S3 buckets send no events: each S3 source is listed every ``poll`` through the same
reconciliation queue (``mode`` "poll").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from recd.core.model import FileFacts
from recd.daemon.build import tree_watcher
from recd.daemon.runtime import Runtime
from recd.errors import os_reason
from recd.ports.source import Source, Watcher, WatchEvent

#: How a source's changes reach the loop: inotify events, a periodic rescan (watching degraded),
#: an S3 poll, or nothing (not watched); ``recctl status`` shows it as ``watch``.
WatchMode = Literal["inotify", "periodic", "poll", "none"]

logger = logging.getLogger(__name__)

DEGRADED_POLL = 60.0  # seconds between scans of a source that cannot be watched


@dataclass
class SourceEvents:
    """One source's share of a batch: files to index, paths gone, when each was seen."""

    files: list[FileFacts] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    received: dict[str, float] = field(default_factory=dict)


class WatchBatch:
    """File events taken off the queue together; the last word on each path wins."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, str, bool], WatchEvent] = {}

    @classmethod
    def of(cls, events: Iterable[WatchEvent]) -> WatchBatch:
        batch = cls()
        for event in events:
            batch.add(event)
        return batch

    def __len__(self) -> int:
        return len(self.events)

    def add(self, event: WatchEvent) -> None:
        tree = event.kind in ("dir", "overflow")
        key = (event.source, event.relpath, tree)
        self.events.pop(key, None)  # re-insert: keep the order of the last event per path
        self.events[key] = event


class Watching:
    """Starts and stops the watchers, turns their events into indexing work and rescans."""

    def __init__(
        self,
        sink: Callable[[WatchEvent], None],
        on_overflow: Callable[[str], None] = lambda source: None,
    ) -> None:
        self.sink = sink
        self.on_overflow = on_overflow
        self.watchers: dict[str, Watcher] = {}
        self._reconcile: dict[str, set[str]] = {}  # source -> subtrees ("" = all)
        self._polls: dict[str, float] = {}  # degraded or S3 source -> next monotonic scan time
        self._periods: dict[str, float] = {}  # S3 source -> seconds between polls

    @staticmethod
    def accepts(item: object) -> bool:
        return isinstance(item, WatchEvent)

    def start(self, runtime: Runtime) -> None:
        exclude = (runtime.config.daemon.state_dir,)
        for s in runtime.config.sources:
            if s.type == "s3" and s.name in runtime.sources:
                # Buckets send no events: each is listed every `poll` (the full scan at start
                # is the first listing, after which ``scanned`` sets the next).
                self._periods[s.name] = s.poll.total_seconds()
                self._polls[s.name] = 0.0
                continue
            if s.type != "directory" or s.path is None or s.name not in runtime.sources:
                continue
            watcher = tree_watcher(s.name, s.path, self.sink, exclude=exclude)
            self.watchers[s.name] = watcher
            if not watcher.start():
                self._polls[s.name] = 0.0

    def stop(self) -> None:
        for watcher in self.watchers.values():
            watcher.stop()
        self.watchers.clear()
        self._polls.clear()
        self._periods.clear()
        self._reconcile.clear()

    def scanned(self, name: str, mono: float) -> None:
        """A full scan of ``name`` just ended: a degraded or S3 source's next poll is a period
        on."""
        if name in self._polls:
            self._polls[name] = mono + self._periods.get(name, DEGRADED_POLL)

    def mode(self, name: str) -> WatchMode:
        if name in self._periods:
            return "poll"
        watcher = self.watchers.get(name)
        if watcher is None:
            return "none"
        return "periodic" if watcher.degraded is not None else "inotify"

    @property
    def next_poll(self) -> float | None:
        """Monotonic time of the next reconciliation this module asks for, if any."""
        if self._reconcile:
            return 0.0
        return min(self._polls.values(), default=None)

    def take_reconciles(self, mono: float) -> list[tuple[str, str]]:
        """``(source, subtree)`` pairs to reconcile now ("" is the whole source)."""
        for name, watcher in self.watchers.items():
            if watcher.degraded is not None and name not in self._polls:
                self._polls[name] = 0.0  # degraded while running: poll from now on
        for name, at in self._polls.items():
            if at <= mono:
                self._reconcile.setdefault(name, set()).add("")
                self._polls[name] = mono + self._periods.get(name, DEGRADED_POLL)
        work: list[tuple[str, str]] = []
        for name, trees in sorted(self._reconcile.items()):
            if "" in trees:
                work.append((name, ""))
                continue
            for tree in sorted(trees):
                if not any(tree.startswith(t + "/") for t in trees):  # outermost only
                    work.append((name, tree))
        self._reconcile.clear()
        return work

    def split(self, batch: WatchBatch, sources: Mapping[str, Source]) -> dict[str, SourceEvents]:
        """Per source: the facts of files to index and the paths that are gone.

        Directory and overflow events are noted for ``take_reconciles``.
        """
        out: dict[str, SourceEvents] = {}
        for event in batch.events.values():
            source = sources.get(event.source)
            if source is None:
                continue
            if event.kind == "overflow":
                logger.warning(
                    "source %s: file events were lost; reconciling the whole source",
                    event.source,
                )
                self.on_overflow(event.source)
                self._reconcile.setdefault(event.source, set()).add("")
                continue
            if event.kind == "dir":
                self._reconcile.setdefault(event.source, set()).add(event.relpath)
                continue
            mine = out.setdefault(event.source, SourceEvents())
            try:
                facts = source.facts(event.relpath) if event.kind == "changed" else None
            except OSError as exc:  # a directory on the way cannot be read: not "gone"
                logger.warning(
                    "source %s: cannot look at %s: %s; reconciling its directory",
                    event.source,
                    event.relpath,
                    os_reason(exc),
                )
                parent = event.relpath.rpartition("/")[0]
                self._reconcile.setdefault(event.source, set()).add(parent)
                continue
            if facts is None:
                mine.gone.append(event.relpath)
            else:
                mine.files.append(facts)
                mine.received[event.relpath] = event.at
        return out
