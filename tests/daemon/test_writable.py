"""A recording root recd cannot write: said once with its fix, indexed but never tried."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from recd.adapters.local.erase import LocalEraser
from recd.adapters.local.probes import READ_ONLY, unwritable
from recd.config.load import load
from recd.daemon.writable import report_unwritable
from tests.e2e.helpers import env, write_estate, write_recording
from tests.tools import need


def read_only(fd: int) -> Any:
    """``os.fstatvfs`` of ``fd`` as a read-only mount would answer it."""
    real = os.fstatvfs(fd)
    return SimpleNamespace(f_flag=real.f_flag | os.ST_RDONLY)


def test_a_read_only_mount_blocks_the_eraser_and_a_writable_root_does_not(tmp_path: Path) -> None:
    assert LocalEraser(tmp_path).blocked is None
    assert LocalEraser(tmp_path, statvfs=read_only).blocked == READ_ONLY
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert unwritable(fd) is None
        assert unwritable(fd, read_only) == READ_ONLY
    finally:
        os.close(fd)


def test_a_missing_root_is_left_to_the_scan_to_report(tmp_path: Path) -> None:
    assert LocalEraser(tmp_path / "absent", statvfs=read_only).blocked is None


def runtime_with(config_path: Path, blocked: str | None) -> Any:
    config = load(config_path)
    eraser = SimpleNamespace(blocked=blocked)
    return SimpleNamespace(config=config, erasers={"pbx": eraser})


def test_said_once_per_start_again_when_the_reason_changes_and_when_fixed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_estate(tmp_path)
    root = tmp_path / "recordings"
    with caplog.at_level(logging.INFO, logger="recd.daemon.writable"):
        said = report_unwritable(runtime_with(config, READ_ONLY), {})
        said = report_unwritable(runtime_with(config, READ_ONLY), said)  # a reload
        [line] = caplog.messages
        assert line == (
            f"source pbx: recd cannot write its root {root} (it is mounted read-only): its "
            "recordings are indexed but none is erased; the unit may write only what "
            f"ReadWritePaths= lists: systemctl edit recd, add [Service]; ReadWritePaths=-{root}, "
            "then systemctl restart recd (recd check-config prints it)"
        )
        caplog.clear()
        said = report_unwritable(runtime_with(config, "denied"), said)
        assert "setfacl -m g:recd:rwX" in caplog.messages[0]
        caplog.clear()
        assert report_unwritable(runtime_with(config, None), said) == {}
        assert caplog.messages == [
            f"source pbx: root {root} is writable again; erasing there resumes"
        ]


@pytest.mark.root
def test_a_read_only_bind_mount_is_indexed_said_once_and_nothing_is_tried(tmp_path: Path) -> None:
    """A real read-only mount, as ProtectSystem=strict makes one, in a mount namespace of the
    recd process alone (the machine's mounts are untouched)."""
    unshare = need("unshare", "mount")
    config = write_estate(tmp_path)
    root = tmp_path / "recordings"
    due = [write_recording(tmp_path, f"L1/{n}.wav", age_days=40) for n in range(3)]
    recd = shlex.join([sys.executable, "-m", "recd", "--once", "--config", str(config)])
    script = f"mount --bind {root} {root} && mount -o remount,bind,ro {root} && exec {recd}"
    done = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True, text=True, env=env(), check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "3 kept (3 root not writable: it is mounted read-only)" in done.stdout
    said = [line for line in done.stderr.splitlines() if "cannot write its root" in line]
    assert len(said) == 1 and f"ReadWritePaths=-{root}" in said[0], done.stderr
    assert "erase" not in done.stderr.replace(said[0], "").lower(), done.stderr
    assert all(path.exists() for path in due)
    # The same files under a writable root are erased: the mount was what kept them.
    again = subprocess.run(
        shlex.split(recd), capture_output=True, text=True, env=env(), check=False, timeout=120
    )
    assert "3 erased" in again.stdout, again.stdout + again.stderr
    assert not any(path.exists() for path in due)
