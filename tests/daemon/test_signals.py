"""recd's signals (``recd.daemon.signals``): the handlers only enqueue, and only the main thread
can receive them."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from recd.adapters.systemd import Notifier
from recd.cli.client import call
from recd.daemon.loop import Daemon
from recd.daemon.signals import Event
from recd.protocol import Request
from tests.daemon.helpers import make
from tests.estate import Estate
from tests.fakes import FakeClock, NotifyListener


def test_signal_handlers_only_enqueue(estate: Estate, listener: NotifyListener) -> None:
    daemon = make(estate, listener)
    saved = {s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)}
    try:
        daemon.install_signals()
        signal.raise_signal(signal.SIGHUP)
        signal.raise_signal(signal.SIGTERM)
        assert [daemon.inbox.queue.get_nowait(), daemon.inbox.queue.get_nowait()] == [
            Event.RELOAD, Event.STOP,
        ]  # fmt: skip
        assert daemon.inbox.queue.empty()
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def blocked_masks() -> dict[str, int]:
    """Each thread of this process: its name and its blocked-signal mask (a thread that ends
    while it is read, such as one of the S3 test server's request threads, is left out)."""
    masks = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            status = (task / "status").read_text()
        except FileNotFoundError:
            continue
        fields = dict(
            line.split(":\t", 1) for line in status.splitlines() if ":\t" in line
        )  # fmt: skip
        masks[f"{task.name} {fields['Name'].strip()}"] = int(fields["SigBlk"], 16)
    return masks


def test_only_the_main_thread_can_receive_recds_signals(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    """A SIGHUP that lands on a worker thread would wait for the main thread to wake up (up
    to an hour): every thread recd starts, and every thread those start, blocks them."""
    estate = Estate(tmp_path, fake_clock)
    daemon = Daemon(estate.config, estate.clock, Notifier(None))
    daemon.start()
    try:
        call(estate.config.daemon.socket, Request("status"), timeout=10)
        daemon.step(Event.RELOAD)  # threads started again on reload are covered too
        wanted = (
            (1 << (signal.SIGHUP - 1)) | (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGINT - 1))
        )
        masks = blocked_masks()
        main = f"{os.getpid()} "
        others = {name: mask for name, mask in masks.items() if not name.startswith(main)}
        assert len(others) >= 4  # control, metrics, watcher threads
        assert {name: mask & wanted for name, mask in others.items()} == dict.fromkeys(
            others, wanted
        )
        assert next(mask for name, mask in masks.items() if name.startswith(main)) & wanted == 0
    finally:
        daemon.stop()
