"""`recctl backup` of a daemon holding N recordings: how long it takes, and whether the daemon's
loop stalls meanwhile (issue 14, point 4).

A tree of N empty 3CX-named files (nothing due) is scanned by ``recd --config`` run as a child
process; then ``recctl backup DIR`` runs while a thread asks the loop for something every 20 ms
(``breaker release`` of a licence whose breaker is not tripped: answered on the loop, audited
nothing) and records each round trip. Reported: the backup's wall time, the catalogue's size,
the slowest and median loop round trips during the backup and before it, and the time
``recctl backup verify`` takes.

    PYTHONPATH=. .venv/bin/python -m bench.backup --count 200000
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.common import RecdDaemon, make_tree, sync, workdir, write_config
from recd.cli.client import call
from recd.protocol import Request
from tests.tools import free_port


def _loop_latencies(socket: Path, stop: threading.Event, out: list[float]) -> None:
    request = Request("breaker release", {"licence": "NO-SUCH-LICENCE"})
    while not stop.is_set():
        t0 = time.perf_counter()
        call(socket, request, timeout=60)  # an error reply, computed on the loop
        out.append(time.perf_counter() - t0)
        time.sleep(0.02)


def _sampled(socket: Path, seconds: float) -> list[float]:
    out: list[float] = []
    stop = threading.Event()
    thread = threading.Thread(target=_loop_latencies, args=(socket, stop, out))
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join()
    return out


def _recctl(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "recd.cli.main", *args], capture_output=True, text=True, check=False
    )
    return time.perf_counter() - t0, done


def run(count: int) -> dict[str, float]:
    with workdir("backup") as base:
        root = base / "recordings"
        make_tree(root, count, size=0, age_days=1)
        sync()
        port = free_port()
        config = write_config(base, root, retention="30d", metrics_port=port)
        with RecdDaemon(config, base, port) as daemon:
            daemon.wait_scanned(timeout=3600.0, poll=2.0)
            idle = _sampled(daemon.socket, 2.0)
            during: list[float] = []
            stop = threading.Event()
            sampler = threading.Thread(target=_loop_latencies, args=(daemon.socket, stop, during))
            sampler.start()
            try:
                backup_s, done = _recctl("--socket", str(daemon.socket), "backup", str(base / "b"))
            finally:
                stop.set()
                sampler.join()
            if done.returncode != 0:
                raise RuntimeError(f"recctl backup exited {done.returncode}: {done.stderr}")
            recordings = daemon.recordings()
        verify_s, checked = _recctl("backup", "verify", str(base / "b"))
        if checked.returncode != 0:
            raise RuntimeError(f"recctl backup verify: exit {checked.returncode}: {checked.stderr}")
        return {
            "recordings": recordings,
            "catalogue_mib": (base / "b" / "catalog.db").stat().st_size / 2**20,
            "backup_s": backup_s,
            "verify_s": verify_s,
            "loop_idle_median_ms": statistics.median(idle) * 1e3,
            "loop_idle_max_ms": max(idle) * 1e3,
            "loop_during_median_ms": statistics.median(during) * 1e3,
            "loop_during_max_ms": max(during) * 1e3,
            "loop_samples_during": len(during),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    args = parser.parse_args()
    print(json.dumps(run(args.count), indent=2))


if __name__ == "__main__":
    main()
