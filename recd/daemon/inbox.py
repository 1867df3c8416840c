"""The daemon loop's one queue: signals, admin commands and file events, in arrival order.

Signal handlers, watcher threads and admin connection threads only put items here; the loop
takes them. Signals and admin commands are *urgent*: a long sweep asks ``urgent`` between
batches and yields to them, while file events (the daemon's own erasures make some) wait.
Urgency is counted with three counters that each have one writer (the signal handler, the
admin threads under a lock, the loop), so no lock is ever taken in a signal handler.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from recd.errors import CatalogueCorrupt, DaemonUnavailable

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Command(Generic[T]):
    """A change an admin asked for, run on the loop; the asking thread waits on ``future``."""

    fn: Callable[[], T]
    future: Future[T] = field(default_factory=Future)

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            self.future.set_result(self.fn())
        except Exception as exc:
            self.future.set_exception(exc)

    def raise_corrupt(self) -> None:
        """Raise the ``CatalogueCorrupt`` the command ended with, if it did (the loop moves
        the catalogue aside; the admin was told)."""
        failed = None if self.future.cancelled() else self.future.exception(timeout=0)
        if isinstance(failed, CatalogueCorrupt):
            raise failed


class Inbox:
    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.held: deque[object] = deque()  # taken off the queue while batching, not yet handled
        self._signalled = 0
        self._commanded = 0
        self._taken = 0
        self._closing = False
        self._lock = threading.Lock()  # orders call() against close()'s drain

    @property
    def urgent(self) -> bool:
        """A signal or an admin command is waiting."""
        return self._signalled + self._commanded > self._taken

    def signal(self, item: object) -> None:
        """From a signal handler: a queue put and a plain store, nothing that can deadlock."""
        self.queue.put_nowait(item)
        self._signalled += 1

    def call(self, fn: Callable[[], T]) -> T:
        """From another thread: run ``fn`` on the loop and wait for its result."""
        command = Command(fn)
        with self._lock:
            if self._closing:
                raise DaemonUnavailable("recd is stopping; try again when it is back")
            self.queue.put(command)
            self._commanded += 1
        return command.future.result()

    def get(self, timeout: float) -> object:
        """The next item (held ones first), or None after ``timeout`` seconds."""
        if self.held:
            return self.held.popleft()
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def took(self, item: object, file_event: bool) -> None:
        """The loop is handling ``item``; urgent ones stop counting as waiting."""
        if item is not None and not file_event:
            # Clamped: an item put on the queue directly (tests) was never counted as sent.
            self._taken = min(self._taken + 1, self._signalled + self._commanded)

    def more(self, accepts: Callable[[object], bool], limit: int) -> list[object]:
        """Up to ``limit`` queued items that ``accepts``, stopping at the first that does not
        (which is held for the next ``get``)."""
        items: list[object] = []
        while len(items) < limit:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if not accepts(item):
                self.held.append(item)
                break
            items.append(item)
        return items

    def close(self) -> None:
        """Refuse new commands and answer the queued ones: the loop will not run them."""
        with self._lock:
            self._closing = True
        while True:
            try:
                item = self.held.popleft() if self.held else self.queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, Command) and item.future.set_running_or_notify_cancel():
                item.future.set_exception(DaemonUnavailable("recd stopped before running it"))
