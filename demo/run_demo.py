"""`make demo`: write the demo estate, run the recd daemon on it, and stop it cleanly on Ctrl-C.

The daemon runs as a child in the foreground (its log lines are its standard error, shown as
they come) with its admin socket, state and configuration inside the demo directory and its
metrics on 127.0.0.1:9464 (or a free port, said so, when that one is taken). The demo reads
its systemd notifications on a socket of its own, prints the recctl commands to try once the
first sweep is done, records a new call now and then, and on Ctrl-C (or after ``--for``
seconds) sends the daemon SIGINT, waits for it, verifies the audit log and says what was erased.

Exit status: the daemon's (0 after a clean stop), or 1 when the audit log does not verify.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import select
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demo.tree import DEFAULT_PACE, LIVE_PACES, SCHEDULED, Estate, generate, live_call

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEFAULT_PORT = 9464
READY_TIMEOUT = 60.0  # seconds to wait for the daemon's READY=1 and first sweep
STOP_TIMEOUT = 90.0  # as systemd/recd.service's TimeoutStopSec
SUN_PATH_MAX = 107  # bytes in a Unix socket path, without the final NUL


class Stop(Exception):
    """Ctrl-C, SIGTERM or SIGHUP reached the demo: stop the daemon."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


# --- showing commands ------------------------------------------------------------------------


def shown(path: Path) -> str:
    """``path`` relative to the current directory when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def tool(name: str) -> list[str]:
    """How to run recd's ``recd`` or ``recctl`` from here: the venv's script if there is one."""
    script = BIN / name
    if script.exists():
        return [shown(script)]
    return [sys.executable, "-m", "recd" if name == "recd" else "recd.cli.main"]


def say(text: str = "") -> None:
    print(text, flush=True)


def run_shown(argv: list[str]) -> int:
    say("$ " + shlex.join(argv))
    return subprocess.run(argv, check=False).returncode


def when(t: datetime) -> str:
    return f"{t:%H:%M:%S}Z"


def span(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds // 60}m{seconds % 60:02d}s"


# --- the metrics port ------------------------------------------------------------------------


def free_port(port: int) -> tuple[int, str | None]:
    """``port`` if it can be listened on at 127.0.0.1, else a free one and why (0: any)."""
    if port:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
            try:
                probe.bind(("127.0.0.1", port))
                return port, None
            except OSError as exc:
                why = f"127.0.0.1:{port} is in use ({exc.strerror})"
    else:
        why = None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1]), why


# --- systemd notifications -------------------------------------------------------------------


class Notifications:
    """A datagram socket given to recd as NOTIFY_SOCKET, as systemd would."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(str(path))
        self.ready = False
        self.status = ""

    def wait(self, timeout: float) -> list[str]:
        """The state lines received within ``timeout`` seconds (may be none)."""
        readable, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        got: list[str] = []
        while readable:
            try:
                data = self.sock.recv(4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            for line in data.decode(errors="replace").splitlines():
                got.append(line)
                if line == "READY=1":
                    self.ready = True
                elif line.startswith("STATUS="):
                    self.status = line.removeprefix("STATUS=")
        return got

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


# --- the story -------------------------------------------------------------------------------


def describe(estate: Estate) -> None:
    pace = estate.pace
    names = ", ".join(f"{lic.name} ({lic.id}, {lic.retention})" for lic in estate.licences)
    say(f"Licences and their retention: {names}; Initech's is shortened for the demo.")
    restored = estate.of_kind("restored")[0]
    first = estate.start + timedelta(seconds=pace)
    last = estate.start + timedelta(seconds=SCHEDULED * pace)
    voicemail = estate.of_kind("voicemail")[0]
    kind = "Opus" if estate.opus else "WAV (ffmpeg not found, so not Opus)"
    later = len(estate.of_kind("later"))
    say(f"What happens (times UTC; demo started at {when(estate.start)}):")
    rows = [
        ("at once", f"{len(estate.of_kind('overdue'))} recordings already past their deadline"
         " are erased"),
        (f"{when(first)}-{when(last)}", f"{len(estate.of_kind('due'))} recordings fall due,"
         f" one every {pace} s, the licences in turn: each is erased within a second"),
        (f"at {when(voicemail.deadline or last)}", f"a voicemail {kind} whose licence and start"
         " are in its tags, not its name, falls due"),
        (f"until {when(estate.start + estate.settle)}", "erase.settle keeps a recording"
         f" restored from backup just now, although due: {estate.name(restored)}"),
        (f"every {span(LIVE_PACES * pace)}", "the demo records a new Initech call; recd"
         f" indexes it when the file is closed and erases it {span(11 * pace)} later"),
        ("never", "tenants/stray-call.wav: no licence in its name or tags (unclassified:"
         " kept and listed)"),
        ("later", f"{later} recordings due in days or months"),
    ]  # fmt: skip
    width = max(len(left) for left, _ in rows)
    for left, right in rows:
        say(f"  {left:<{width}}  {right}")


def try_these(estate: Estate, pid: int, metrics: str) -> None:
    recctl = shlex.join([*tool("recctl"), "--socket", shown(estate.socket)])
    audit = shlex.join([*tool("recctl"), "audit", "ls", "--file", shown(estate.audit_log)])
    restored = estate.of_kind("restored")[0]
    voicemail = estate.of_kind("voicemail")[0]
    say()
    say(f"recd is ready (pid {pid}); metrics at {metrics}")
    say("Try these in another terminal while it runs (Ctrl-C here stops the demo):")
    for line in (
        f"{recctl} status",
        f"{recctl} ls",
        f"{recctl} ls --state erased",
        f"{recctl} policy",
        f"{recctl} show {restored.id}  # held back by erase.settle",
        f"{recctl} show {voicemail.id}  # classified by its tags",
        f"{audit} --action erase.done",
        f"curl -s {metrics} | grep ^recd_",
        f"kill -HUP {pid}  # reload {shown(estate.config)} after editing it",
    ):
        say(f"  {line}")
    say()


def erased_line(estate: Estate, since: datetime, elapsed: float) -> str:
    """The last line: what was erased (from the audit log), what is left, where the log is."""
    on_time, before, worst = 0, 0, 0.0
    with contextlib.suppress(OSError), estate.audit_log.open(encoding="utf-8") as log:
        for line in log:
            entry = json.loads(line)
            if entry["action"] != "erase.done":
                continue
            deadline = datetime.fromisoformat(entry["details"]["deadline"])
            if deadline < since:
                before += 1
            else:
                on_time += 1
                worst = max(
                    worst, (datetime.fromisoformat(entry["time"]) - deadline).total_seconds()
                )
    left = sum(
        1 for root in estate.roots.values() for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".recd-erase-")
    )  # fmt: skip
    total = on_time + before
    fell = "as it fell due" if on_time == 1 else "as they fell due"
    lag = f" (at most {worst:.2f} s after the deadline)" if on_time else ""
    return (
        f"demo: in {span(elapsed)} recd erased {total} recording{'s' * (total != 1)}: "
        f"{on_time} {fell}{lag} and {before} already overdue when it started; "
        f"{left} remain{'s' * (left == 1)}. Audit log: {shown(estate.audit_log)}"
    )


# --- running ---------------------------------------------------------------------------------


def die_with_the_demo() -> None:
    """In the daemon's child process: SIGTERM when the demo dies, even by SIGKILL (Linux
    PR_SET_PDEATHSIG), since its own process group keeps the terminal's signals from it."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def daemon_env(notify: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID")
    }
    env["NOTIFY_SOCKET"] = str(notify)
    return env


def already_running(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def signals_stop() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP raise Stop in the demo (the daemon has a process group of its
    own, so a Ctrl-C at the terminal reaches only the demo, which forwards it once)."""
    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def supervise(
    estate: Estate,
    proc: subprocess.Popen[bytes],
    notes: Notifications,
    args: argparse.Namespace,
    metrics: str,
) -> None:
    """Until Stop, the end of ``--for`` or the daemon's exit: show READY, record live calls."""
    started = time.monotonic()
    end = started + args.seconds if args.seconds is not None else None
    shown_commands = False
    n = 0
    next_call = estate.start + timedelta(seconds=LIVE_PACES * estate.pace)
    while proc.poll() is None:
        now = datetime.now(UTC)
        if now >= next_call:
            n += 1
            call = live_call(estate, n, now)
            say(
                f"demo: recorded a new Initech call, due at {when(call.deadline or now)}: {estate.name(call)}"
            )
            next_call += timedelta(seconds=LIVE_PACES * estate.pace)
        waits = [(next_call - now).total_seconds(), 1.0]
        if end is not None:
            if time.monotonic() >= end:
                return
            waits.append(end - time.monotonic())
        notes.wait(min(waits))
        if not shown_commands and notes.ready and not notes.status.startswith("scanning"):
            try_these(estate, proc.pid, metrics)
            shown_commands = True
        elif not shown_commands and time.monotonic() - started > READY_TIMEOUT:
            say(f"demo: recd has not reported its first sweep after {READY_TIMEOUT:.0f} s"
                f" (last status: {notes.status or 'none'}); still waiting")  # fmt: skip
            started = time.monotonic()


def stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGINT to the daemon and wait for it; a second Ctrl-C kills it."""
    if proc.poll() is not None:
        return proc.returncode
    say(f"demo: stopping recd (SIGINT to pid {proc.pid}); it finishes the erase in flight first")
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=STOP_TIMEOUT)
    except Stop:
        say("demo: killing recd (SIGKILL); its next start finishes any interrupted erase")
    except subprocess.TimeoutExpired:
        say(f"demo: recd did not stop within {STOP_TIMEOUT:.0f} s; killing it (SIGKILL)")
    proc.kill()
    return proc.wait()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run_demo.py",
        description="Write a demo estate of real recordings whose deadlines fall due over the "
        "next few minutes, run the recd daemon on it, and stop it cleanly on Ctrl-C.",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=ROOT / "demo-run",
        metavar="PATH",
        help="where to write the estate (replaced; default: demo-run in the repository)",
    )
    parser.add_argument(
        "--for",
        dest="seconds",
        type=float,
        metavar="SECONDS",
        help="stop after this many seconds, as Ctrl-C would (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--pace",
        type=int,
        default=DEFAULT_PACE,
        metavar="SECONDS",
        help=f"seconds between deadlines; erase.settle and Initech's retention scale with it (default: {DEFAULT_PACE})",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="N",
                        help=f"metrics port on 127.0.0.1; a free one is used if it is taken, 0 for any (default: {DEFAULT_PORT})")  # fmt: skip
    args = parser.parse_args(argv)
    if args.pace < 1:
        parser.error("--pace: at least 1 second")
    if args.seconds is not None and args.seconds <= 0:
        parser.error("--for: more than 0 seconds")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base: Path = args.dir.resolve()
    sock = base / "run" / "recd.sock"
    if len(os.fsencode(base / "run" / "notify.sock")) > SUN_PATH_MAX:
        say(f"demo: {base} is too long a path for a Unix socket below it; use a shorter --dir")
        return 2
    if already_running(sock):
        say(
            f"demo: a recd is already serving {shown(sock)}; stop that demo first (Ctrl-C in its terminal)"
        )
        return 1
    port, why = free_port(args.port)
    if why:
        say(f"demo: {why}; serving metrics on 127.0.0.1:{port} instead")
    estate = generate(base, pace=args.pace, listen=f"127.0.0.1:{port}")
    metrics = f"http://127.0.0.1:{port}/metrics"
    say(f"recd demo: a live daemon on a demo estate in {shown(base)}")
    describe(estate)
    say()
    if run_shown([*tool("recd"), "check-config", "--config", shown(estate.config)]) != 0:
        return 78
    notes = Notifications(base / "run" / "notify.sock")
    command = [*tool("recd"), "--config", shown(estate.config)]
    say("$ " + shlex.join(command) + "    # in the foreground; its log follows")
    started, since = time.monotonic(), datetime.now(UTC).replace(microsecond=0)
    proc: subprocess.Popen[bytes] | None = None
    with signals_stop():
        try:
            proc = subprocess.Popen(
                command,
                env=daemon_env(notes.path),
                process_group=0,
                preexec_fn=die_with_the_demo,  # noqa: PLW1509 (the demo runs no other thread)
            )
            with contextlib.suppress(Stop):
                supervise(estate, proc, notes, args, metrics)
            code = stop(proc)
        finally:
            if proc is not None and proc.poll() is None:  # the demo itself failed
                proc.kill()
                proc.wait()
            notes.close()
    if code < 0:
        say(f"demo: recd was killed by {signal.Signals(-code).name}; its messages above say why")
        return 128 - code
    if code != 0:
        say(f"demo: recd exited with status {code}; its messages above say why")
        return code
    verified = run_shown([*tool("recctl"), "audit", "verify", "--file", shown(estate.audit_log)])
    say(erased_line(estate, since, time.monotonic() - started))
    return 0 if verified == 0 else 1


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # before the daemon started, or after it stopped
        say()
        raise SystemExit(130) from None
