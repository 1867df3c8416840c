"""Watching in the daemon: real inotify events become indexing work, reconciliations and sweeps.

The daemon is started in-process on a real estate (real files, real SQLite, real inotify) with a
fake clock; each test takes what watchdog's thread queues and drives ``step`` itself, so nothing
is indexed by a rescan unless the test moves the clock past one. Events arrive on another thread:
every wait has a deadline (``WAIT``), reached only when a test fails.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from recd.adapters.local.directory import DirectorySource
from recd.adapters.local.watch import TreeWatcher
from recd.adapters.systemd import Notifier
from recd.core.model import FileFacts, Provenance, Recording, State, recording_id
from recd.daemon.loop import Daemon
from recd.daemon.signals import Event
from recd.daemon.watching import DEGRADED_POLL, WatchBatch, Watching
from recd.errors import RecdError
from recd.ports.source import Source, WatchEvent
from tests.estate import Estate
from tests.fakes import FakeClock

WAIT = 30.0  # seconds; only ever reached when a test fails


def event(relpath: str, kind: str = "changed", source: str = "pbx", at: float = 0.0) -> WatchEvent:
    return WatchEvent(source, relpath, kind, at)  # type: ignore[arg-type]


# -- WatchBatch and Watching, without a daemon ------------------------------------------------


def test_batch_keeps_the_last_event_per_path_in_the_order_of_last_events() -> None:
    batch = WatchBatch()
    for e in [
        event("a.wav", "changed", at=1),
        event("b.wav", "changed", at=2),
        event("a.wav", "deleted", at=3),  # removed after it was written: gone
        event("b.wav", "deleted", at=4),
        event("b.wav", "changed", at=5),  # ... and written again: index it
        event("a.wav", "changed", source="other", at=6),  # another source's a.wav
    ]:
        batch.add(e)
    assert len(batch) == 3
    assert list(batch.events.values()) == [
        event("a.wav", "deleted", at=3),
        event("b.wav", "changed", at=5),
        event("a.wav", "changed", source="other", at=6),
    ]


def test_batch_keeps_a_directory_event_beside_a_file_event_of_the_same_path() -> None:
    batch = WatchBatch()
    batch.add(event("d", "changed"))  # a file d, removed, and a directory d made there
    batch.add(event("d", "deleted"))
    batch.add(event("d", "dir"))
    batch.add(event("", "overflow"))
    batch.add(event("", "overflow"))
    assert [(e.relpath, e.kind) for e in batch.events.values()] == [
        ("d", "deleted"), ("d", "dir"), ("", "overflow"),
    ]  # fmt: skip


def sources(tmp_path: Path, *names: str) -> dict[str, Source]:
    out: dict[str, Source] = {}
    for name in names:
        (tmp_path / name).mkdir(exist_ok=True)
        out[name] = DirectorySource(name, tmp_path / name)
    return out


def test_reconciles_ask_for_the_outermost_subtrees_once() -> None:
    watching = Watching(lambda e: None)
    batch = WatchBatch()
    for relpath in ["a/b", "a", "a/b/c", "ab", "c/d", "c/d/e", "a"]:
        batch.add(event(relpath, "dir"))
    batch.add(event("x/y", "dir", source="other"))
    assert watching.split(batch, {"pbx": SOURCE, "other": SOURCE}) == {}
    assert watching.next_poll == 0.0  # work waiting: the loop must not sleep
    assert watching.take_reconciles(1000.0) == [
        ("other", "x/y"), ("pbx", "a"), ("pbx", "ab"), ("pbx", "c/d"),
    ]  # fmt: skip
    assert watching.take_reconciles(1000.0) == []  # taken: asked for once
    assert watching.next_poll is None


def test_a_whole_source_reconciliation_wins_over_its_subtrees(
    caplog: pytest.LogCaptureFixture,
) -> None:
    overflows: list[str] = []
    watching = Watching(lambda e: None, overflows.append)
    batch = WatchBatch()
    batch.add(event("a/b", "dir"))
    batch.add(event("", "overflow"))
    batch.add(event("c", "dir"))
    batch.add(event("c", "dir", source="other"))
    assert watching.split(batch, {"pbx": SOURCE, "other": SOURCE}) == {}
    assert overflows == ["pbx"]
    assert caplog.messages == ["source pbx: file events were lost; reconciling the whole source"]
    assert watching.take_reconciles(1000.0) == [("other", "c"), ("pbx", "")]


class _Nowhere:
    """Stands for a source no test event reaches (split only looks it up)."""

    name = "nowhere"


SOURCE: Source = _Nowhere()  # type: ignore[assignment]


def test_split_looks_each_file_up_again(tmp_path: Path) -> None:
    srcs = sources(tmp_path, "pbx")
    (tmp_path / "pbx" / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "pbx" / "b.wav").write_bytes(b"RIFF")
    batch = WatchBatch()
    batch.add(event("a.wav", "changed", at=5.0))
    batch.add(event("b.wav", "deleted", at=6.0))  # a hint only: b.wav is there, yet gone it is
    batch.add(event("c.wav", "changed", at=7.0))  # closed, then removed before the lookup
    batch.add(event("x.wav", "changed", source="unknown"))  # a source no longer configured
    watching = Watching(lambda e: None)
    out = watching.split(batch, srcs)
    assert list(out) == ["pbx"]
    mine = out["pbx"]
    st = (tmp_path / "pbx" / "a.wav").stat()
    assert mine.files == [
        FileFacts(
            "pbx", "a.wav", st.st_dev, st.st_ino, 4, st.st_mtime_ns, 1, ctime_ns=st.st_ctime_ns
        )
    ]
    assert mine.gone == ["b.wav", "c.wav"]
    assert mine.received == {"a.wav": 5.0}
    assert watching.take_reconciles(0.0) == []


class UnreadableBelow(DirectorySource):
    """A directory source on which one directory cannot be read by ``facts`` (as when recd runs
    as a user a directory's mode keeps out; root, which runs these tests, is never kept out)."""

    def __init__(self, name: str, root: Path, locked: str) -> None:
        super().__init__(name, root)
        self.locked = locked

    def facts(self, relpath: str) -> FileFacts | None:
        if relpath.startswith(self.locked + "/"):
            raise PermissionError(13, "Permission denied", self.locked)
        return super().facts(relpath)


def test_split_reconciles_a_directory_it_cannot_look_into(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "pbx" / "1001" / "locked").mkdir(parents=True)
    source = UnreadableBelow("pbx", tmp_path / "pbx", "1001/locked")
    batch = WatchBatch()
    batch.add(event("1001/locked/a.wav"))
    batch.add(event("1001/locked/b.wav", "deleted"))  # needs no lookup: gone is gone
    watching = Watching(lambda e: None)
    out = watching.split(batch, {"pbx": source})
    assert (out["pbx"].files, out["pbx"].gone) == ([], ["1001/locked/b.wav"])
    assert caplog.messages == [
        "source pbx: cannot look at 1001/locked/a.wav: Permission denied; reconciling its directory"
    ]
    assert watching.take_reconciles(0.0) == [("pbx", "1001/locked")]


def test_a_degraded_watcher_is_polled_every_degraded_poll(tmp_path: Path) -> None:
    watching = Watching(lambda e: None)
    assert (watching.next_poll, watching.mode("pbx")) == (None, "none")
    watcher = TreeWatcher("pbx", tmp_path / "not-there", watching.sink)
    assert watcher.start() is False  # degraded: nothing to watch
    watching.watchers["pbx"] = watcher  # as if it had degraded while running
    assert watching.mode("pbx") == "periodic"
    assert watching.take_reconciles(100.0) == [("pbx", "")]  # at once
    assert watching.next_poll == 100.0 + DEGRADED_POLL
    assert watching.take_reconciles(100.0 + DEGRADED_POLL - 0.1) == []
    assert watching.take_reconciles(100.0 + DEGRADED_POLL) == [("pbx", "")]
    assert watching.next_poll == 100.0 + 2 * DEGRADED_POLL  # re-armed from the poll
    watching.stop()
    assert (watching.mode("pbx"), watching.take_reconciles(1e9)) == ("none", [])
    assert poll(watching) is None


def poll(watching: Watching) -> float | None:
    return watching.next_poll  # through a call, so that mypy does not narrow it across stop()


# -- in the daemon, with real inotify ---------------------------------------------------------


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    e = Estate(tmp_path, fake_clock)
    for licence in ("L1", "L2"):
        (e.root / licence).mkdir()  # made now: no "dir" event when a test writes into them
    return e


def make(estate: Estate) -> Daemon:
    return Daemon(estate.config, estate.clock, Notifier(None))


@pytest.fixture
def daemon(estate: Estate) -> Iterator[Daemon]:
    d = make(estate)
    d.start()
    try:
        yield d
    finally:
        d.stop()


def step_next(daemon: Daemon) -> None:
    """One wake-up, on the next item queued (waiting for watchdog's thread to queue it)."""
    daemon.step(daemon.inbox.queue.get(timeout=WAIT))


def step_until(daemon: Daemon, done: Callable[[], bool]) -> None:
    """Wake-ups on queued items until ``done()``."""
    deadline = time.monotonic() + WAIT
    while not done():
        assert time.monotonic() < deadline, "timed out waiting for the daemon"
        try:
            item = daemon.inbox.queue.get(timeout=0.05)
        except queue.Empty:
            continue
        daemon.step(item)


def row(daemon: Daemon, relpath: str) -> Recording | None:
    return daemon.runtime.catalogue.get(recording_id("pbx", relpath))


def state(daemon: Daemon, relpath: str) -> State | None:
    found = row(daemon, relpath)
    return None if found is None else found.state


def metric(daemon: Daemon, name: str, **labels: str) -> float | None:
    assert daemon.metrics is not None
    return daemon.metrics.registry.get_sample_value(name, labels)


def scans(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [m for m in caplog.messages if m.startswith("scan pbx")]


def test_recording_closed_after_start_is_indexed_on_the_next_wake_up_without_a_rescan(
    daemon: Daemon, estate: Estate, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="recd.service.indexing")
    caplog.clear()
    path = estate.write("L1/new.wav", age_days=1)
    step_next(daemon)
    found = row(daemon, "L1/new.wav")
    assert found is not None
    assert scans(caplog) == []  # indexed from the event alone
    st = path.stat()
    assert (found.state, found.size, found.ino, found.mtime_ns) == (
        State.PRESENT, 4096, st.st_ino, st.st_mtime_ns,
    )  # fmt: skip
    c = found.classification
    assert (c.licence, c.started) == ("L1", estate.clock.now() - timedelta(days=1))
    assert (c.provenance["licence"], c.provenance["started"]) == (
        Provenance.PATTERN, Provenance.MTIME,
    )  # fmt: skip
    assert found.deadline == c.started + timedelta(days=30)
    assert metric(daemon, "recd_indexing_lag_seconds_count") == 1.0


def test_removed_recordings_become_missing(daemon: Daemon, estate: Estate, tmp_path: Path) -> None:
    estate.write("L1/a.wav", age_days=1)
    estate.write("L2/b.wav", age_days=1)
    step_until(daemon, lambda: state(daemon, "L2/b.wav") is State.PRESENT)
    (estate.root / "L1" / "a.wav").unlink()
    (estate.root / "L2" / "b.wav").rename(tmp_path / "b.wav")  # moved out of the tree
    step_until(daemon, lambda: state(daemon, "L2/b.wav") is State.MISSING)
    assert state(daemon, "L1/a.wav") is State.MISSING


def test_recordings_moved_in_or_within_the_tree_are_indexed_where_they_are(
    daemon: Daemon, estate: Estate, tmp_path: Path
) -> None:
    spool = tmp_path / "spool.wav"
    spool.write_bytes(b"RIFF" * 100)
    spool.rename(estate.root / "L2" / "moved.wav")
    step_next(daemon)
    found = row(daemon, "L2/moved.wav")
    assert found is not None
    assert (found.state, found.size, found.classification.licence) == (State.PRESENT, 400, "L2")
    (estate.root / "L2" / "moved.wav").rename(estate.root / "L1" / "renamed.wav")
    step_until(daemon, lambda: state(daemon, "L1/renamed.wav") is State.PRESENT)
    step_until(daemon, lambda: state(daemon, "L2/moved.wav") is State.MISSING)


def test_new_directory_is_reconciled_then_watched(
    daemon: Daemon, estate: Estate, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="recd.service.indexing")
    staged = tmp_path / "staging" / "L3"
    staged.mkdir(parents=True)
    (staged / "a.wav").write_bytes(b"RIFF")  # written before the directory is in the tree:
    (staged / "b.wav").write_bytes(b"RIFF")  # no event will ever name these files
    caplog.clear()
    staged.rename(estate.root / "L3")
    step_next(daemon)
    assert (state(daemon, "L3/a.wav"), state(daemon, "L3/b.wav")) == (State.PRESENT,) * 2
    assert scans(caplog) == ["scan pbx (L3): 2 files, 2 new, 0 changed, 0 missing, 0 unclassified"]
    caplog.clear()
    (estate.root / "L3" / "c.wav").write_bytes(b"RIFF")  # written after: its own event
    step_next(daemon)
    assert state(daemon, "L3/c.wav") is State.PRESENT
    assert scans(caplog) == []


def test_directory_removed_is_reconciled_and_its_recordings_become_missing(
    daemon: Daemon, estate: Estate, tmp_path: Path
) -> None:
    estate.write("L1/keep.wav", age_days=1)
    staged = tmp_path / "staging" / "L3"
    staged.mkdir(parents=True)
    (staged / "a.wav").write_bytes(b"RIFF")
    staged.rename(estate.root / "L3")
    step_until(daemon, lambda: state(daemon, "L3/a.wav") is State.PRESENT)
    step_until(daemon, lambda: state(daemon, "L1/keep.wav") is State.PRESENT)
    (estate.root / "L3").rename(tmp_path / "away")  # one "dir" event, no per-file event
    step_until(daemon, lambda: state(daemon, "L3/a.wav") is State.MISSING)
    assert state(daemon, "L1/keep.wav") is State.PRESENT


def test_a_directory_that_cannot_be_looked_into_is_reconciled_instead(
    daemon: Daemon, estate: Estate, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="recd.service.indexing")
    daemon.runtime.sources["pbx"] = UnreadableBelow("pbx", estate.root, "L2")
    caplog.clear()
    estate.write("L2/a.wav", age_days=1)
    step_next(daemon)
    assert state(daemon, "L2/a.wav") is State.PRESENT  # found by the scan of L2
    assert [m for m in caplog.messages if not m.startswith("sweep")] == [
        "source pbx: cannot look at L2/a.wav: Permission denied; reconciling its directory",
        "scan pbx (L2): 1 files, 1 new, 0 changed, 0 missing, 0 unclassified",
    ]


def test_overflow_reconciles_the_whole_source_and_is_counted(
    daemon: Daemon, estate: Estate, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert metric(daemon, "recd_watch_overflows_total", source="pbx") == 0.0
    outside = tmp_path / "outside.wav"
    outside.write_bytes(b"RIFF")
    os.link(outside, estate.root / "L1" / "linked.wav")  # IN_CREATE only: never reported
    estate.clock.advance(10)
    caplog.clear()
    daemon.inbox.queue.put(event("", "overflow", at=time.time()))  # what the watcher queues
    step_next(daemon)
    assert state(daemon, "L1/linked.wav") is State.PRESENT
    assert metric(daemon, "recd_watch_overflows_total", source="pbx") == 1.0
    assert caplog.messages[:2] == [
        "source pbx: file events were lost; reconciling the whole source",
        "scan pbx: 1 files, 1 new, 0 changed, 0 missing, 0 unclassified",
    ]
    (status,) = daemon.state().sources
    assert status.last_scan == estate.clock.now()  # a full scan, as at start


def test_recording_due_when_written_is_erased_on_the_same_wake_up(
    daemon: Daemon, estate: Estate
) -> None:
    # The name says the call started 31 days ago; the file was last written 5 minutes ago
    # (past erase.settle): its deadline has passed before recd ever saw it.
    path = estate.write("L1/late.wav", age_days=31, modified_seconds_ago=300)
    relpath = path.relative_to(estate.root).as_posix()
    assert daemon.timeout() == 3600.0  # nothing due, no deadline: only a file event wakes it
    step_next(daemon)
    assert not path.exists()
    assert state(daemon, relpath) is State.ERASED
    assert estate.actions() == [
        ("erase.intent", recording_id("pbx", relpath)),
        ("erase.done", recording_id("pbx", relpath)),
    ]


def test_file_events_queued_before_a_sigterm_do_not_delay_the_stop(
    daemon: Daemon, estate: Estate
) -> None:
    daemon.watching.stop()  # no watcher: the events below are the test's own
    paths = [estate.write(f"L1/old{i}.wav", age_days=31) for i in range(3)]
    for path in paths:
        daemon.inbox.queue.put(event(path.relative_to(estate.root).as_posix()))
    daemon.handle_signal(signal.SIGTERM, None)
    daemon.step(daemon.next_event())  # the three file events, in one batch
    assert all(p.exists() for p in paths)  # the sweep they ask for yields to the signal
    assert {state(daemon, f"L1/old{i}.wav") for i in range(3)} == {State.PRESENT}
    assert daemon.next_event() is Event.STOP  # next, not after a sweep
    daemon.step(Event.STOP)
    assert daemon.stopping
    daemon.stop()
    assert all(p.exists() for p in paths)


def test_file_events_are_taken_in_batches_of_at_most_10000(daemon: Daemon) -> None:
    daemon.watching.stop()  # no watcher: the events below are the test's own
    assert daemon.inbox.queue.empty()
    for i in range(10_001):
        daemon.inbox.queue.put(event(f"L1/gone{i}.wav", "deleted"))
    daemon.step(daemon.next_event())
    assert daemon.inbox.queue.qsize() == 1


def test_source_root_removed_while_watched_is_polled_until_it_is_back(
    daemon: Daemon, estate: Estate, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    pinned = estate.root.stat().st_ino
    shutil.rmtree(estate.root)
    step_until(daemon, lambda: daemon.watching.mode("pbx") == "periodic" and not daemon.inbox.held
               and metric(daemon, "recd_watch_overflows_total", source="pbx") == 1.0)  # fmt: skip
    assert f"source pbx: cannot scan {estate.root}: No such file or directory" in caplog.messages
    assert metric(daemon, "recd_source_watch_degraded", source="pbx") == 1.0
    estate.write("L1/back.wav", age_days=1)  # the root is back; nothing watches it
    daemon.step(None)
    assert row(daemon, "L1/back.wav") is None
    assert daemon.timeout() == pytest.approx(DEGRADED_POLL)
    estate.clock.advance(DEGRADED_POLL)
    daemon.step(None)
    # The poll finds the root again. Whether it may index it depends on the directory that came
    # back: one that reused the old inode number is the root recd pinned at start; any other is
    # a replaced root, refused as tests/attacks/test_root_swap.py requires. Which one the kernel
    # hands out is up to it (under load, another process may take the freed number).
    if estate.root.stat().st_ino == pinned:
        assert state(daemon, "L1/back.wav") is State.PRESENT
    else:
        assert row(daemon, "L1/back.wav") is None
        assert any(
            m.startswith(f"source root {estate.root} refused: {estate.root} is no longer the")
            for m in caplog.messages
        ), caplog.messages


@pytest.mark.userns(max_inotify_watches=0)  # in a user namespace of its own: tests/userns.py
def test_source_that_cannot_be_watched_is_polled(
    estate: Estate, caplog: pytest.LogCaptureFixture
) -> None:
    from recd.daemon.admin.dispatch import Admin
    from recd.daemon.control import Caller
    from recd.protocol import Request

    daemon = make(estate)
    daemon.start()
    try:
        assert (
            f"watch pbx: not watching {estate.root}: inotify watch limit reached "
            "(fs.inotify.max_user_watches); new files are found by rescans only"
        ) in caplog.messages
        caller = Caller(os.getpid(), 0, 0, ())
        status = Admin(daemon).handle(Request("status"), caller).unwrap()
        assert [(s["name"], s["watch"]) for s in status["sources"]] == [("pbx", "periodic")]
        assert metric(daemon, "recd_source_watch_degraded", source="pbx") == 1.0
        estate.write("L1/polled.wav", age_days=1)
        estate.clock.advance(DEGRADED_POLL)
        daemon.step(None)
        assert state(daemon, "L1/polled.wav") is State.PRESENT
        estate.write("L1/next.wav", age_days=1)
        daemon.step(None)  # the poll is re-armed: not before DEGRADED_POLL more
        assert row(daemon, "L1/next.wav") is None
        assert daemon.timeout() == pytest.approx(DEGRADED_POLL)
        estate.clock.advance(DEGRADED_POLL)
        daemon.step(None)
        assert state(daemon, "L1/next.wav") is State.PRESENT
    finally:
        daemon.stop()


@pytest.mark.userns(max_inotify_watches=0)
def test_source_that_cannot_be_watched_is_not_rescanned_straight_after_the_first_scan(
    estate: Estate,
) -> None:
    daemon = make(estate)
    daemon.start()
    try:
        assert daemon.timeout() == pytest.approx(DEGRADED_POLL)
    finally:
        daemon.stop()


def test_a_scan_that_fails_is_not_shown_as_still_scanning(daemon: Daemon, estate: Estate) -> None:
    daemon.watching.stop()  # (so that the removal below is not also an event to handle)
    shutil.rmtree(estate.root)
    with pytest.raises(RecdError, match=r"^source pbx: cannot scan .*/recordings: No such file"):
        daemon.scan_sources(["pbx"])
    assert [(s.name, s.scanning) for s in daemon.state().sources] == [("pbx", False)]


def test_an_overflow_is_counted_and_reconciled(daemon: Daemon, estate: Estate) -> None:
    daemon.watching.stop()  # no watcher: the overflow below is the test's own
    estate.write("L1/unseen.wav", age_days=1)
    daemon.inbox.queue.put(event("", "overflow"))
    daemon.step(daemon.next_event())
    assert state(daemon, "L1/unseen.wav") is State.PRESENT
    assert metric(daemon, "recd_watch_overflows_total", source="pbx") == 1.0
