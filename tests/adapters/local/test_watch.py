"""The inotify watcher, on real directories with real inotify: what it reports, and how it degrades.

Events arrive on watchdog's thread, so every test waits for them with ``Sink.wait`` (polling, up
to 10 s on a loaded machine). To show that something was *not* reported, a test writes a
sentinel file afterwards and waits for that instead: events are delivered in order.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import os
import shutil
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from recd.adapters.local.watch import ERASE_PREFIX, WATCHDOG_VERSION, TreeWatcher, WatchEvent
from recd.core import model
from recd.ports import source as ports
from tests.adapters.local.watchproc import WatchProcess, overflow_queue
from tests.adapters.loopfs import Mounts

WAIT = 10.0  # seconds; only ever reached when a test fails


class Sink:
    """Collects what the watcher reports, from watchdog's thread."""

    def __init__(self) -> None:
        self.events: list[WatchEvent] = []
        self._lock = threading.Lock()
        self._sentinels = itertools.count()

    def __call__(self, event: WatchEvent) -> None:
        with self._lock:
            self.events.append(event)

    @property
    def seen(self) -> list[tuple[str, str]]:
        """(kind, relpath) of everything so far, sentinels left out."""
        with self._lock:
            return [(e.kind, e.relpath) for e in self.events if "sentinel" not in e.relpath]

    def wait(self, predicate: Callable[[list[tuple[str, str]]], bool]) -> list[tuple[str, str]]:
        deadline = time.monotonic() + WAIT
        while not predicate(seen := self.seen):
            assert time.monotonic() < deadline, f"timed out; seen {seen}"
            time.sleep(0.01)
        return seen

    def wait_for(self, *wanted: tuple[str, str]) -> list[tuple[str, str]]:
        return self.wait(lambda seen: all(w in seen for w in wanted))

    def settle(self, root: Path) -> list[tuple[str, str]]:
        """Everything reported before a file written now, once that file is reported."""
        name = f"sentinel-{next(self._sentinels)}"
        (root / name).write_bytes(b"")
        deadline = time.monotonic() + WAIT
        while True:
            with self._lock:
                if ("changed", name) in [(e.kind, e.relpath) for e in self.events]:
                    break
            assert time.monotonic() < deadline, f"timed out; seen {self.seen}"
            time.sleep(0.01)
        return self.seen


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def watch(tmp_path: Path, sink: Sink) -> Iterator[Callable[..., TreeWatcher]]:
    """Start a watcher on ``tmp_path/root`` (made here); every one is stopped after the test."""
    started: list[TreeWatcher] = []
    (tmp_path / "root").mkdir()

    def start(root: Path | None = None, **kwargs: object) -> TreeWatcher:
        w = TreeWatcher("pbx", root or tmp_path / "root", sink, **kwargs)  # type: ignore[arg-type]
        started.append(w)
        assert w.start() is True
        return w

    yield start
    for w in started:
        w.stop()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


def inotify_watches() -> int:
    """How many inotify watches this process holds now."""
    count = 0
    for fd in os.listdir("/proc/self/fdinfo"):
        try:
            text = Path(f"/proc/self/fdinfo/{fd}").read_text()
        except OSError:
            continue  # the fd listdir itself used, or one closed meanwhile
        count += sum(line.startswith("inotify wd:") for line in text.splitlines())
    return count


def test_file_closed_after_writing_is_changed_within_a_second(
    watch: Callable[..., TreeWatcher], root: Path, sink: Sink
) -> None:
    watch()
    before = time.time()
    (root / "a.wav").write_bytes(b"RIFF")
    assert sink.wait_for(("changed", "a.wav")) == [("changed", "a.wav")]
    event = sink.events[0]
    assert (event.source, event.relpath, event.kind) == ("pbx", "a.wav", "changed")
    # Measured well under 0.1 s; the bound only guards against a lost event on a busy machine.
    assert before <= event.at < before + 5.0


def test_creating_and_writing_is_not_an_event_until_the_file_is_closed(
    watch: Callable[..., TreeWatcher], root: Path, sink: Sink
) -> None:
    watch()
    with (root / "call.wav").open("wb") as fh:
        fh.write(b"RIFF")
        fh.flush()
        os.fsync(fh.fileno())
        assert sink.settle(root) == []
    assert sink.wait_for(("changed", "call.wav")) == [("changed", "call.wav")]


def test_file_moved_in_from_outside_is_changed(
    watch: Callable[..., TreeWatcher], tmp_path: Path, root: Path, sink: Sink
) -> None:
    (root / "1001").mkdir()
    (tmp_path / "spool.wav").write_bytes(b"RIFF")
    watch()
    (tmp_path / "spool.wav").rename(root / "1001" / "a.wav")
    assert sink.settle(root) == [("changed", "1001/a.wav")]


def test_rename_within_the_tree_is_deleted_then_changed(
    watch: Callable[..., TreeWatcher], root: Path, sink: Sink
) -> None:
    (root / "d").mkdir()
    (root / "a.tmp").write_bytes(b"RIFF")
    watch()
    (root / "a.tmp").rename(root / "d" / "a.wav")
    assert sink.settle(root) == [("deleted", "a.tmp"), ("changed", "d/a.wav")]


def test_file_moved_out_or_deleted_is_deleted(
    watch: Callable[..., TreeWatcher], tmp_path: Path, root: Path, sink: Sink
) -> None:
    (root / "a.wav").write_bytes(b"RIFF")
    (root / "b.wav").write_bytes(b"RIFF")
    watch()
    (root / "a.wav").unlink()
    (root / "b.wav").rename(tmp_path / "b.wav")
    assert sink.settle(root) == [("deleted", "a.wav"), ("deleted", "b.wav")]


def test_new_directory_is_reported_and_then_watched(
    watch: Callable[..., TreeWatcher], root: Path, sink: Sink
) -> None:
    watch()
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "b" / "c" / "early.wav").write_bytes(b"RIFF")  # maybe before its watch
    seen = sink.wait_for(("dir", "a"), ("dir", "a/b"), ("dir", "a/b/c"))
    assert ("changed", "a/b/c/early.wav") in seen or ("dir", "a/b/c") in seen
    # Once its "dir" event is out, the directory is watched: the daemon's scan of it, and
    # the events from then on, miss nothing.
    (root / "a" / "b" / "c" / "late.wav").write_bytes(b"RIFF")
    assert sink.wait_for(("changed", "a/b/c/late.wav"))


def test_directory_removed_or_moved_away_is_dir(
    watch: Callable[..., TreeWatcher], tmp_path: Path, root: Path, sink: Sink
) -> None:
    (root / "gone").mkdir()
    (root / "gone" / "a.wav").write_bytes(b"RIFF")
    (root / "away").mkdir()
    watch()
    shutil.rmtree(root / "gone")
    (root / "away").rename(tmp_path / "away")
    assert sink.settle(root) == [("deleted", "gone/a.wav"), ("dir", "gone"), ("dir", "away")]


def test_directory_moved_in_or_renamed_is_dir_for_both_paths_not_per_file(
    watch: Callable[..., TreeWatcher], tmp_path: Path, root: Path, sink: Sink
) -> None:
    (root / "old").mkdir()
    (root / "old" / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "b.wav").write_bytes(b"RIFF")
    watch()
    (root / "old").rename(root / "new")
    (tmp_path / "in").rename(root / "in")
    assert sink.settle(root) == [("dir", "old"), ("dir", "new"), ("dir", "in")]
    (root / "new" / "c.wav").write_bytes(b"RIFF")
    (root / "in" / "d.wav").write_bytes(b"RIFF")
    assert sink.wait_for(("changed", "new/c.wav"), ("changed", "in/d.wav"))


def test_excluded_directory_is_neither_watched_nor_reported(
    watch: Callable[..., TreeWatcher], root: Path, sink: Sink
) -> None:
    (root / "state" / "deep").mkdir(parents=True)
    (root / "1001").mkdir()
    (root / "1001" / "a.wav").write_bytes(b"RIFF")
    watch(exclude=[root / "state", root.parent / "elsewhere"])
    assert inotify_watches() == 2  # root and 1001
    (root / "state" / "catalog.db").write_bytes(b"SQLite")
    (root / "state" / "deep" / "x.wav").write_bytes(b"RIFF")
    (root / "1001" / "a.wav").rename(root / "state" / "a.wav")
    shutil.rmtree(root / "state")
    assert sink.settle(root) == [("deleted", "1001/a.wav")]


def test_erase_temp_names_are_not_reported(
    watch: Callable[..., TreeWatcher], root: Path, sink: Sink
) -> None:
    (root / "a.wav").write_bytes(b"RIFF")
    watch()
    (root / ".recd-erase-0123abcd").write_bytes(b"")
    (root / "a.wav").rename(root / ".recd-erase-4567ef01")
    (root / ".recd-erase-4567ef01").unlink()
    assert sink.settle(root) == [("deleted", "a.wav")]


def test_symlinked_directory_is_not_followed(
    watch: Callable[..., TreeWatcher], tmp_path: Path, root: Path, sink: Sink
) -> None:
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    watch()
    assert inotify_watches() == 1
    (tmp_path / "outside" / "secret.wav").write_bytes(b"RIFF")
    assert sink.settle(root) == []


def test_root_given_through_a_symlink_reports_paths_relative_to_it(
    watch: Callable[..., TreeWatcher], tmp_path: Path, root: Path, sink: Sink
) -> None:
    (tmp_path / "recordings").symlink_to(root)
    watch(tmp_path / "recordings")
    (root / "a.wav").write_bytes(b"RIFF")
    assert sink.wait_for(("changed", "a.wav")) == [("changed", "a.wav")]


def test_events_are_the_ports_type_and_temp_names_the_directory_sources() -> None:
    assert WatchEvent is ports.WatchEvent  # what the daemon's sink checks for
    assert ERASE_PREFIX == model.ERASE_PREFIX  # one definition, in recd.core.model


def test_stop_is_idempotent_and_leaves_no_threads(tmp_path: Path, sink: Sink) -> None:
    before = set(threading.enumerate())
    w = TreeWatcher("pbx", tmp_path, sink)
    w.stop()  # before start: nothing to stop
    assert w.start() is True
    assert len(set(threading.enumerate()) - before) == 3  # inotify reader, emitter, observer
    with pytest.raises(RuntimeError, match=r"^watch pbx: already started$"):
        w.start()
    w.stop()
    w.stop()
    assert set(threading.enumerate()) == before
    assert inotify_watches() == 0
    assert w.degraded is None


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: None, "cannot watch: No such file or directory"),
        (lambda p: p.write_bytes(b""), "cannot watch: Not a directory"),
    ],
    ids=["missing", "a-file"],
)
def test_root_that_cannot_be_watched_degrades(
    tmp_path: Path,
    sink: Sink,
    caplog: pytest.LogCaptureFixture,
    make: Callable[[Path], object],
    reason: str,
) -> None:
    before = set(threading.enumerate())
    make(tmp_path / "root")
    w = TreeWatcher("pbx", tmp_path / "root", sink)
    assert w.start() is False
    assert w.degraded == reason
    assert caplog.messages == [
        f"watch pbx: not watching {tmp_path}/root: {reason}; new files are found by rescans only"
    ]
    assert set(threading.enumerate()) == before


def test_a_failing_sink_is_logged_and_watching_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def sink(event: WatchEvent) -> None:
        seen.append(event.relpath)
        if event.relpath == "a.wav":
            raise ValueError("catalogue full")

    w = TreeWatcher("pbx", tmp_path, sink)
    assert w.start()
    try:
        (tmp_path / "a.wav").write_bytes(b"RIFF")
        (tmp_path / "b.wav").write_bytes(b"RIFF")
        deadline = time.monotonic() + WAIT
        while "b.wav" not in seen:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        w.stop()
    assert seen == ["a.wav", "b.wav"]
    assert caplog.messages == ["watch pbx: the event sink failed on changed a.wav"]
    exc_info = caplog.records[0].exc_info  # logged with its traceback
    assert exc_info is not None
    assert (exc_info[0], str(exc_info[1])) == (ValueError, "catalogue full")


def test_root_removed_degrades_and_asks_for_a_reconciliation(
    watch: Callable[..., TreeWatcher], root: Path, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    (root / "a.wav").write_bytes(b"RIFF")
    w = watch()
    shutil.rmtree(root)
    assert sink.wait_for(("overflow", ""))[-2:] == [("deleted", "a.wav"), ("overflow", "")]
    assert w.degraded == "the root directory was removed"
    assert caplog.messages == [
        f"watch pbx: degraded, no longer watching all of {root}: the root directory was removed;"
        " reconciling now, and rescans find what the watch misses"
    ]


# Inotify limits. The sysctls are machine-wide: lowering them would break every other watcher of
# this uid (a recd running beside the suite), whose watches would break these tests in turn. The
# queue overflow is made by freezing a watcher in a process of its own; the watch and instance
# limits are lowered only inside a user namespace of the test's own (tests/userns.py).


def test_queue_overflow_is_reported(root: Path) -> None:
    root.mkdir()
    with WatchProcess(root) as proc:
        with proc.frozen():
            overflow_queue(root)
        proc.wait_for(["overflow", ""])
        (root / "after.wav").write_bytes(b"")
        proc.wait_for(["changed", "after.wav"])
        assert proc.finish() is None  # an overflow costs a reconciliation, not the watch
    assert proc.seen.count(("overflow", "")) == 1


WATCHES = "inotify watch limit reached (fs.inotify.max_user_watches)"


@pytest.mark.parametrize(
    "reason",
    [
        pytest.param(WATCHES, marks=pytest.mark.userns(max_inotify_watches=0), id="no-watch"),
        pytest.param(
            WATCHES, marks=pytest.mark.userns(max_inotify_watches=1), id="root-watch-only"
        ),
        pytest.param(
            "inotify instance limit reached (fs.inotify.max_user_instances)",
            marks=pytest.mark.userns(max_inotify_instances=0),
            id="no-instance",
        ),
    ],
)
def test_inotify_limit_at_start_degrades(
    tmp_path: Path, sink: Sink, caplog: pytest.LogCaptureFixture, reason: str
) -> None:
    # 0 refuses the root's watch or the inotify instance; 1 lets the root's through (nothing
    # else in the namespace watches) and refuses its subdirectories', which watchdog would skip.
    for d in ("a", "b", "c/d"):
        (tmp_path / d).mkdir(parents=True)
    before = set(threading.enumerate())
    w = TreeWatcher("pbx", tmp_path, sink)
    assert w.start() is False
    assert w.degraded == reason
    assert caplog.messages == [
        f"watch pbx: not watching {tmp_path}: {reason}; new files are found by rescans only"
    ]
    assert set(threading.enumerate()) == before
    assert inotify_watches() == 0
    assert sink.events == []


@pytest.mark.userns(max_inotify_watches=1)  # the root's watch, and no more
def test_watch_limit_on_a_new_directory_degrades_and_asks_for_a_reconciliation(
    watch: Callable[..., TreeWatcher], root: Path, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    w = watch()
    (root / "new1").mkdir()
    (root / "new2").mkdir()
    seen = sink.wait_for(("dir", "new1"), ("dir", "new2"), ("overflow", ""))
    assert seen.count(("overflow", "")) == 1
    assert w.degraded == WATCHES
    assert caplog.messages == [
        f"watch pbx: degraded, no longer watching all of {root}: {WATCHES}; reconciling now, and "
        "rescans find what the watch misses"
    ]
    # The rest of the tree is still watched.
    (root / "a.wav").write_bytes(b"RIFF")
    assert sink.wait_for(("changed", "a.wav"))


# Root only: a mount.


@pytest.mark.root
def test_mount_inside_the_root_is_not_watched(
    watch: Callable[..., TreeWatcher], tmp_path: Path, root: Path, sink: Sink
) -> None:
    with Mounts(tmp_path) as mounts:
        mounts.tmpfs(root / "mnt")
        (root / "mnt" / "sub").mkdir()
        watch()
        assert inotify_watches() == 1
        (root / "mnt" / "sub" / "other-fs.wav").write_bytes(b"RIFF")
        assert sink.settle(root) == []


@pytest.mark.root
def test_root_filesystem_unmounted_degrades_and_asks_for_a_reconciliation(
    tmp_path: Path, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    with Mounts(tmp_path) as mounts:
        mount = mounts.tmpfs(tmp_path / "root")
        (mount.mountpoint / "sub").mkdir()
        w = TreeWatcher("pbx", mount.mountpoint, sink)
        assert w.start()
        try:
            mount.unmount()  # inotify watches do not keep a filesystem busy
            assert sink.wait_for(("overflow", "")) == [("overflow", "")]
        finally:
            w.stop()
    assert w.degraded == "the root's filesystem was unmounted"
    assert caplog.messages == [
        f"watch pbx: degraded, no longer watching all of {tmp_path}/root: the root's filesystem"
        " was unmounted; reconciling now, and rescans find what the watch misses"
    ]


def test_watchdog_is_pinned_to_the_release_this_module_subclasses() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
    pins = [d for d in pyproject["project"]["dependencies"] if d.startswith("watchdog")]
    assert pins == [f"watchdog=={WATCHDOG_VERSION}"]
    assert importlib.metadata.version("watchdog") == WATCHDOG_VERSION
