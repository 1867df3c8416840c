"""SIGKILL the `recd` daemon at random moments; every restart must recover and keep deadlines.

Each trial writes recordings whose deadlines lie between an hour ago and a few seconds after the
daemon starts, starts `recd --config` with a NotifyListener and SIGKILLs it at a random moment:
before READY, during the first scan, inside an erase batch, or while it sleeps until the next
deadline (the moments are calibrated on this machine, as in tests/e2e/test_kill.py). When the
kill left erasures in flight, most trials start it again and SIGKILL it during its recovery. A
last start runs until every recording due by then is gone and is stopped with SIGTERM (exit 0).

After every trial: `recctl audit verify` passes; every `erase.done` follows its own
`erase.intent`; no recording has two; no erase began, or was done, before the deadline the test
computed from the recording's mtime (so nothing that was not due was erased; the recordings due
in days are all there); every recording due is erased; the catalogue, the audit log and the
disk agree, with no intent pending and no erase temp file left. Where each kill landed is judged
from what the killed run left behind, and a minimum share must have hit an erase batch.

Trials share an estate (state, audit log, recordings) in blocks of ``BLOCK``. `RECD_KILL_TRIALS`
sets the number of trials (default 50; `make soak` runs 500), `RECD_KILL_SEED` the seed
(default: a new one each run, named in every failure message).
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from recd.cli.main import main as recctl_main
from recd.core.model import recording_id
from tests.e2e.helpers import (
    audit_entries,
    catalogued,
    check_consistent,
    check_deadlines,
    drain,
    kill_daemon,
    pending_intents,
    recctl,
    start_daemon,
    stop_daemon,
    wait_until,
    write_due_at,
    write_estate,
)
from tests.fakes import NotifyListener

TRIALS = int(os.environ.get("RECD_KILL_TRIALS", "50"))
SEED = int(os.environ.get("RECD_KILL_SEED") or random.randrange(2**32))
BLOCK = 25  # trials sharing one estate
DUE_NOW = 80  # recordings already due when a trial starts
DUE_SOON = 12  # recordings falling due while the daemon runs...
SOON = (0.2, 1.2)  # ...this many seconds after they are written
KEEP = 10  # recordings of each estate due in days: never to be erased
SIZES = (4096, 16384, 65536)
# Where the first kill of a trial is aimed (weights); where it lands is judged afterwards.
AIMS = {"start": 0.15, "scan": 0.2, "sweep": 0.35, "idle": 0.3}
RECOVERED = "mid-recovery (after its audit entries)"
RECOVERY_KILLS = 0.7  # share of the trials left with erasures in flight that kill the restart


@dataclass(frozen=True, slots=True)
class Timing:
    """How long the daemon takes on this machine, in seconds."""

    ready: float  # start -> READY=1
    scanned: float  # READY -> the first due recording erased (scan and planning done)
    swept: float  # READY -> the first "next deadline" status (the first sweep done)


@dataclass
class Tally:
    """Where the kills landed."""

    first: Counter[str] = field(default_factory=Counter)
    restart: Counter[str] = field(default_factory=Counter)
    erased: int = 0

    def count(self, prefix: str | tuple[str, ...]) -> int:
        return sum(n for where, n in self.first.items() if where.startswith(prefix))

    def __str__(self) -> str:
        first = ", ".join(f"{n} {where}" for where, n in sorted(self.first.items()))
        again = ", ".join(f"{n} {where}" for where, n in sorted(self.restart.items()))
        return (
            f"RECD_KILL_SEED={SEED}: {TRIALS} trials, {self.erased} recordings erased; "
            f"first kills: {first}; restarts killed: {again or 'none'}"
        )


class Estate:
    """Recordings, config, state and a notify socket, shared by a block of trials."""

    def __init__(self, base: Path) -> None:
        base.mkdir()
        self.base = base
        self.config = write_estate(base, verify=True, listen="127.0.0.1:0")
        self.listener = NotifyListener(str(base / "notify"))
        self.log = base / "recd.log"
        self.relpaths: dict[str, str] = {}  # recording id -> path below recordings/
        self.deadlines: dict[str, datetime] = {}
        self.keep: set[str] = set()

    def add(self, relpath: str, deadline: float, rng: random.Random) -> str:
        rid = recording_id("pbx", relpath)
        self.deadlines[rid] = write_due_at(self.base, relpath, deadline, rng.choice(SIZES))
        self.relpaths[rid] = relpath
        return rid

    def add_keep(self, rng: random.Random) -> None:
        far = time.time() + 5 * 86400
        self.keep = {self.add(f"L{i % 3 + 1}/keep-{i:02}.wav", far + i, rng) for i in range(KEEP)}

    def add_trial(self, tag: str, rng: random.Random) -> tuple[set[str], float]:
        """Recordings due already and due soon: their ids, and when the last falls due."""
        now = time.time()
        ids = {
            self.add(f"L{i % 3 + 1}/{tag}-{i:03}.wav", now - rng.uniform(0.5, 3600), rng)
            for i in range(DUE_NOW)
        }
        soon = sorted(now + rng.uniform(*SOON) for _ in range(DUE_SOON))
        ids |= {self.add(f"L1/{tag}-soon-{i:02}.wav", t, rng) for i, t in enumerate(soon)}
        return ids, soon[-1]

    def exists(self, rid: str) -> bool:
        return (self.base / "recordings" / self.relpaths[rid]).exists()

    def due_present(self) -> list[str]:
        """The recordings due now and still on disk."""
        now = time.time()
        return [r for r, d in self.deadlines.items() if d.timestamp() <= now and self.exists(r)]

    def start(self) -> subprocess.Popen[bytes]:
        return start_daemon(self.config, self.listener, self.log)

    def run_until_erased(self, until: float = 0.0) -> None:
        """Start recd, wait until everything due at READY (or by ``until``, a Unix time) is
        gone, then SIGTERM it: STOPPING=1 and exit status 0."""
        proc = self.start()
        try:
            self.listener.wait_for("READY=1", timeout=60)
            due_by = max(time.time(), until)
            due = [rid for rid, d in self.deadlines.items() if d.timestamp() <= due_by]
            wait_until(
                f"all {len(due)} recordings due erased",
                lambda: not any(self.exists(rid) for rid in due),
                timeout=60 + max(0.0, until - time.time()),
            )
            stop_daemon(proc, self.listener)
        finally:
            kill_daemon(proc)
        drain(self.listener)

    def check(self, capsys: pytest.CaptureFixture[str]) -> int:
        """Every invariant, after a clean stop; returns how many recordings are erased."""
        erased, present = check_consistent(self.base, set(self.relpaths.values()))
        assert check_deadlines(self.base, self.deadlines) == erased
        assert all(self.exists(rid) for rid in self.keep), "a recording due in days was erased"
        assert present >= len(self.keep)
        log = self.base / "state" / "audit.log"
        entries = audit_entries(self.base)
        capsys.readouterr()
        assert recctl_main(["audit", "verify", "--file", str(log)]) == 0
        assert capsys.readouterr() == (
            f"{log}: {len(entries)} entries, chain intact, last hash {entries[-1]['hash']}\n",
            "",
        )
        return erased

    def tail(self, lines: int = 25) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def lines_of(messages: list[str]) -> list[str]:
    return [line for message in messages for line in message.splitlines()]


def wait_line(listener: NotifyListener, prefix: str, timeout: float = 60.0) -> None:
    """Receive until a line starting with ``prefix`` arrives."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        message = listener.receive(max(0.01, give_up - time.monotonic()))
        if message is not None and any(x.startswith(prefix) for x in message.splitlines()):
            return
    raise AssertionError(f"no {prefix!r} within {timeout} s; got {listener.messages}")


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def calibrate(base: Path) -> Timing:
    """Two clean runs over a trial's recordings, timed: the faster start, the slower rest."""
    estate = Estate(base)
    rng = random.Random(0)
    runs: list[Timing] = []
    try:
        for n in range(2):
            estate.add_trial(f"calibration{n}", rng)
            due = estate.due_present()
            spawned = time.monotonic()
            proc = estate.start()
            try:
                estate.listener.wait_for("READY=1", timeout=60)
                ready = time.monotonic()
                wait_until(
                    "a due recording erased",
                    lambda: not all(estate.exists(rid) for rid in due),  # noqa: B023
                    timeout=60,
                    every=0.002,
                )
                scanned = time.monotonic()
                wait_line(estate.listener, "STATUS=next deadline")
                swept = time.monotonic()
                stop_daemon(proc, estate.listener)
            finally:
                kill_daemon(proc)
            drain(estate.listener)
            runs.append(Timing(ready - spawned, scanned - ready, swept - ready))
    finally:
        estate.listener.close()
    # The faster start: the first run may also have compiled recd's bytecode (a fresh clone),
    # and a kill aimed before READY must land before it.
    return Timing(
        min(t.ready for t in runs), max(t.scanned for t in runs), max(t.swept for t in runs)
    )


def landed(messages: list[str], base: Path, new: set[str]) -> str:
    """Where a killed first run was, judged from its notifications and the state it left."""
    lines = lines_of(messages)
    swept = any(line.startswith("STATUS=next deadline") for line in lines)
    if "READY=1" not in lines:
        return "before READY"
    if pending_intents(base):
        return "mid-sweep (at a deadline)" if swept else "mid-sweep (first sweep)"
    if swept:
        return "idle (waiting for a deadline)"
    if catalogued(base, new) < len(new):
        return "first scan"
    return "first sweep, outside a batch"


def landed_again(messages: list[str], base: Path, audited: list[dict[str, Any]]) -> str:
    """Where a restart killed soon after it started was, with respect to its recovery."""
    if "READY=1" in lines_of(messages):
        return "after READY"
    if not audited:
        return "before opening the state"
    if not pending_intents(base):
        return "after recovery, before READY"
    if any(e["action"] != "config.loaded" for e in audited):
        return RECOVERED
    return "mid-recovery"


def first_kill(
    estate: Estate, aim: str, timing: Timing, last_due: float, rng: random.Random
) -> list[str]:
    """Start recd and SIGKILL it at a random moment of phase ``aim``; its notifications."""
    listener = estate.listener
    due = estate.due_present()
    mark = len(listener.messages)
    spawned = time.monotonic()
    proc = estate.start()
    try:
        if aim == "start":
            sleep_until(spawned + rng.uniform(0.2, 0.8) * timing.ready)
        else:
            listener.wait_for("READY=1", timeout=60)
            ready = time.monotonic()
            if aim == "scan":
                sleep_until(ready + rng.uniform(0.0, timing.scanned))
            elif aim == "sweep":  # from the first erasure on, so that load cannot skew it
                wait_until(
                    "a due recording erased",
                    lambda: not all(estate.exists(rid) for rid in due),
                    every=0.002,
                )
                time.sleep(rng.uniform(0.0, 0.8 * (timing.swept - timing.scanned)))
            else:
                wait_line(listener, "STATUS=next deadline")
                time.sleep(rng.uniform(0.0, max(0.1, last_due + 0.2 - time.time())))
        assert proc.poll() is None, f"recd exited by itself, status {proc.returncode}"
    finally:
        kill_daemon(proc)
    drain(listener)
    return listener.messages[mark:]


def kill_restart(estate: Estate, timing: Timing, rng: random.Random) -> str:
    """Start recd over the erasures a kill left in flight; SIGKILL it as it recovers.

    Recovery runs right after the restart appends ``config.loaded``; it re-runs each unfinished
    erase, so it takes up to as long as an erase batch.
    """
    listener = estate.listener
    log = estate.base / "state" / "audit.log"
    mark, before = len(listener.messages), len(audit_entries(estate.base))
    written = (log.stat().st_size, log.stat().st_mtime_ns)  # a torn tail may be cut: not size
    proc = estate.start()
    try:
        wait_until(
            "the restart opening its state",
            lambda: (
                (log.stat().st_size, log.stat().st_mtime_ns) != written or proc.poll() is not None
            ),
            every=0.001,
        )
        time.sleep(rng.uniform(0.0, timing.swept - timing.scanned))
        assert proc.poll() is None, f"recd exited by itself, status {proc.returncode}"
    finally:
        kill_daemon(proc)
    drain(listener)
    audited = audit_entries(estate.base)[before:]
    return landed_again(listener.messages[mark:], estate.base, audited)


def trial(
    estate: Estate, tag: str, timing: Timing, rng: random.Random, tally: Tally, notes: list[str]
) -> None:
    """One trial; ``notes`` says how far it got (for the failure message)."""
    new, last_due = estate.add_trial(tag, rng)
    aim = rng.choices(list(AIMS), weights=list(AIMS.values()))[0]
    notes.append(f"first kill aimed at {aim}")
    where = landed(first_kill(estate, aim, timing, last_due, rng), estate.base, new)
    tally.first[where] += 1
    notes.append(f"landed {where}")
    if pending_intents(estate.base) and rng.random() < RECOVERY_KILLS:
        again = kill_restart(estate, timing, rng)
        tally.restart[again] += 1
        notes.append(f"restart killed {again}")
    estate.run_until_erased()
    notes.append("restarted and stopped")


def run_block(
    base: Path,
    trials: range,
    timing: Timing,
    rng: random.Random,
    tally: Tally,
    capsys: pytest.CaptureFixture[str],
) -> None:
    estate = Estate(base)
    notes: list[str] = []
    try:
        estate.add_keep(rng)
        for n in trials:
            notes[:] = [f"trial {n}"]
            trial(estate, f"t{n:03}", timing, rng, tally, notes)
            estate.check(capsys)
        # The last trial's recordings due soon: wait for them, then check the whole estate.
        notes[:] = [f"after trial {trials[-1]}, the last recordings due"]
        last = max(d.timestamp() for rid, d in estate.deadlines.items() if rid not in estate.keep)
        estate.run_until_erased(until=last)
        erased = estate.check(capsys)
        assert erased == len(estate.deadlines) - KEEP
        tally.erased += erased
        log = estate.base / "state" / "audit.log"
        entries = audit_entries(estate.base)
        verified = recctl("audit", "verify", "--file", str(log))  # as a process of its own too
        assert (verified.returncode, verified.stdout, verified.stderr) == (
            0,
            f"{log}: {len(entries)} entries, chain intact, last hash {entries[-1]['hash']}\n",
            "",
        )
    except Exception as exc:
        raise AssertionError(
            f"RECD_KILL_SEED={SEED}, {'; '.join(notes)}: {exc}\n"
            f"--- end of {estate.log} ---\n{estate.tail()}"
        ) from exc
    finally:
        estate.listener.close()


@pytest.mark.slow
def test_sigkill_the_daemon_at_random_moments_loses_nothing_and_erases_nothing_early(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    timing = calibrate(tmp_path / "calibration")
    rng = random.Random(SEED)
    tally = Tally()
    for start in range(0, TRIALS, BLOCK):
        block = range(start, min(start + BLOCK, TRIALS))
        run_block(tmp_path / f"block{start // BLOCK}", block, timing, rng, tally, capsys)
    with capsys.disabled():
        print(f"\n{tally}; calibrated {timing}")
    # The kills must have landed where they were aimed, or this test proves little.
    assert tally.count("mid-sweep") >= max(1, TRIALS // 10), tally
    if TRIALS >= 20:
        assert tally.restart["mid-recovery"] + tally.restart[RECOVERED] >= 1, tally
    if TRIALS >= 50:  # each of these is hit by one trial in seven or more
        for where in ("before READY", "idle", ("first scan", "first sweep")):
            assert tally.count(where) >= 1, tally
