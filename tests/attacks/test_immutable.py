"""Attack: a due recording made immutable or append-only (``chattr +i`` / ``+a``, ext4).

Whoever can set file attributes (root on the PBX, or a process with ``CAP_LINUX_IMMUTABLE``)
pins a recording so no one can overwrite, rename or unlink it: to keep it past its deadline, or
to make recd fail on it over and over.

What must hold: the erase fails with its reason (``cannot open for writing: Operation not
permitted``), in the log and as ``erase.failed`` in the audit; the file's content is
intact (not partly overwritten, not truncated, not renamed); the recordings around it are erased
on time; ``--once`` exits 4 (some erasures failed); the daemon keeps running, retries at its next
sweep rather than in a loop (no log storm), and erases the file once the attribute is gone.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import tools
from tests.adapters.loopfs import Mounts
from tests.e2e.helpers import (
    audit_entries,
    kill_daemon,
    recd,
    start_daemon,
    stop_daemon,
    wait_until,
    write_due_at,
    write_estate,
    write_recording,
)
from tests.fakes import NotifyListener

pytestmark = pytest.mark.root

EPERM = "cannot open for writing: Operation not permitted"


@pytest.fixture
def base(tmp_path: Path) -> Iterator[Path]:
    """An estate whose recordings directory is an ext4 loop mount (tmpfs has no +i/+a)."""
    with Mounts(tmp_path / "mounts") as mounts:
        (tmp_path / "recordings").mkdir()
        mounts.loop("ext4", size_mb=8, mountpoint=tmp_path / "recordings")
        yield tmp_path


@pytest.fixture
def chattr(base: Path) -> Iterator[list[Path]]:
    """Sets attributes on files; every one is cleared again at the end."""
    tool = tools.need("chattr")
    pinned: list[Path] = []
    yield pinned
    for path in pinned:
        if path.exists():
            subprocess.run([tool, "-i", "-a", str(path)], check=True)


def pin(pinned: list[Path], path: Path, flag: str) -> bytes:
    subprocess.run([tools.need("chattr"), flag, str(path)], check=True)
    pinned.append(path)
    return path.read_bytes()


def unpin(path: Path) -> None:
    subprocess.run([tools.need("chattr"), "-i", "-a", str(path)], check=True)


def failures(base: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for e in audit_entries(base):
        if e["action"] == "erase.failed":
            found.setdefault(e["details"]["location"], []).append(e["details"]["error"])
    return found


def test_once_fails_on_pinned_files_keeps_them_intact_and_erases_the_rest(
    base: Path, chattr: list[Path]
) -> None:
    config = write_estate(base)
    immutable = write_recording(base, "L1/immutable.wav", age_days=31)
    append_only = write_recording(base, "L1/append-only.wav", age_days=31)
    others = [write_recording(base, f"L1/{n}.wav", age_days=31) for n in ("a", "z")]
    content = {immutable: pin(chattr, immutable, "+i"), append_only: pin(chattr, append_only, "+a")}
    for run in (1, 2):  # the second run retries, and fails the same way
        result = recd("--once", "--config", str(config))
        assert result.returncode == 4, result.stderr
        assert "Traceback" not in result.stderr
        for path in content:
            assert f"ERROR recd.service.sweep: erase of {path} failed: {EPERM}\n" in result.stderr
        assert failures(base) == {str(p): [EPERM] * run for p in content}
    assert result.stdout == "L1: 2 recordings, 2 due, 0 erased, 2 failed\n"
    assert not any(p.exists() for p in others)
    for path, data in content.items():
        assert path.read_bytes() == data
    assert sorted(p.name for p in (base / "recordings" / "L1").iterdir()) == [
        "append-only.wav", "immutable.wav",
    ]  # fmt: skip


def test_daemon_retries_a_pinned_file_without_a_storm_and_erases_it_once_released(
    base: Path, chattr: list[Path], listener: NotifyListener
) -> None:
    config = write_estate(base, listen="127.0.0.1:0")
    immutable = write_recording(base, "L1/immutable.wav", age_days=31)
    append_only = write_recording(base, "L1/append-only.wav", age_days=31)
    deadline = time.time() + 3.0
    later = base / "recordings" / "L1" / "later.wav"
    write_due_at(base, "L1/later.wav", deadline)
    for path, flag in ((immutable, "+i"), (append_only, "+a")):
        pin(chattr, path, flag)
    log = base / "recd.log"
    proc = start_daemon(config, listener, log)
    try:
        listener.wait_for("READY=1", timeout=30)
        wait_until("later.wav erased", lambda: not later.exists(), 15)
        assert time.time() < deadline + 3.0  # the failing files did not hold the sweep up
        time.sleep(2.0)  # a storm would show here
        for path in (immutable, append_only):
            lines = log.read_text().count(f"erase of {path} failed: {EPERM}")
            assert 1 <= lines <= 2, f"{path.name}: {lines} failure lines in ~5 s"
            assert 1 <= len(failures(base)[str(path)]) <= 2
            assert path.exists()
            unpin(path)
        proc.send_signal(signal.SIGHUP)  # the reload rescans and sweeps at once
        wait_until("both erased", lambda: not immutable.exists() and not append_only.exists(), 15)
        assert proc.poll() is None
        stop_daemon(proc, listener)
    finally:
        kill_daemon(proc)
    assert "Traceback" not in log.read_text()
    done = {e["details"]["location"] for e in audit_entries(base) if e["action"] == "erase.done"}
    assert done == {str(immutable), str(append_only), str(later)}
