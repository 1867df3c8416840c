"""A ``TreeWatcher`` in a process of its own, for tests that must freeze the watcher.

A kernel queue overflow needs more events than ``fs.inotify.max_queued_events`` waiting unread.
That sysctl is machine-wide and has no per-namespace copy, so rather than lowering it under
other processes' feet a test stops the watching process (SIGSTOP: every thread, watchdog's
reader too), writes more events than the queue holds, and lets it go on (SIGCONT)::

    with WatchProcess(root) as proc:
        with proc.frozen():
            overflow_queue(root)
        proc.wait_for(("overflow", ""))

As a program (``python -m tests.adapters.local.watchproc ROOT``) it watches ROOT and prints one JSON
line per event, ``["changed", "a.wav"]``; a line on its stdin stops it, and it prints
``["degraded", reason-or-null]`` last.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from tests import tools

WAIT = 60.0  # seconds; only ever reached when a test fails
QUEUE = Path("/proc/sys/fs/inotify/max_queued_events")
MOST_EVENTS = 1_000_000  # a queue longer than this is not overflowed in a test


def queue_length() -> int:
    """The kernel's inotify queue length for new instances (``fs.inotify.max_queued_events``)."""
    return int(QUEUE.read_text())


def overflow_queue(directory: Path, prefix: str = "burst-") -> int:
    """Create enough files in ``directory`` to overflow a frozen watcher's queue (each file
    makes at least an IN_CLOSE_WRITE, and no two events are alike, so none are merged);
    returns how many. Skips (fails in CI) when the queue is too long to fill."""
    length = queue_length()
    if length > MOST_EVENTS:
        tools.unavailable(f"fs.inotify.max_queued_events is {length}: too long to overflow")
    count = length + 100
    for i in range(count):
        fd = os.open(directory / f"{prefix}{i:07}.wav", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        os.close(fd)
    return count


class WatchProcess:
    """``python -m tests.adapters.local.watchproc ROOT`` with its events read on a thread."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.adapters.local.watchproc", str(root)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            cwd=Path(__file__).resolve().parents[3],
        )  # fmt: skip
        self.lines: list[list[str | bool | None]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        started = self.wait_for(["started", True], ["started", False])
        assert started == ["started", True], "the watcher did not start"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    @property
    def seen(self) -> list[tuple[str, str]]:
        """(kind, relpath) of every event so far."""
        return [(str(k), str(p)) for k, p in self.lines if k not in ("started", "degraded")]

    def wait_for(self, *wanted: list[str | bool | None]) -> list[str | bool | None]:
        """The first line that is one of ``wanted``, waiting for it."""
        deadline = time.monotonic() + WAIT
        while True:
            for line in list(self.lines):
                if line in wanted:
                    return line
            assert self.proc.poll() is None or self._reader.is_alive(), f"exited: {self.lines}"
            assert time.monotonic() < deadline, f"none of {wanted} within {WAIT} s: {self.lines}"
            time.sleep(0.01)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Every thread of the watcher stopped for the block."""
        self.proc.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.proc.send_signal(signal.SIGCONT)

    def finish(self) -> str | None:
        """Stop the watcher; its ``degraded`` reason (None when it was watching everything)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.close()
        assert self.proc.wait(timeout=WAIT) == 0
        self._reader.join(WAIT)
        last = self.lines[-1]
        assert last[0] == "degraded", self.lines[-5:]
        return None if last[1] is None else str(last[1])

    def __enter__(self) -> WatchProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
        self._reader.join(WAIT)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


def main(root: str) -> None:
    from recd.adapters.local.watch import TreeWatcher, WatchEvent

    lock = threading.Lock()

    def say(*line: str | bool | None) -> None:
        with lock:
            print(json.dumps(line), flush=True)

    def sink(event: WatchEvent) -> None:
        say(event.kind, event.relpath)

    watcher = TreeWatcher("pbx", Path(root), sink)
    say("started", watcher.start())
    sys.stdin.readline()
    watcher.stop()
    say("degraded", watcher.degraded)


if __name__ == "__main__":
    main(sys.argv[1])
