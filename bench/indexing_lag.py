"""Indexing lag: how long after a recording's file is closed the running daemon has it in
its catalogue.

``recd --config`` runs as a child process over an empty source of ``DIRS`` directories; once
its first scan is done, a writer process (this module with ``--writer``) creates ``rate`` files
a second for ``seconds`` seconds, on a fixed schedule, round robin over the directories: each
file is opened, ``size`` bytes written in one call, closed, and the time after ``close`` is
noted. Lag of a recording = when it is in the catalogue - when its file was closed, measured
three ways:

- stamp: the row's ``indexed_at`` (the time recd stamps on the batch of events it indexes,
  taken before it classifies and commits them);
- observed: a bench thread reads the catalogue (SQLite, read-only) every ``POLL_S`` for rows
  with a new rowid: the time that query returned (an upper bound, within ``POLL_S``; this is
  when other processes, recctl included, can see the recording);
- the daemon's own ``recd_indexing_lag_seconds`` histogram (from when the inotify event reached
  recd's watcher to the start of the batch: neither the kernel-to-watcher delay nor the commit
  is in it).

The writer reports whether it kept its pace (achieved rate, how late it started files).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import (
    REPO,
    RecdDaemon,
    cpu_seconds,
    quantile,
    recording_relpath,
    scrape_histogram,
    scrape_value,
    spread,
    workdir,
    write_config,
)
from tests.tools import free_port

DIRS = 20
POLL_S = 0.02


class CatalogueWatch(threading.Thread):
    """Polls the catalogue read-only for new rows; per location: (seen at, ``indexed_at``)."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.seen: dict[str, tuple[float, float]] = {}
        self.stopping = threading.Event()
        self.polls = 0

    def run(self) -> None:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            last = 0
            while not self.stopping.is_set():
                rows = conn.execute(
                    "SELECT rowid, location, indexed_at FROM recordings WHERE rowid > ? "
                    "ORDER BY rowid",
                    (last,),
                ).fetchall()
                now = time.time()
                self.polls += 1
                for rowid, location, indexed_at in rows:
                    self.seen.setdefault(location, (now, indexed_at / 1e6))
                    last = rowid
                self.stopping.wait(POLL_S)
        finally:
            conn.close()


def run(rate: int = 1000, seconds: float = 20.0, size: int = 32 * 1024) -> dict[str, float]:
    files = max(1, round(rate * seconds))
    with workdir("indexing-lag") as base:
        root = base / "recordings"
        for d in range(DIRS):
            (root / str(1000 + d)).mkdir(parents=True)
        port = free_port()
        config = write_config(base, root, retention="30d", metrics_port=port)
        closes_file = base / "closes.json"
        with RecdDaemon(config, base, port) as daemon:
            daemon.wait_scanned(timeout=60.0, poll=0.2)
            watch = CatalogueWatch(base / "state" / "catalog.db")
            watch.start()
            cpu_before = cpu_seconds(daemon.pid)
            subprocess.run(
                [sys.executable, "-m", "bench.indexing_lag", "--writer", str(root),
                 str(rate), str(seconds), str(size), str(closes_file)],
                cwd=REPO, check=True,
            )  # fmt: skip
            end = time.monotonic() + 60.0
            while len(watch.seen) < files and time.monotonic() < end:
                time.sleep(0.1)
            watch.stopping.set()
            watch.join()
            cpu = cpu_seconds(daemon.pid) - cpu_before
            text = daemon.metrics()
            memory = daemon.memory_kib()
        written = json.loads(closes_file.read_text())

    closes: dict[str, float] = {relpath: closed for relpath, closed, _ in written["files"]}
    lateness = [late for _, _, late in written["files"]]
    elapsed = max(closes.values()) - written["start"]
    stamp_lags = [watch.seen[p][1] - closes[p] for p in closes if p in watch.seen]
    seen_lags = [watch.seen[p][0] - closes[p] for p in closes if p in watch.seen]
    hist = scrape_histogram(text, "recd_indexing_lag_seconds")
    return {
        "files": files,
        "rate_target": rate,
        "rate_achieved": len(closes) / elapsed,
        "writer_late_p99_s": quantile(lateness, 0.99),
        "writer_late_max_s": max(lateness),
        "writer_cpu_user_s": written["cpu"]["user"],
        "writer_cpu_sys_s": written["cpu"]["sys"],
        "indexed": len(seen_lags),
        "not_indexed": files - len(seen_lags),
        **spread(stamp_lags, "stamp"),
        **spread(seen_lags, "observed"),
        "observed_le_1s": sum(lag <= 1 for lag in seen_lags) / files,
        "hist_count": hist.count,
        "hist_p50_s": hist.quantile(0.50),
        "hist_p99_s": hist.quantile(0.99),
        "hist_le_1s": hist.fraction_le(1),
        "hist_lowest_bucket_s": hist.lowest()[0],
        "hist_in_lowest_bucket": hist.lowest()[1],
        "watch_overflows": scrape_value(text, "recd_watch_overflows_total"),
        "daemon_cpu_s": cpu,
        "daemon_cpu_us_per_file": cpu / files * 1e6,
        "rss_end_mib": memory["VmRSS"] / 1024,
    }


def write_paced(root: Path, rate: int, seconds: float, size: int, out: Path) -> None:
    """The writer: ``rate`` files a second on a fixed schedule; [relpath, closed, late]."""
    files = max(1, round(rate * seconds))
    payload = os.urandom(size)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    records: list[tuple[str, float, float]] = []
    start = time.time() + 0.1
    for i in range(files):
        target = start + i / rate
        now = time.time()
        if now < target:
            time.sleep(target - now)
        began = time.time()
        relpath = recording_relpath(1000 + i % DIRS, i, datetime.fromtimestamp(began, UTC))
        fd = os.open(root / relpath, flags, 0o640)
        try:
            os.write(fd, payload)
        finally:
            os.close(fd)
        records.append((relpath, time.time(), began - target))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = {"user": usage.ru_utime, "sys": usage.ru_stime}
    out.write_text(json.dumps({"start": start, "files": records, "cpu": cpu}))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.indexing_lag")
    parser.add_argument("--writer", type=Path, required=True, metavar="ROOT")
    parser.add_argument("rate", type=int)
    parser.add_argument("seconds", type=float)
    parser.add_argument("size", type=int)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    write_paced(args.writer, args.rate, args.seconds, args.size, args.out)


if __name__ == "__main__":
    main()
