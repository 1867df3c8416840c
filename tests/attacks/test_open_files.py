"""Attack: a process holds a due recording open for writing.

A recording's name says it started long ago (it is past its deadline), but a process still has
it open for writing: a softphone uploader that stalled, a PBX still recording into a file with an
old name, or a local user who opens it to keep it out of recd's reach or to race the erase.

What must hold: while a writer holds it open, recd neither overwrites nor unlinks it (the
kernel's lease says someone writes: "not erasing ... yet: open for writing by another process", a
wait that is logged, not audited), and the writer's data is intact; once the writer closes it, a
file that has settled (``erase.settle`` since its last change) is erased at the deadline its name
gives; one modified within ``erase.settle`` waits for that. The recordings around it are erased;
no traceback.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.attacks.helpers import OPEN, Writer, named, named_estate
from tests.e2e.helpers import (
    audit_entries,
    kill_daemon,
    recd,
    start_daemon,
    stop_daemon,
    wait_until,
)
from tests.fakes import NotifyListener


def touched(base: Path, path: Path) -> list[str]:
    """The audit actions about ``path``."""
    return [e["action"] for e in audit_entries(base) if e["details"].get("location") == str(path)]


def test_once_leaves_a_file_open_for_writing_and_erases_it_after_it_closes(
    tmp_path: Path, writers: list[Writer]
) -> None:
    config = named_estate(tmp_path, settle="0s")
    held = named(tmp_path, "held", age_days=40)
    other = named(tmp_path, "other", age_days=40)
    writer = Writer(held)
    writers.append(writer)
    writer.write()
    content = held.read_bytes()
    result = recd("--once", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"INFO recd.service.sweep: not erasing {held} yet: {OPEN}\n" in result.stderr
    assert result.stdout == f"L1: 2 recordings, 2 due, 1 erased, 1 kept (1 {OPEN})\n"
    assert held.read_bytes() == content and not other.exists()
    assert touched(tmp_path, held) == []  # a wait, not a decision: nothing to audit yet

    writer.close()
    result = recd("--once", "--config", str(config))
    assert (result.returncode, result.stdout) == (0, "L1: 1 recording, 1 due, 1 erased\n")
    assert not held.exists()


def test_once_waits_for_a_closed_file_to_settle(tmp_path: Path, writers: list[Writer]) -> None:
    config = named_estate(tmp_path, settle="1s")
    held = named(tmp_path, "held", age_days=40)
    writer = Writer(held)
    writers.append(writer)
    time.sleep(1.1)  # settled since it was created; only the writer keeps it
    writer.write()
    writer.close()
    result = recd("--once", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert f"not erasing {held} yet: modified less than 1s ago\n" in result.stderr
    assert held.exists()
    time.sleep(1.1)
    result = recd("--once", "--config", str(config))
    assert (result.returncode, result.stdout) == (0, "L1: 1 recording, 1 due, 1 erased\n")
    assert not held.exists()


def test_daemon_keeps_a_held_file_while_open_and_erases_it_when_closed(
    tmp_path: Path, writers: list[Writer], listener: NotifyListener
) -> None:
    config = named_estate(tmp_path, settle="0s", listen="127.0.0.1:0")
    held = named(tmp_path, "held", age_days=40)
    other = named(tmp_path, "other", age_days=40)
    writer = Writer(held)
    writers.append(writer)
    writer.write()
    log = tmp_path / "recd.log"
    proc = start_daemon(config, listener, log)
    try:
        listener.wait_for("READY=1", timeout=30)
        wait_until("the other erased", lambda: not other.exists(), 15)
        time.sleep(1.0)
        assert held.exists()
        assert touched(tmp_path, held) == []
        assert f"not erasing {held} yet: {OPEN}\n" in log.read_text()
        writer.close()
        # The close is an inotify event, but the file did not change, so nothing wakes a sweep
        # before the daemon's 30 s retry; a reload rescans and sweeps at once.
        proc.send_signal(signal.SIGHUP)
        wait_until("the held file erased", lambda: not held.exists(), 15)
        assert proc.poll() is None
        stop_daemon(proc, listener)
    finally:
        kill_daemon(proc)
    assert "Traceback" not in log.read_text()
