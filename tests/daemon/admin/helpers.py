"""Shared by the admin command tests (daemon/admin, cli/commands): a started in-process daemon
whose loop runs on a thread behind a real admin socket, and the small estate they ask about.

``Live.close`` stops the daemon and fails the test if a recording was left past its deadline:
nothing these tests do may keep a due recording from being erased."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from recd.adapters.systemd import Notifier
from recd.cli.client import call
from recd.daemon.loop import Daemon
from recd.protocol import Request
from tests.estate import Estate
from tests.fakes import FakeClock


class Live:
    """A started daemon on ``estate``, its loop stepping on a thread until a SIGTERM."""

    def __init__(self, estate: Estate) -> None:
        self.estate = estate
        self.daemon = Daemon(estate.config, estate.clock, Notifier(None))
        self.daemon.start()
        self.thread = threading.Thread(target=self._loop)
        self.thread.start()

    def _loop(self) -> None:
        while not self.daemon.stopping:
            self.daemon.step(self.daemon.next_event())

    def ask(self, command: str, **args: Any) -> Any:
        return call(self.estate.config.daemon.socket, Request(command, args)).unwrap()

    def close(self) -> None:
        self.daemon.handle_signal(15, None)
        self.thread.join()
        try:
            # Nothing may be left past its deadline unless a test blocks erasure on purpose.
            assert self.daemon.snapshot().overdue == 0
        finally:
            self.daemon.stop()


def three_recordings(tmp_path: Path, clock: FakeClock) -> Estate:
    """An ``Estate`` with one recording under L1 (its name says when it started), one under
    L2 and one unknown to every licence: what the admin tests list, show and hold."""
    e = Estate(tmp_path, clock)
    e.write("L1/20261110120000_a.wav", age_days=10)  # the name says when it started
    e.write("L2/b.wav", age_days=5)
    e.write("unknown/c.wav", age_days=1)
    return e
