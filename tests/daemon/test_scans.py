"""Scans as the daemon runs them (``recd.daemon.scans``), in-process: the periodic rescan, the
progress a long scan reports, a source that cannot be scanned, and a scan racing a reload."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from recd.cli.client import call
from recd.protocol import ErrorKind, RemoteError, Request
from recd.service import indexing
from tests.daemon.helpers import ask, drain, make
from tests.estate import Estate
from tests.fakes import NotifyListener


def test_rescan_happens_when_due(estate: Estate, listener: NotifyListener) -> None:
    daemon = make(estate, listener)
    daemon.start()
    try:
        assert daemon.timeout() == pytest.approx(3600.0)
        new = estate.write("L1/new.wav", age_days=40)
        estate.clock.advance(6 * 3600)  # daemon.rescan default: 6h
        daemon.step(None)
        assert not new.exists()
    finally:
        daemon.stop()


def test_a_long_scan_reports_its_progress(
    estate: Estate, listener: NotifyListener, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setattr(indexing, "BATCH", 2)  # a progress report every 2 files, not 5000
    for i in range(5):  # one directory each: the indexer flushes between directories
        estate.write(f"L{i}/a.wav", age_days=1)
    daemon = make(estate, listener, watchdog=15.0)
    daemon.start()
    try:
        messages = drain(listener)
        assert [m for m in messages if "so far" in m] == [
            "STATUS=scanning pbx: 2 files so far",
            "STATUS=scanning pbx: 4 files so far",
        ]
        assert "WATCHDOG=1" not in messages  # the fake clock stood still: none was due yet
    finally:
        daemon.stop()


def test_scan_of_a_source_that_cannot_be_scanned_is_an_error(
    estate: Estate, listener: NotifyListener
) -> None:
    daemon = make(estate, listener)
    daemon.start()

    def loop() -> None:
        while not daemon.stopping:
            daemon.step(daemon.next_event())

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        shutil.rmtree(estate.root)
        with pytest.raises(RemoteError) as caught:
            call(estate.config.daemon.socket, Request("scan", {"source": "pbx"})).unwrap()
        assert (caught.value.kind, str(caught.value)) == (
            ErrorKind.FAILED,
            f"source pbx: cannot scan {estate.root}: No such file or directory",
        )
    finally:
        daemon.handle_signal(signal.SIGTERM, None)
        thread.join()
        daemon.stop()


def test_a_scan_of_a_source_a_reload_removed_meanwhile_scans_nothing(
    estate: Estate, listener: NotifyListener
) -> None:
    pbx = estate.config.sources[0]
    (estate.base / "more").mkdir()
    estate.configure(sources=(pbx, replace(pbx, name="pbx2", path=estate.base / "more")))
    without = replace(estate.config, sources=(pbx,))
    daemon = make(estate, listener, loader=lambda path: without)
    daemon.start()
    try:
        daemon.handle_signal(signal.SIGHUP, None)  # the reload comes first...
        replies: list[Any] = []
        # ...then `recctl scan --source pbx2`, checked against the configuration before it
        admin = threading.Thread(target=lambda: replies.append(ask(daemon, "scan", source="pbx2")))
        admin.start()
        deadline = time.monotonic() + 10
        while daemon.inbox.queue.qsize() < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        daemon.step(daemon.next_event())  # the reload: pbx2 is gone
        assert [s.name for s in daemon.config.sources] == ["pbx"]
        daemon.step(daemon.next_event())  # the scan of pbx2
        admin.join(timeout=10)
        assert replies == [[]]  # nothing scanned, and the loop goes on
    finally:
        daemon.stop()
