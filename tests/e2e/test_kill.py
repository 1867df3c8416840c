"""SIGKILL `recd --once` at random moments of an erase batch; every restart must recover.

After each kill a second run recovers and completes; then: the audit chain verifies, every
recording that is gone from disk has exactly one `erase.done` (after its `erase.intent`), none
that is still on disk has one, the catalogue agrees with the audit log, and no intent is left.
`RECD_KILL_TRIALS` sets the number of trials (`make soak` runs 500).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from recd.core.audit import verify
from recd.core.model import recording_id
from tests.e2e.helpers import env, recd, write_estate, write_recording

TRIALS = int(os.environ.get("RECD_KILL_TRIALS", "30"))
BATCH = 300  # due recordings written before each trial


def check_consistent(base: Path, written: set[str]) -> tuple[int, int]:
    """Assert the invariants; returns (erased, present)."""
    log = (base / "state" / "audit.log").read_bytes()
    result = verify(log.splitlines(keepends=True))
    assert result.ok, result
    entries = [json.loads(line) for line in log.splitlines()]
    done = Counter(e["subject"] for e in entries if e["action"] == "erase.done")
    intents = {e["details"]["intent"] for e in entries if e["action"] == "erase.intent"}
    for e in entries:
        if e["action"] == "erase.done":
            assert e["details"]["intent"] in intents, "erase.done without an earlier intent"
    assert all(n == 1 for n in done.values()), f"erased twice: {done.most_common(3)}"
    db = sqlite3.connect(base / "state" / "catalog.db")
    try:
        assert db.execute("SELECT COUNT(*) FROM intents").fetchone() == (0,)
        state = dict(db.execute("SELECT id, state FROM recordings"))
    finally:
        db.close()
    erased = present = 0
    for relpath in written:
        rid = recording_id("pbx", relpath)
        on_disk = (base / "recordings" / relpath).exists()
        if on_disk:
            present += 1
            assert rid not in done, f"{relpath} audited as erased but still on disk"
            assert state.get(rid) != "erased"
        else:
            erased += 1
            assert done[rid] == 1, f"{relpath} gone without an erase.done"
            assert state[rid] == "erased"
    return erased, present


def pending_intents(base: Path) -> int:
    """Intents left by a killed run (0 if it died before creating the catalogue)."""
    uri = f"file:{base / 'state' / 'catalog.db'}?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True)
    except sqlite3.OperationalError:
        return 0
    try:
        return int(db.execute("SELECT COUNT(*) FROM intents").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # killed before the schema was committed
    finally:
        db.close()


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_an_audit_entry(tmp_path: Path) -> None:
    config = write_estate(tmp_path, verify=True)
    rng = random.Random(int(os.environ.get("RECD_KILL_SEED", "20261123")))
    written: set[str] = set()

    def add_batch(tag: str) -> None:
        for i in range(BATCH):
            relpath = f"L1/{tag}-{i:03}.wav"
            write_recording(tmp_path, relpath, age_days=40, size=rng.choice([4096, 65536]))
            written.add(relpath)

    # Calibrate on this machine: kills should land between start-up and the end of a batch.
    started = time.perf_counter()
    recd("--once", "--config", str(config), check=True)
    startup = time.perf_counter() - started
    add_batch("calibration")
    started = time.perf_counter()
    recd("--once", "--config", str(config), check=True)
    full = time.perf_counter() - started
    interrupted = 0
    for trial in range(TRIALS):
        add_batch(f"t{trial:03}")
        proc = subprocess.Popen(
            [sys.executable, "-m", "recd", "--once", "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(),
        )  # fmt: skip
        time.sleep(rng.uniform(startup * 0.8, full * 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        interrupted += pending_intents(tmp_path) > 0
        again = recd("--once", "--config", str(config))
        assert again.returncode == 0, again.stderr
        check_consistent(tmp_path, written)
    erased, present = check_consistent(tmp_path, written)
    assert (erased, present) == (len(written), 0)
    # The kills must have landed inside erase batches, or this test proves little.
    assert interrupted >= max(1, TRIALS // 10), f"only {interrupted} of {TRIALS} kills hit a batch"
