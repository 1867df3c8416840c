"""SIGKILL `recd --once` during a first index (a bulk load: the catalogue's secondary indexes
are dropped while it loads); the next run builds them, indexes what was left and sweeps.

Afterwards the catalogue has every index, the audit chain verifies and agrees with the
catalogue and the files, every due recording is erased once and every other one catalogued.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recd.adapters.sqlite.schema import SECONDARY_INDEXES
from recd.core.model import recording_id
from tests.e2e.helpers import check_consistent, env, recd, write_estate

FILES = 12_000  # more than two 5,000-row transactions: the kill lands between them
PER_DIR = 1000


def write_many(base: Path) -> tuple[set[str], set[str]]:
    """FILES small recordings of licence L1; every third is due. Returns (all, due)."""
    written, due = set(), set()
    for d in range(FILES // PER_DIR):
        directory = base / "recordings" / "L1" / f"d{d:02}"
        directory.mkdir(parents=True)
        for i in range(PER_DIR):
            relpath = f"L1/d{d:02}/r{i:04}.wav"
            old = i % 3 == 0
            stamp = (datetime.now(UTC) - timedelta(days=40 if old else 10)).timestamp()
            path = directory / f"r{i:04}.wav"
            path.write_bytes(b"x" * 16)
            os.utime(path, (stamp, stamp))
            written.add(relpath)
            if old:
                due.add(relpath)
    return written, due


def loading(base: Path) -> bool:
    """Rows are committed and the secondary indexes are not there: a bulk load is under way."""
    path = base / "state" / "catalog.db"
    if not path.exists():
        return False
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.1)
        try:
            names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            rows = db.execute("SELECT COUNT(*) FROM recordings").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:
        return False
    return rows > 0 and not set(SECONDARY_INDEXES) & names


@pytest.mark.slow
def test_sigkill_during_a_first_index_is_repaired_by_the_next_start(tmp_path: Path) -> None:
    config = write_estate(tmp_path, listen=None)
    text = config.read_text()  # the licence from the first segment, directories below it
    config.write_text(text.replace("/[^/]+\\.wav$", "/.+\\.wav$"))
    assert config.read_text() != text
    written, due = write_many(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "recd", "--once", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(),
    )  # fmt: skip
    give_up = time.monotonic() + 60
    while not loading(tmp_path):
        assert proc.poll() is None, "recd finished before a kill could land mid-load"
        assert time.monotonic() < give_up
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    db = sqlite3.connect(tmp_path / "state" / "catalog.db")
    loaded = db.execute("SELECT COUNT(*) FROM recordings").fetchone()[0]
    db.close()
    assert 0 < loaded < FILES

    again = recd("--once", "--config", str(config))
    assert again.returncode == 0, again.stderr
    assert "built the missing indexes" in again.stderr
    erased, present = check_consistent(tmp_path, written)
    assert (erased, present) == (len(due), FILES - len(due))
    db = sqlite3.connect(tmp_path / "state" / "catalog.db")
    try:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        states = dict(db.execute("SELECT id, state FROM recordings"))
        totals = db.execute("SELECT recordings FROM totals WHERE licence = 'L1'").fetchone()
    finally:
        db.close()
    assert set(SECONDARY_INDEXES) <= names
    for relpath in written:
        want = "erased" if relpath in due else "present"
        assert states[recording_id("pbx", relpath)] == want, relpath
    assert totals == (FILES - len(due),)
