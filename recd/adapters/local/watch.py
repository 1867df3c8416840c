"""Live events for a directory source: watchdog's inotify observer, reduced to what recd indexes.

A ``TreeWatcher`` watches one source root recursively and calls its sink with a ``WatchEvent``
for every file closed after writing or moved in ("changed"), every file deleted or moved away
("deleted"), every directory created, moved or deleted ("dir": the daemon rescans that subtree,
since files can be written in a new directory before its watch exists) and every kernel queue
overflow ("overflow": the daemon reconciles the whole source). Events are hints, never facts: the
daemon looks each path up again with ``DirectorySource.facts``, which walks fd-relatively, so a
stale or odd event can cost a lookup but never index something a scan would not.

Not reported: a file created or written but not yet closed (the recording is indexed once it is
closed; inotify is asked for no IN_MODIFY, IN_OPEN, IN_ATTRIB or IN_CLOSE_NOWRITE at all), a hard
link made into the tree (only IN_CREATE), the files inside a moved directory (watchdog's
synthetic per-file events are dropped: the directory's "dir" events cover them), recd's erase
temp names (``.recd-erase-*`` files) and anything in an excluded directory. Rescans find the rest.

How watchdog 7.1 handles an overflow: ``InotifyFD.handle_event`` (``inotify_c.py``) logs
"Inotify queue overflowed; filesystem events were lost" and calls ``on_queue_overflow`` on every
watch group; ``InotifyWatchGroup.on_queue_overflow`` (``inotify.py``) discards its pending,
not yet emitted events and re-adds every recursive watch. No event reaches an observer: the lost
events, and any directory created while the watches were re-added, are gone silently. recd
therefore wraps ``InotifyFD`` and, once watchdog has rebuilt the watches, queues an "overflow"
event behind the events already delivered; the daemon then reconciles the whole source, which is
the only way to learn what the lost events said (SPEC section 12).

Watch limits: watchdog raises ``OSError`` (ENOSPC "inotify watch limit reached", EMFILE "inotify
instance limit reached") only when the inotify instance or the root's watch cannot be created;
a watch on any subdirectory that fails, at start or later for a new directory inside the event
thread, is swallowed in ``InotifyWatchGroup._add_callback`` and that subtree is silently not
watched. recd sees every watch request in its ``InotifyFD.add_callback`` override instead: a
limit hit while starting makes ``start`` return False (degraded, stopped, one warning line);
a limit hit later degrades the running watcher (one warning line) and queues an "overflow" event,
so the daemon reconciles once; after that, unwatched directories are covered by rescans only.
The root removed (watchdog then stops its emitter) or its filesystem unmounted (``IN_UNMOUNT``:
every watch is gone, and watchdog says nothing) degrades the watcher the same way.

Symlinks and mounts: watches are added with ``follow_symlink=False`` (watchdog's default: the
``IN_DONT_FOLLOW`` flag and ``os.walk(followlinks=False)``, and symlinked directories are
skipped). The same override refuses watches on directories of another filesystem and on excluded
directories (watchdog skips a subdirectory it cannot watch), so their events are never queued;
watchdog's start-up walk still lists them. The root is resolved once (it may be a symlink, as for
a scan); events are mapped to paths relative to it.

Threads: watchdog runs an inotify reader, an emitter and an observer thread per watcher. The sink
is called only from the observer thread, and with no lock held (watchdog's own dispatch holds the
observer lock, which ``stop`` also needs); it must be cheap (a queue put) and must not call
``stop``.

This module subclasses watchdog 7.1.0's internals (``InotifyFD.add_callback``/``_add_callback``/
``handle_event``, ``BaseObserver.dispatch_events``), so ``pyproject.toml`` pins exactly
``WATCHDOG_VERSION`` (a test checks the pin and the installed version). Even 7.1.1 breaks them:
it rewrote ``InotifyWatchGroup``'s watch bookkeeping as a tree, dispatches handlers without the
observer lock, and adds a shared "InotifyFD-Dispatcher" thread. (It also adds
``EventsLostEvent``, which could replace recd's overflow wrapper.) Before moving the pin, re-read
``watchdog/observers/inotify.py``, ``inotify_c.py`` and ``api.py`` and run the watch tests.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver, EventDispatcher, EventQueue
from watchdog.observers.inotify import InotifyFullEmitter
from watchdog.observers.inotify_c import (
    CallbackId,
    InotifyConstants,
    InotifyEvent,
    InotifyFD,
    Mask,
    WatchCallback,
    WatchDescriptor,
)

from recd.core.model import ERASE_PREFIX
from recd.errors import os_reason
from recd.ports.source import WatchEvent, WatchKind

__all__ = ["EVENT_FILTER", "ERASE_PREFIX", "TreeWatcher", "WatchEvent", "WatchKind"]

logger = logging.getLogger(__name__)

#: The watchdog release whose internals this module subclasses; pyproject.toml pins it.
WATCHDOG_VERSION = "7.1.0"


#: The sysctl to raise for each inotify limit errno.
LIMITS = {
    errno.ENOSPC: "inotify watch limit reached (fs.inotify.max_user_watches)",
    errno.EMFILE: "inotify instance limit reached (fs.inotify.max_user_instances)",
}
ROOT_REMOVED = "the root directory was removed"
UNMOUNTED = "the root's filesystem was unmounted"


class _Overflow(FileSystemEvent):
    """Queued by recd itself: events were lost (kernel queue overflow or a watch limit)."""

    event_type = "overflow"


#: The event types recd asks watchdog for; the inotify mask follows from them (no IN_MODIFY,
#: IN_OPEN, IN_ATTRIB or IN_CLOSE_NOWRITE). ``_Overflow`` adds nothing to the mask.
EVENT_FILTER: tuple[type[FileSystemEvent], ...] = (
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    _Overflow,
)


class _Inotify(InotifyFD):
    """watchdog's inotify reader, told which directories to skip and reporting trouble."""

    def __init__(self, watcher: TreeWatcher) -> None:
        super().__init__()
        self._watcher = watcher

    def add_callback(
        self, path: bytes, mask: Mask, callback: WatchCallback, id_: CallbackId
    ) -> WatchDescriptor:
        self._watcher._refuse(path)  # raises: watchdog then skips this directory
        try:
            return super().add_callback(path, mask, callback, id_)
        except OSError as exc:
            self._watcher._failed(exc)
            raise

    def _add_callback(
        self, path: bytes, mask: Mask, callback: WatchCallback, id_: CallbackId
    ) -> WatchDescriptor:
        # watchdog's walk of a new directory and that directory's own IN_CREATE can both add a
        # watch on a subdirectory made by a quick `mkdir -p`; watchdog then warns (a
        # RuntimeWarning with a page of repr) that its callback is re-added. With one watch
        # group per inotify instance the callback re-added is always the same one: no warning.
        watch = self._get_or_create_watch(path, mask)
        watch.callbacks[id_] = callback
        return watch.wd

    def handle_event(self, event: InotifyEvent) -> None:
        super().handle_event(event)  # on overflow, watchdog rebuilds its watches first
        if event.is_queue_overflow:
            self._watcher._queue_overflow()
        elif event.mask & InotifyConstants.IN_UNMOUNT:  # every watch is gone; watchdog is silent
            self._watcher._degrade(UNMOUNTED)


class _Observer(BaseObserver):
    """An inotify observer over ``_Inotify`` that hands events over with no lock held."""

    def __init__(self, inotify: _Inotify, deliver: Callable[[FileSystemEvent], None]) -> None:
        super().__init__(InotifyFullEmitter, inotify_fd=inotify)
        self._inotify = inotify
        inotify.start()  # as watchdog's InotifyObserver does; joined in on_thread_stop
        self._deliver = deliver

    def on_thread_stop(self) -> None:
        super().on_thread_stop()
        self._inotify.stop()
        self._inotify.join()

    def dispatch_events(self, event_queue: EventQueue) -> None:
        entry = event_queue.get(block=True)
        if entry is not EventDispatcher.stop_event:
            self._deliver(entry[0])
        event_queue.task_done()


class TreeWatcher:
    """Watch one source root recursively; see the module docstring for what the sink receives."""

    def __init__(
        self,
        source: str,
        root: Path,
        sink: Callable[[WatchEvent], None],
        *,
        exclude: Sequence[Path] = (),
    ) -> None:
        self.source = source
        self.root = root
        self._sink = sink
        self._exclude = tuple(exclude)
        self._lock = threading.Lock()
        self._observer: _Observer | None = None
        self._queue = EventQueue()  # the running observer's; kept after stop (puts are harmless)
        self._running = False
        self._degraded: str | None = None
        self._top = ""  # the resolved root
        self._prefix = ""  # ... with a trailing '/'
        self._top_b = b""
        self._dev = 0
        self._excluded: tuple[str, ...] = ()  # resolved, below the root

    @property
    def degraded(self) -> str | None:
        """None while the whole tree is watched; else why not, in one line."""
        return self._degraded

    def start(self) -> bool:
        """Watch the tree; True once every directory has its watch.

        Events for files closed after ``start`` returns are delivered, so scan after it. On
        False (an inotify limit, or the root cannot be watched) the watcher is stopped, one
        warning is logged and ``degraded`` says why; the tree must then be rescanned
        periodically. Never raises for an OS error.
        """
        with self._lock:
            if self._observer is not None:
                raise RuntimeError(f"watch {self.source}: already started")
            self._degraded = None
        top = os.path.realpath(self.root)
        self._top, self._top_b = top, os.fsencode(top)
        self._prefix = top.rstrip("/") + "/"
        self._excluded = tuple(os.path.realpath(p) for p in self._exclude)
        try:
            st = os.stat(top)
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), top)
            self._dev = st.st_dev
            observer = self._observer = _Observer(_Inotify(self), self._deliver)
            self._queue = observer.event_queue
            observer.schedule(
                FileSystemEventHandler(),  # unused: _Observer delivers every event itself
                top,
                recursive=True,
                event_filter=list(EVENT_FILTER),
                follow_symlink=False,
            )
            observer.start()
        except OSError as exc:
            self._failed(exc)
            self._degrade(f"cannot watch: {os_reason(exc)}")  # unless _failed did
        with self._lock:
            reason = self.degraded  # (the property: set meanwhile by _degrade)
            self._running = reason is None
        if reason is None:
            return True
        logger.warning(
            "watch %s: not watching %s: %s; new files are found by rescans only",
            self.source,
            self.root,
            reason,
        )
        self.stop()
        return False

    def stop(self) -> None:
        """Stop watching and join watchdog's threads; idempotent. Not from the sink."""
        with self._lock:
            observer, self._observer = self._observer, None
            self._running = False
        if observer is None:
            return
        observer.stop()
        if observer.is_alive():
            observer.join()

    # Called from watchdog's threads.

    def _refuse(self, path: bytes) -> None:
        """Raise ``OSError`` unless ``path`` (a directory watchdog is about to watch) is wanted."""
        if path == self._top_b:
            return
        name = os.fsdecode(path)
        if _below(name, self._excluded):
            raise OSError(errno.EPERM, "excluded from the source", name)
        if os.lstat(path).st_dev != self._dev:
            raise OSError(errno.EXDEV, "another filesystem is mounted there", name)

    def _failed(self, exc: OSError) -> None:
        """A watch or the inotify instance could not be made: degrade if a limit is to blame.

        Other errors (a directory gone or replaced since listed) cost only that directory.
        """
        reason = LIMITS.get(exc.errno or 0)
        if reason is not None:
            self._degrade(reason)

    def _degrade(self, reason: str) -> None:
        """Degrade (once): while starting, ``start`` reports it; later, log and reconcile."""
        with self._lock:
            if self._degraded is not None:
                return
            self._degraded = reason
            running = self._running
        if running:
            logger.warning(
                "watch %s: degraded, no longer watching all of %s: %s; reconciling now, and "
                "rescans find what the watch misses",
                self.source,
                self.root,
                reason,
            )
            self._queue_overflow()

    def _queue_overflow(self) -> None:
        """Queue an "overflow" behind the events already queued."""
        self._queue.put((_Overflow(""), None))

    def _deliver(self, event: FileSystemEvent) -> None:
        at = time.time()
        for relpath, kind in self._translate(event):
            try:
                self._sink(WatchEvent(self.source, relpath, kind, at))
            except Exception:  # the observer thread must outlive a broken sink
                logger.exception(
                    "watch %s: the event sink failed on %s %s", self.source, kind, relpath
                )

    def _translate(self, event: FileSystemEvent) -> list[tuple[str, WatchKind]]:
        if isinstance(event, _Overflow):
            return [("", "overflow")]
        if event.is_synthetic:
            return []  # the content of a moved directory: its "dir" events cover it
        src, dest = os.fsdecode(event.src_path), os.fsdecode(event.dest_path)
        if isinstance(event, DirDeletedEvent) and src == self._top:
            self._degrade(ROOT_REMOVED)  # watchdog's emitter has stopped
            return []
        if event.is_directory:
            return [(rel, "dir") for rel in (self._relpath(src), self._relpath(dest)) if rel]
        pairs: list[tuple[str, WatchKind]]
        if isinstance(event, FileClosedEvent):
            pairs = [(src, "changed")]
        elif isinstance(event, FileMovedEvent):  # src or dest is "" when outside the tree
            pairs = [(src, "deleted"), (dest, "changed")]
        else:  # FileDeletedEvent: EVENT_FILTER lets no other file event through
            pairs = [(src, "deleted")]
        out: list[tuple[str, WatchKind]] = []
        for path, kind in pairs:
            rel = self._relpath(path)
            if rel and not rel.rpartition("/")[2].startswith(ERASE_PREFIX):
                out.append((rel, kind))
        return out

    def _relpath(self, path: str) -> str:
        """``path`` relative to the root; "" when outside it (or the root) or excluded."""
        if not path.startswith(self._prefix) or _below(path, self._excluded):
            return ""
        return path[len(self._prefix) :]


def _below(path: str, dirs: tuple[str, ...]) -> bool:
    return any(path == d or path.startswith(d + "/") for d in dirs)
