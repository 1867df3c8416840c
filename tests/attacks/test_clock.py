"""A wall clock far from the truth (issue 13, point 11): at start, and stepped while recd runs.

Started with the wall clock 10 years ahead, recd once erased every recording due by then. Now the
clock at start is compared with the last audit entry and the newest recording (directory change
times, S3 LastModified); a gap over ``safety.max_clock_gap`` pauses erasing until an
administrator confirms the clock. The machine's clock is never changed: the subprocess runs recd
with its clock adapter reading 10 years ahead, in-process tests use ``FakeClock``.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recd.adapters.systemd import Notifier
from recd.daemon.loop import Daemon
from tests.e2e.helpers import (
    audit_entries,
    env,
    recctl,
    recd,
    stop_daemon,
    wait_until,
    write_estate,
    write_recording,
)
from tests.estate import Estate
from tests.fakes import FakeClock, NotifyListener

TEN_YEARS = timedelta(days=3653)

#: ``python -c`` code: recd's own entry point, its system clock reading 10 years ahead.
AHEAD = f"""
import sys
from datetime import timedelta
from recd.adapters import clock
real = clock.SystemClock.now
clock.SystemClock.now = lambda self: real(self) + timedelta(seconds={TEN_YEARS.total_seconds()})
from recd.daemon.main import main
sys.exit(main(sys.argv[1:]))
"""


def recd_ahead(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", AHEAD, *args],
        capture_output=True, text=True, env=env(), check=False, timeout=120,
    )  # fmt: skip


def test_once_ten_years_ahead_erases_nothing_until_confirmed(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    calls = [write_recording(tmp_path, f"L1/{n}.wav", age_days=1) for n in range(3)]
    assert recd("--config", str(config), "--once").returncode == 0  # an audit log to go by
    ahead = recd_ahead("--config", str(config), "--once")
    assert (ahead.returncode, ahead.stdout) == (3, "")
    assert ahead.stderr.splitlines()[-1] == (
        "recd: erasing nothing: wall clock is 10y ahead of the last audit entry and the newest "
        "recording (more than safety.max_clock_gap 3d); check the clock, then run "
        "`recd --once --confirm-clock`"
    )
    assert all(c.exists() for c in calls)
    confirmed = recd_ahead("--config", str(config), "--once", "--confirm-clock")
    assert confirmed.returncode == 0, confirmed.stderr
    assert confirmed.stdout == "L1: 3 recordings, 3 due, 3 erased\n"
    assert not any(c.exists() for c in calls)
    (entry,) = [e for e in audit_entries(tmp_path) if e["action"] == "clock.confirmed"]
    assert entry["actor"] == recctl_user()
    assert entry["details"]["problem"].startswith("wall clock is 10y ahead")
    assert entry["details"]["reason"] is None


def test_confirm_clock_goes_with_once(tmp_path: Path) -> None:
    out = recd("--config", str(write_estate(tmp_path)), "--confirm-clock")
    assert (out.returncode, out.stderr) == (
        2,
        "recd: --confirm-clock goes with --once (the daemon: `recctl clock confirm`)\n",
    )


def recctl_user() -> str:
    import os
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def test_daemon_ten_years_ahead_pauses_until_recctl_clock_confirm(
    tmp_path: Path, listener: NotifyListener
) -> None:
    config = write_estate(tmp_path, listen="127.0.0.1:0")
    calls = [write_recording(tmp_path, f"L1/{n}.wav", age_days=1) for n in range(2)]
    assert recd("--config", str(config), "--once").returncode == 0
    with (tmp_path / "recd.log").open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", AHEAD, "--config", str(config)],
            env={**env(), "NOTIFY_SOCKET": listener.path},
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        paused = (
            "STATUS=erasing paused: wall clock is 10y ahead of the last audit entry and the "
            "newest recording (more than safety.max_clock_gap 3d); check the clock, then "
            "`recctl clock confirm`"
        )
        wait_until("the pause", lambda: listener.receive(0.2) and paused in listener.messages)
        socket = str(tmp_path / "recd.sock")
        status = recctl("--socket", socket, "status")
        assert "clock guard:" in status.stdout
        assert "paused: wall clock is 10y ahead" in status.stdout
        assert all(c.exists() for c in calls)
        out = recctl("--socket", socket, "clock", "confirm", "--reason", "NTP was checked")
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("clock confirmed at ")
        assert "erasing resumes (it was paused: wall clock is 10y ahead" in out.stdout
        wait_until("the erasures", lambda: not any(c.exists() for c in calls))
    finally:
        stop_daemon(proc, listener)
    (entry,) = [e for e in audit_entries(tmp_path) if e["action"] == "clock.confirmed"]
    assert entry["actor"] == recctl_user()
    assert entry["details"]["reason"] == "NTP was checked"
    assert "10y ahead" in entry["details"]["problem"]
    assert entry["details"]["wall"].startswith(str(datetime.now(UTC).year + 10))
    log = (tmp_path / "recd.log").read_text()
    assert "erasing paused: wall clock is 10y ahead of the last audit entry" in log


def test_running_guard_catches_a_jump_on_a_small_estate(
    tmp_path: Path, listener: NotifyListener
) -> None:
    estate = Estate(tmp_path, FakeClock(datetime.now(UTC)))
    calls = [estate.write(f"L1/{n}.wav", age_days=1) for n in range(3)]
    daemon = Daemon(estate.config, estate.clock, Notifier(listener.path))
    daemon.start()
    try:
        assert daemon.clock_problem is None
        estate.clock.set(estate.clock.now() + TEN_YEARS)  # stepped: the monotonic clock stays
        daemon.step(None)
        assert all(c.exists() for c in calls)  # 3 recordings: far below the breaker's minimum
        assert daemon.status() == (
            "erasing paused: wall clock jumped 3653d ahead of the monotonic clock "
            "(more than safety.max_clock_jump 1h)"
        )
        estate.clock.advance(3600)
        daemon.step(None)
        assert all(c.exists() for c in calls)  # the pause lasts
        _, problem = daemon.confirm_clock("root", "set by hand")  # as `recctl clock confirm`
        assert (problem or "").startswith("wall clock jumped 3653d ahead")
        daemon.step(None)
        assert not any(c.exists() for c in calls)  # the administrator's decision
    finally:
        daemon.stop()
    confirmed = [a for a in estate.audit() if a["action"] == "clock.confirmed"]
    assert [c["details"]["reason"] for c in confirmed] == ["set by hand"]


def test_start_far_ahead_of_the_tree_pauses_in_process(
    tmp_path: Path, listener: NotifyListener
) -> None:
    """No audit log yet: the directories' change times alone show the gap."""
    estate = Estate(tmp_path, FakeClock(datetime.now(UTC)))
    call = estate.write("L1/a.wav", age_days=1)
    estate.clock.set(estate.clock.now() + timedelta(days=3, hours=1))
    daemon = Daemon(estate.config, estate.clock, Notifier(listener.path))
    daemon.start()
    try:
        assert call.exists()
        assert daemon.clock_problem == (
            "wall clock is 3d ahead of the newest recording (more than safety.max_clock_gap "
            "3d); check the clock, then `recctl clock confirm`"
        )
        estate.clock.advance(86400)
        daemon.step(None)
        assert call.exists()
        assert daemon.metrics is not None
        reason = daemon.metrics.registry.get_sample_value(
            "recd_clock_guard_paused_reason", {"reason": "start-gap"}
        )
        assert reason == 1.0
    finally:
        daemon.stop()
