"""Issue 13 (7): a source root swapped after start (by whoever owns the root's parent).

recd resolves the root once, at start and never again at a reload (an operator's root may be a
symlink), then opens that resolved path from "/" one component at a time without following any
symlink and checks it is the directory (device, inode, mount id) it saw then. Swapped for a
symlink, renamed away and replaced, a component above it swapped, or a symlink to itself: recd
refuses, says so once as an error naming the root, erases nothing there, and goes on with its
other sources.
"""

from __future__ import annotations

import io
import logging
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recd.adapters.clock import SystemClock
from recd.adapters.local.directory import DirectorySource
from recd.adapters.local.erase import LocalEraser
from recd.adapters.local.safefs import RootChanged, RootPins
from recd.config.load import load
from recd.daemon import once, runtime
from recd.errors import ExitCode
from tests.adapters.local.helpers import OVERWRITE, erase_one, ident, touch
from tests.attacks.helpers import Victim
from tests.e2e.helpers import recctl, start_daemon, stop_daemon, write_estate, write_recording
from tests.fakes import NotifyListener

REFUSED = "nothing is scanned or erased in this source until the directory is put back"
SECOND = """
[[source]]
name = "second"
type = "directory"
path = "{base}/second"
pattern = '^(?P<licence>[A-Z0-9-]+)/[^/]+\\.wav$'
"""


def swap_for_symlink(path: Path, target: Path) -> None:
    path.rename(path.with_name(path.name + ".old"))
    path.symlink_to(target)


def assert_refused(root: Path, victim: Victim, why: str) -> None:
    """Every way in refuses (scanner and eraser made before the swap); the victim is intact."""
    src, e = DIRS[root]
    why = re.escape(why)
    with pytest.raises(RootChanged, match=why) as scan:
        list(src.scan())
    assert scan.value.filename == str(root) and REFUSED in str(scan.value.strerror)
    with pytest.raises(RootChanged, match=why):
        src.facts("L1/rec.wav")
    with pytest.raises(RootChanged, match=why):
        e.prepare("L1/rec.wav", *ident(victim.st))
    with pytest.raises(RootChanged, match=why):
        e.locate("L1/rec.wav", ".recd-erase-0", victim.st.st_dev, victim.st.st_ino)
    assert victim.untouched()


DIRS: dict[Path, tuple[DirectorySource, LocalEraser]] = {}


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Path]:
    """A root holding L1/rec.wav, with its scanner and eraser made (as at start)."""
    root = tmp_path / "parent" / "root"
    touch(root / "L1" / "rec.wav")
    pins = RootPins()  # one run: the scanner and eraser share what they know of the root
    src, e = DirectorySource("pbx", root, pins=pins), LocalEraser(root, pins=pins)
    assert [f.relpath for f in src.scan()] == ["L1/rec.wav"]
    DIRS[root] = (src, e)
    yield root
    del DIRS[root]
    e.close()


def test_root_swapped_for_a_symlink_to_a_tree_of_root_owned_files(
    started: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    victim = Victim(tmp_path / "etc" / "L1" / "rec.wav")
    swap_for_symlink(started, victim.path.parent.parent)
    with caplog.at_level(logging.ERROR):
        assert_refused(
            started, victim, f"] {started} is now a symbolic link to '{tmp_path}/etc', which recd"
        )
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1  # once per change, not once per attempt
    assert refusals[0].startswith(f"source root {started} refused: {started} is now a symbolic")


def test_root_renamed_away_and_replaced_by_another_real_directory(
    started: Path, tmp_path: Path
) -> None:
    started.rename(tmp_path / "moved")
    victim = Victim(started / "L1" / "rec.wav")
    assert_refused(started, victim, "is no longer the directory recd checked at start")


def test_a_component_above_the_root_swapped_for_a_symlink(started: Path, tmp_path: Path) -> None:
    victim = Victim(tmp_path / "copy" / "root" / "L1" / "rec.wav")
    swap_for_symlink(started.parent, tmp_path / "copy")
    assert_refused(started, victim, f"] {started.parent} is now a symbolic link")


def test_root_replaced_by_a_symlink_to_itself(started: Path, tmp_path: Path) -> None:
    victim = Victim(tmp_path / "elsewhere" / "L1" / "rec.wav")
    started.rename(tmp_path / "moved")
    started.symlink_to(started.name)
    assert_refused(started, victim, f"] {started} is now a symbolic link to 'root'")


def test_root_put_back_is_used_again(started: Path, tmp_path: Path) -> None:
    started.rename(tmp_path / "moved")
    started.symlink_to(tmp_path / "moved")
    src, e = DIRS[started]
    with pytest.raises(RootChanged):
        list(src.scan())
    started.unlink()
    (tmp_path / "moved").rename(started)
    assert [f.relpath for f in src.scan()] == ["L1/rec.wav"]
    erase_one(e, "L1/rec.wav", (started / "L1" / "rec.wav").stat(), OVERWRITE)
    assert not (started / "L1" / "rec.wav").exists()


def test_an_operators_root_that_is_a_symlink_is_resolved_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    real = tmp_path / "data" / "asterisk"
    link = tmp_path / "spool"
    touch(real / "L1" / "a.wav")
    link.symlink_to(real)
    pins = RootPins()
    with caplog.at_level(logging.INFO):
        src, e = DirectorySource("pbx", link, pins=pins), LocalEraser(link, pins=pins)
    assert f"source pbx: root {link} resolves to {real}; recd uses {real} and follows no" in (
        caplog.text
    )
    with e:
        assert [f.relpath for f in src.scan()] == ["L1/a.wav"]
        victim = Victim(tmp_path / "other" / "L1" / "a.wav")
        link.unlink()
        link.symlink_to(victim.path.parent.parent)  # repointed after start: not followed
        assert [f.relpath for f in src.scan()] == ["L1/a.wav"]
        erase_one(e, "L1/a.wav", (real / "L1" / "a.wav").stat(), OVERWRITE)
    assert not (real / "L1" / "a.wav").exists()
    assert victim.untouched()


def test_a_root_missing_at_start_is_checked_from_its_first_open(tmp_path: Path) -> None:
    root = tmp_path / "later"
    pins = RootPins()  # one run: the scanner and eraser share what they know of the root
    src, e = DirectorySource("pbx", root, pins=pins), LocalEraser(root, pins=pins)
    with pytest.raises(FileNotFoundError):
        list(src.scan())
    st = touch(root / "L1" / "a.wav")
    with e:
        assert [f.relpath for f in src.scan()] == ["L1/a.wav"]
        root.rename(tmp_path / "moved")
        touch(root / "L1" / "a.wav")
        with pytest.raises(RootChanged):
            e.prepare("L1/a.wav", *ident(st))


def test_once_root_swapped_between_the_scan_and_the_erase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_estate(tmp_path)
    config.write_text(config.read_text() + SECOND.format(base=tmp_path))
    write_recording(tmp_path, "L1/rec.wav", age_days=31)
    other = tmp_path / "second" / "L1" / "due.wav"
    touch(other)
    os.utime(other, (1_000_000_000, 1_000_000_000))
    victim = Victim(tmp_path / "etc" / "L1" / "rec.wav")
    scan_all = runtime.scan_all

    def scan_then_swap(rt: runtime.Runtime) -> bool:
        ok = scan_all(rt)
        swap_for_symlink(tmp_path / "recordings", tmp_path / "etc")
        return ok

    monkeypatch.setattr(once, "scan_all", scan_then_swap)
    out = io.StringIO()
    with caplog.at_level(logging.INFO):
        code = once.run_once(load(config), SystemClock(), out)
    assert code == ExitCode.OK
    assert out.getvalue().startswith("L1: 2 recordings, 2 due, 1 erased, 1 kept (1 cannot open: ")
    assert victim.untouched()
    assert not other.exists()  # the other source went on
    assert f"source root {tmp_path}/recordings refused: {tmp_path}/recordings is now a" in (
        caplog.text
    )


def test_daemon_refuses_a_root_swapped_while_running_and_goes_on_with_the_others(
    tmp_path: Path, listener: NotifyListener
) -> None:
    config = write_estate(tmp_path)
    config.write_text(config.read_text() + SECOND.format(base=tmp_path))
    victim = Victim(tmp_path / "etc" / "L1" / "soon.wav")
    deadline = time.time() + 3
    for base in ("recordings", "second"):
        path = tmp_path / base / "L1" / "soon.wav"
        touch(path)
        started = deadline - 30 * 86400
        os.utime(path, (started, started))
    log = tmp_path / "recd.log"
    proc = start_daemon(config, listener, log)
    try:
        listener.wait_for("READY=1")
        swap_for_symlink(tmp_path / "recordings", tmp_path / "etc")
        while (tmp_path / "second" / "L1" / "soon.wav").exists() and time.time() < deadline + 10:
            time.sleep(0.05)
        assert not (tmp_path / "second" / "L1" / "soon.wav").exists()
        scan = recctl("--socket", str(tmp_path / "recd.sock"), "scan")
        assert scan.returncode != 0
        assert f"source pbx: cannot scan {tmp_path}/recordings: {tmp_path}/recordings is now" in (
            scan.stderr
        )
        # A reload (the operator's, for something else) re-reads the config but does not
        # resolve the swapped root again: the attacker's symlink stays refused.
        proc.send_signal(signal.SIGHUP)
        listener.wait_for("RELOADING=1")
        listener.wait_for("READY=1")
        scan = recctl("--socket", str(tmp_path / "recd.sock"), "scan")
        assert scan.returncode != 0, scan.stdout
        time.sleep(0.5)
        stop_daemon(proc, listener)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert victim.untouched()
    stderr = log.read_text()
    assert f"source root {tmp_path}/recordings refused: {tmp_path}/recordings is now a" in stderr
    assert stderr.count("refused:") == 1, stderr
