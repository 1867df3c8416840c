"""Deletion lag: how long after its deadline the running daemon erases a recording.

``recd --config`` runs as a child process (``erase.settle = "1s"``, breaker off) over a source
holding ``background`` recordings that are not due (none by default; the sweep's queries grow
with the catalogue). Once its first scan is done, N recordings (3CX names, ``size``-byte
files, mtime = start time) are written into new directories of the watched source, with
deadlines (``started`` in the name + 30 days) on whole seconds spread uniformly over
``spread_s`` seconds, the first ``lead_s`` seconds after the bench starts writing them,
shuffled across directories of 1,000 files. The daemon is left alone: it indexes them as they
are closed, sleeps until the earliest deadline and erases.

Lag of a recording = when it was erased - its deadline, measured three ways:

- audit: the ``time`` of its ``erase.done`` entry (written just after the batch's files are
  erased and their directories flushed) - the deadline read from the name (checked against the
  entry's ``details.deadline``);
- observed: a bench thread lists every directory each ``OBSERVE_S``; the end of the first
  listing without the name - the deadline (an upper bound, within ``OBSERVE_S`` + a listing);
- the daemon's own ``recd_deletion_lag_seconds`` histogram (quantiles interpolated in its
  buckets, as Prometheus does).

Early erasures (must be 0) are counted from the ``erase.intent`` entries (one per batch, naming
each recording; written before the batch is touched: an intent at or after the deadline proves
the erasure was not early), from ``erase.done`` and from the listings.
"""

from __future__ import annotations

import json
import math
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    RecdDaemon,
    make_tree,
    parse_time,
    pg_query,
    recording_relpath,
    scrape_histogram,
    scrape_value,
    spread,
    started_of,
    sync,
    workdir,
    write_config,
)
from tests.tools import free_port

RETENTION = timedelta(days=30)
PER_DIR = 1000
DUE_DIRS = 5000  # the due recordings' directories (extensions); the background's are 1000..
OBSERVE_S = 0.1


def make_due_tree(root: Path, deadlines: Sequence[float], size: int) -> dict[str, float]:
    """One file per deadline (Unix seconds, whole) in new directories ``DUE_DIRS``.., up to
    ``PER_DIR`` a directory, the deadlines shuffled across them; each file's mtime is set to
    its start time before it is closed. ``{relpath: deadline}``."""
    payload = os.urandom(size)
    order = list(range(len(deadlines)))
    random.Random(8).shuffle(order)
    dirs = max(1, math.ceil(len(deadlines) / PER_DIR))
    for d in range(dirs):
        (root / str(DUE_DIRS + d)).mkdir(parents=True)
    out: dict[str, float] = {}
    for n, k in enumerate(order):
        started = datetime.fromtimestamp(deadlines[k], UTC) - RETENTION
        relpath = recording_relpath(DUE_DIRS + n % dirs, n, started)
        fd = os.open(root / relpath, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            os.write(fd, payload)
            stamp = started.timestamp()
            os.utime(fd, (stamp, stamp))
        finally:
            os.close(fd)
        out[relpath] = deadlines[k]
    return out


class Vanishing(threading.Thread):
    """Lists the directories every ``OBSERVE_S``; notes when each expected name is gone."""

    def __init__(self, root: Path, relpaths: list[str]) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.left: dict[str, set[str]] = {}
        for relpath in relpaths:
            directory, _, name = relpath.rpartition("/")
            self.left.setdefault(directory, set()).add(name)
        self.gone: dict[str, float] = {}
        self.done = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            for directory, names in self.left.items():
                if not names:
                    continue
                present = set(os.listdir(self.root / directory))
                now = time.time()
                for name in names - present:
                    self.gone[f"{directory}/{name}"] = now
                names.intersection_update(present)
            if not any(self.left.values()):
                self.done.set()
                return
            self.stopping.wait(OBSERVE_S)


def run(
    count: int,
    *,
    method: str = "unlink",
    size: int = 64,
    spread_s: float = 60.0,
    lead_s: float = 10.0,
    background: int = 0,
    url: str | None = None,
) -> dict[str, float]:
    """The row; with ``url`` the daemon's catalogue and audit chain are that PostgreSQL
    database (empty), else SQLite and ``audit.log`` in its state directory."""
    count = max(1, count)
    with workdir(f"deletion-lag-{method}") as base:
        root = base / "recordings"
        root.mkdir()
        if background:
            make_tree(root, background, size=0, age_days=1)  # due in 29 days
            sync()
        port = free_port()
        config = write_config(
            base, root, retention="30d", method=method, settle="1s", metrics_port=port,
            catalogue_url=url,
        )  # fmt: skip
        with RecdDaemon(config, base, port, url) as daemon:
            daemon.wait_scanned(timeout=3600.0, poll=1.0)
            t0 = time.perf_counter()
            first = math.ceil(time.time() + lead_s)
            deadlines = [first + math.floor(spread_s * k / count) for k in range(count)]
            by_path = make_due_tree(root, deadlines, size)
            build_s = time.perf_counter() - t0
            watcher = Vanishing(root, list(by_path))
            watcher.start()
            while daemon.recordings() < background + count and time.time() < first:
                time.sleep(0.1)
            indexed_at = time.time()
            # Every deadline, plus recd's 30 s retry for anything kept back, plus slack.
            watcher.done.wait(max(deadlines) - time.time() + 45.0)
            watcher.stopping.set()
            watcher.join()
            time.sleep(0.5)  # let the last batch's metrics land
            text = daemon.metrics()
            memory = daemon.memory_kib()
        exit_code = daemon.exit_code
        audit = read_audit(audit_lines(base / "state" / "audit.log", url), root)

    done_lags = [audit.done[p] - by_path[p] for p in audit.done if p in by_path]
    seen_lags = [watcher.gone[p] - by_path[p] for p in watcher.gone]
    hist = scrape_histogram(text, "recd_deletion_lag_seconds")
    return {
        "files": count,
        "background": background,
        "file_bytes": size,
        "spread_s": spread_s,
        "tree_build_s": build_s,
        "daemon_ready_s": daemon.ready_s,
        "indexed_margin_s": first - indexed_at,  # > 0: all indexed before the first deadline
        "erased_audit": len(done_lags),
        "erased_observed": len(seen_lags),
        "not_erased": count - len(watcher.gone),
        "deadline_mismatch": audit.mismatch,
        **spread(done_lags, "audit"),
        **spread(seen_lags, "observed"),
        "hist_count": hist.count,
        "hist_p50_s": hist.quantile(0.50),
        "hist_p99_s": hist.quantile(0.99),
        "hist_le_2s": hist.fraction_le(2),
        "hist_lowest_bucket_s": hist.lowest()[0],
        "hist_in_lowest_bucket": hist.lowest()[1],
        "audit_le_2s": sum(lag <= 2 for lag in done_lags) / len(done_lags) if done_lags else 0.0,
        "early_intent": sum(audit.intent[p] < by_path[p] for p in audit.intent),
        "early_done": sum(lag < 0 for lag in done_lags),
        "early_observed": sum(lag < 0 for lag in seen_lags),
        "erase_failed": audit.failed,
        "deletions_metric": scrape_value(text, "recd_deletions_total"),
        "rss_end_mib": memory["VmRSS"] / 1024,
        "exit_code": float(exit_code if exit_code is not None else -1),
    }


@dataclass
class Audit:
    """Per relpath the time of its ``erase.intent`` and ``erase.done`` entries; how many
    ``erase.failed`` entries, entries whose deadline is not the one in the name, and the
    ``erase.done`` entries each node wrote (``details.node``; "" on one host)."""

    intent: dict[str, float] = field(default_factory=dict)
    done: dict[str, float] = field(default_factory=dict)
    failed: int = 0
    mismatch: int = 0
    done_by: Counter[str] = field(default_factory=Counter)  # erase.done entries per node


def audit_lines(path: Path, url: str | None) -> list[bytes]:
    """The audit chain's lines: the file ``path``, or the table of the database ``url``."""
    if url is None:
        return path.read_bytes().splitlines()
    return [bytes(line) for (line,) in pg_query(url, "SELECT line FROM audit ORDER BY seq")]


def read_audit(lines: Iterable[bytes], root: Path) -> Audit:
    """The erase entries of ``lines`` for recordings under ``root`` (others left out), and
    every ``erase.failed`` entry."""
    prefix = str(root) + "/"
    audit = Audit()
    for line in lines:
        entry = json.loads(line)
        action = entry["action"]
        if action not in ("erase.intent", "erase.done", "erase.failed"):
            continue
        if action == "erase.failed":
            audit.failed += 1
            continue
        when = parse_time(entry["time"])
        for details in _each_recording(entry["details"]):
            if not details["location"].startswith(prefix):
                continue
            relpath = details["location"].removeprefix(prefix)
            deadline = (started_of(relpath) + RETENTION).timestamp()
            audit.mismatch += parse_time(details["deadline"]) != deadline
            (audit.intent if action == "erase.intent" else audit.done)[relpath] = when
            if action == "erase.done":
                audit.done_by[details.get("node", "")] += 1
    return audit


def _each_recording(details: dict[str, Any]) -> list[dict[str, Any]]:
    """The details of each recording an entry names: a batch's ``erase.intent`` lists them in
    ``recordings`` (its shared details beside), any other entry names one."""
    if "recordings" not in details:
        return [details]
    shared = {k: v for k, v in details.items() if k != "recordings"}
    return [shared | item for item in details["recordings"]]
