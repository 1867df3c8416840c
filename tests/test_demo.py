"""`make demo`: its estate is what it says, and the live demo does what it prints.

The live tests run ``demo/run_demo.py`` as `make demo` does, with the schedule compressed to one
deadline a second, and check the daemon it starts: recordings erased at their deadlines (never
before), the recctl commands it prints work against the live socket, the metrics URL answers,
the audit log verifies, and the demo exits 0 on SIGINT (and after ``--for``).
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest

from demo import tree
from demo.tree import SCHEDULED, generate
from recd.cli import main as recctl
from recd.config.load import load
from recd.daemon.main import main
from recd.daemon.once import run_once
from recd.errors import ExitCode
from tests import tools
from tests.fakes import FakeClock

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "run_demo.py"
PACE = 1  # seconds between deadlines in the live tests
SETTLE = tree.SETTLE_PACES * PACE
LAST_LINE = re.compile(
    r"demo: in \S+ recd erased (\d+) recordings?: (\d+) as (?:it|they) fell due"
    r"(?: \(at most [\d.]+ s after the deadline\))? and (\d+) already overdue when it started; "
    r"(\d+) remains?\. Audit log: (.+)"
)


def erased(audit_log: Path) -> list[dict[str, Any]]:
    """The erase.done entries of ``audit_log``."""
    with audit_log.open(encoding="utf-8") as log:
        entries = [json.loads(line) for line in log]
    return [e for e in entries if e["action"] == "erase.done"]


def run_printed(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a command line as the demo printed it, as a shell would (``# ...`` is a comment)."""
    argv = shlex.split(line, comments=True)
    return subprocess.run(argv, check=False, cwd=cwd, capture_output=True, text=True, timeout=30)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- the estate ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ffmpeg", [True, False], ids=["opus", "wav-id3"])
def test_estate_deadlines_are_those_recd_computes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    ffmpeg: bool,
) -> None:
    if ffmpeg:
        tools.need("ffmpeg")
    if not ffmpeg:
        monkeypatch.setattr("demo.tree.shutil.which", lambda name: None)
    estate = generate(tmp_path / "demo", listen="127.0.0.1:0")
    assert estate.opus is ffmpeg
    assert main(["check-config", "--config", str(estate.config)]) == 0
    assert f"{estate.config}: ok (2 sources, 3 licences, mode enforce)\n" in capsys.readouterr().out
    assert len(estate.of_kind("due")) == SCHEDULED
    assert {c.licence for c in estate.of_kind("due")} == {lic.id for lic in estate.licences}
    steps = sorted(c.deadline - estate.start for c in estate.of_kind("due") if c.deadline)
    assert steps == [timedelta(seconds=k * estate.pace) for k in range(1, SCHEDULED + 1)]

    # One sweep just after the last scheduled deadline erases exactly what the demo says is due
    # by then, at the deadlines it says: recd classifies every name and tag as the demo meant.
    clock = FakeClock(estate.start + timedelta(seconds=SCHEDULED * estate.pace, milliseconds=1))
    assert run_once(load(estate.config), clock, io.StringIO()) == ExitCode.OK
    due = [c for c in estate.calls if c.kind in ("overdue", "restored", "due", "voicemail")]
    done = {
        e["details"]["location"]: utc(e["details"]["deadline"]) for e in erased(estate.audit_log)
    }
    assert done == {str(estate.path(c)): c.deadline for c in due}
    for call in estate.calls:
        assert estate.path(call).exists() is (call not in due), call


def test_live_call_falls_due_after_settle(tmp_path: Path) -> None:
    estate = generate(tmp_path / "demo", listen="127.0.0.1:0", pace=PACE)
    now = estate.start + timedelta(seconds=4)
    call = tree.live_call(estate, 1, now)
    assert estate.path(call).stat().st_size > 0
    assert call.deadline == now + timedelta(seconds=11 * PACE)
    assert call.deadline > now + estate.settle


# --- the live demo --------------------------------------------------------------------------------


class Demo:
    """``run_demo.py`` as a subprocess; its stdout read line by line on a thread."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.log = cwd / "recd.log"
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "RECD_LOG")}
        with self.log.open("wb") as log:  # the daemon's log lines, and any traceback
            self.proc = subprocess.Popen(
                [sys.executable, str(DEMO), "--dir", str(cwd / "demo"), "--pace", str(PACE), *args],
                cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
            )  # fmt: skip
        self.lines: list[str] = []
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, out: IO[str]) -> None:
        for line in out:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            assert self.proc.poll() is None, self.transcript()
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r}:\n{self.transcript()}")

    def finish(self, timeout: float = 60.0) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def transcript(self) -> str:
        return "\n".join(self.lines) + "\n--- stderr ---\n" + self.stderr()

    def close(self) -> None:
        if self.proc.poll() is None:  # a failed test: stop the demo, and so its daemon
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # the daemon gets SIGTERM (PR_SET_PDEATHSIG)
                self.proc.wait()
        self._reader.join(timeout=5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def test_demo_erases_at_deadlines_and_stops_on_sigint(tmp_path: Path) -> None:
    demo = Demo(tmp_path, "--port", "0")
    try:
        launched = datetime.now(UTC)
        metrics = demo.wait_for(r"recd is ready \(pid \d+\); metrics at (http://\S+)")[1]
        ready = datetime.now(UTC)  # the first scan and sweep are done
        demo.wait_for(r"^  kill -HUP")
        printed = [line.strip() for line in demo.lines if line.startswith("  ")]

        # The recctl commands it prints work, as printed, against the live socket.
        status = next(line for line in printed if line.endswith(" status"))
        result = run_printed(status, tmp_path)
        assert result.returncode == 0, result.stderr
        assert re.search(r"^mode: +enforce$", result.stdout, re.M), result.stdout
        assert "(unclassified)  1 " in result.stdout
        show = next(line for line in printed if "held back by erase.settle" in line)
        result = run_printed(show, tmp_path)
        assert result.returncode == 0, result.stderr
        assert f"skipped:     modified less than {SETTLE}s ago" in result.stdout, result.stdout
        audit_ls = next(line for line in printed if " audit ls " in line)
        result = run_printed(audit_ls, tmp_path)
        assert result.returncode == 0, result.stderr
        assert " erase.done " in result.stdout

        with urllib.request.urlopen(metrics, timeout=10) as response:
            body = response.read().decode()
        assert re.search(
            r'^recd_deletions_total\{reason="retention",result="done"\} [1-9]', body, re.M
        )
        assert re.search(r"^recd_unclassified_recordings 1\.0$", body, re.M)

        time.sleep(max(0.0, 20 - (datetime.now(UTC) - launched).total_seconds()))
        demo.proc.send_signal(signal.SIGINT)
        assert demo.finish() == 0, demo.transcript()
    finally:
        demo.close()

    log = demo.stderr()
    assert "INFO recd.daemon.loop: stopping on signal" in log
    assert log.rstrip().endswith("INFO recd.daemon.loop: stopped")
    assert f"yet: modified less than {SETTLE}s ago" in log
    match = LAST_LINE.fullmatch(demo.lines[-1])
    assert match, demo.transcript()
    audit_log = tmp_path / "demo" / "state" / "audit.log"
    assert tmp_path / match[5] == audit_log  # relative to the directory it ran in
    out = io.StringIO()
    with redirect_stdout(out):
        assert recctl.main(["audit", "verify", "--file", str(audit_log)]) == ExitCode.OK

    done = erased(audit_log)
    assert len(done) == int(match[1])
    lags = {e["details"]["location"]: utc(e["time"]) - utc(e["details"]["deadline"]) for e in done}
    assert all(lag >= timedelta(0) for lag in lags.values()), lags  # never early
    # Each recording that fell due once recd was up was erased within seconds of its deadline;
    # those due while it was starting, as soon as it was up.
    fell_due = [e for e in done if utc(e["details"]["deadline"]) >= launched.replace(microsecond=0)]
    for e in fell_due:
        at, deadline = utc(e["time"]), utc(e["details"]["deadline"])
        assert at - max(deadline, ready) < timedelta(seconds=3), e
    assert sum(utc(e["details"]["deadline"]) >= ready for e in fell_due) >= 10, lags
    # The restored recording went once erase.settle had passed, not before.
    restored = [e for e in done if e not in fell_due and utc(e["time"]) > ready]
    assert len(restored) == 1, lags
    assert utc(restored[0]["time"]) - launched >= timedelta(seconds=SETTLE - 1)
    # The first call the demo recorded while running was indexed from its event and erased.
    assert any("/TEN-0002/" in loc and "/9501_" in loc for loc in lags), lags
    recordings = tmp_path / "demo" / "recordings"
    assert (recordings / "tenants" / "stray-call.wav").exists()
    left = [p for p in recordings.rglob("*") if p.is_file()]
    assert len(left) == int(match[4])


def test_demo_falls_back_to_a_free_port_and_stops_after_for(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        demo = Demo(tmp_path, "--port", str(port), "--for", "3")
        try:
            assert demo.finish() == 0, demo.transcript()
        finally:
            demo.close()
    fallback = re.fullmatch(
        rf"demo: 127\.0\.0\.1:{port} is in use \(Address already in use\); "
        r"serving metrics on 127\.0\.0\.1:(\d+) instead",
        demo.lines[0],
    )
    assert fallback, demo.transcript()
    other = int(fallback[1])
    assert other != port
    assert any(f"metrics at http://127.0.0.1:{other}/metrics" in line for line in demo.lines)
    assert LAST_LINE.fullmatch(demo.lines[-1]), demo.transcript()
