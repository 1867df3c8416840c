"""SIGKILL `recd --once` at random moments of an erase batch; every restart must recover.

After each kill a second run recovers and completes; then: the audit chain verifies, every
recording that is gone from disk has exactly one `erase.done` (after its `erase.intent`), none
that is still on disk has one, the catalogue agrees with the audit log, and no intent is left.
`RECD_KILL_TRIALS` sets the number of trials (`make soak` runs 500).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    check_consistent,
    env,
    pending_intents,
    recd,
    write_estate,
    write_recording,
)

TRIALS = int(os.environ.get("RECD_KILL_TRIALS", "30"))
BATCH = 300  # due recordings written before each trial


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
