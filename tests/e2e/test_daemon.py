"""`recd` as a real daemon process: READY, deadlines kept to the second, SIGHUP, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.e2e.helpers import env, write_estate
from tests.fakes import NotifyListener


def start(config: Path, listener: NotifyListener, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "recd", "--config", str(config)],
            env={**env(), "NOTIFY_SOCKET": listener.path},
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip


def due_in(base: Path, relpath: str, seconds: float) -> tuple[Path, float]:
    """A recording whose 30-day deadline is ``seconds`` from now; returns it and the deadline."""
    path = base / "recordings" / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(4096))
    deadline = time.time() + seconds
    started = (datetime.fromtimestamp(deadline, UTC) - timedelta(days=30)).timestamp()
    os.utime(path, (started, started))
    return path, deadline


def test_daemon_erases_at_the_deadline_reloads_and_stops_cleanly(
    tmp_path: Path, listener: NotifyListener
) -> None:
    config = write_estate(tmp_path, listen="127.0.0.1:0")
    soon, deadline = due_in(tmp_path, "L1/soon.wav", 4.0)
    log = tmp_path / "recd.log"
    proc = start(config, listener, log)
    try:
        listener.wait_for("READY=1")
        while soon.exists() and time.time() < deadline + 5:
            time.sleep(0.05)
        erased_at = time.time()
        assert not soon.exists()
        assert deadline <= erased_at <= deadline + 2.0, erased_at - deadline

        config.write_text(config.read_text() + "\n[bogus]\n")  # a broken config
        proc.send_signal(signal.SIGHUP)
        messages = listener.wait_for("RELOADING=1")
        listener.wait_for("READY=1")
        assert proc.poll() is None  # still serving with the old configuration

        proc.send_signal(signal.SIGTERM)
        listener.wait_for("STOPPING=1")
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = log.read_text()
    assert f"reload refused: {config}: bogus: unknown key" in stderr
    assert "RELOADING=1" in "\n".join(messages)


def test_sigterm_mid_sweep_finishes_the_batch_and_loses_nothing(
    tmp_path: Path, listener: NotifyListener
) -> None:
    from tests.e2e.helpers import check_consistent, write_recording

    config = write_estate(tmp_path, verify=True, listen="127.0.0.1:0")
    written = set()
    for i in range(1500):
        relpath = f"L1/old{i:04}.wav"
        write_recording(tmp_path, relpath, age_days=40, size=16384)
        written.add(relpath)
    proc = start(config, listener, tmp_path / "recd.log")
    try:
        listener.wait_for("READY=1")
        # READY comes before the first scan; let the sweep get going, then stop it.
        give_up = time.monotonic() + 30
        while all((tmp_path / "recordings" / r).exists() for r in written):
            assert time.monotonic() < give_up, "nothing was erased within 30 s"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        listener.wait_for("STOPPING=1")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    erased, present = check_consistent(tmp_path, written)
    assert erased >= 1
    assert present >= 1, "the whole sweep ran: SIGTERM was not honoured between batches"
