"""Shared bench helpers: trees of files, configs, timing and child RSS."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

BIN = Path(sys.executable).parent
BENCH_DIR = Path(__file__).resolve().parents[1] / "bench-run"  # same fs as the repo; gitignored
LICENCE = "3CX-1234-5678"
PATTERN = (
    r"^(?P<extension>\d+)/(?P<caller>[^_/]+)_(?P<callee>[^_/]+)_(?P<started>\d{14})"
    r"\((?P<call_id>\d+)\)\.wav$"
)


@contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    BENCH_DIR.mkdir(exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=BENCH_DIR))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def make_tree(
    root: Path, count: int, *, per_dir: int = 1000, size: int = 64, age_days: float = 40
) -> None:
    """``count`` 3CX-named files of ``size`` bytes, ``per_dir`` to a directory, all ``age_days``
    old by name and by mtime."""
    started = datetime.now(UTC) - timedelta(days=age_days)
    stamp = started.timestamp()
    name_time = started.strftime("%Y%m%d%H%M%S")
    payload = os.urandom(size) if size <= 1 << 20 else b""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for d in range((count + per_dir - 1) // per_dir):
        directory = root / f"{1000 + d}"
        directory.mkdir(parents=True)
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for i in range(min(per_dir, count - d * per_dir)):
                name = f"0770090{i:04}_{1000 + d}_{name_time}({d * per_dir + i}).wav"
                fd = os.open(name, flags, 0o640, dir_fd=dfd)
                if payload:
                    os.write(fd, payload)
                elif size:
                    _fill(fd, size)
                os.close(fd)
                os.utime(name, (stamp, stamp), dir_fd=dfd)
        finally:
            os.close(dfd)


def _fill(fd: int, size: int) -> None:
    chunk = os.urandom(1 << 20)
    left = size
    while left > 0:
        left -= os.write(fd, chunk[: min(left, len(chunk))])


def write_config(
    base: Path, root: Path, *, retention: str, method: str = "unlink", settle: str = "0s"
) -> Path:
    etc = base / "etc"
    (etc / "licences.d").mkdir(parents=True)
    (etc / "licences.d" / "bench.toml").write_text(
        f'id = "{LICENCE}"\nname = "Bench"\nretention = "{retention}"\n'
    )
    config = etc / "recd.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{base / "state"}"\nsocket = "{base / "recd.sock"}"\n\n'
        f'[erase]\nmethod = "{method}"\nsettle = "{settle}"\n\n'
        f"[safety]\nmax_due_fraction = 1.0\nmin_breaker_count = 100000000\n\n"
        f'[[source]]\nname = "bench"\ntype = "directory"\npath = "{root}"\n'
        f'licence = "{LICENCE}"\npattern = \'{PATTERN}\'\nstarted_format = "%Y%m%d%H%M%S"\n'
    )
    return config


def timed(argv: list[str], **kwargs: object) -> tuple[float, int]:
    """Run a command; returns (wall seconds, peak RSS in KiB of that process)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, **kwargs)  # type: ignore[call-overload]
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 4):
        raise RuntimeError(f"{argv[0]} exited {proc.returncode}")
    return elapsed, usage.ru_maxrss


def sync() -> None:
    os.sync()


def ratio(baseline: float, ours: float) -> float:
    """How fast recd is relative to the baseline (1.0 = as fast; 0.5 = twice as slow)."""
    return baseline / ours if ours else float("inf")


def timed_sweep(config_path: Path, expected: int) -> float:
    """Index a source untimed, then time one in-process sweep (what the daemon does at a
    deadline); asserts that it erased ``expected`` recordings."""
    from recd.adapters.clock import SystemClock
    from recd.config import load
    from recd.runtime import open_runtime, scan_all
    from recd.service.sweep import Sweeper

    config = load(config_path)
    runtime = open_runtime(config, SystemClock())
    try:
        scan_all(runtime)
        start = time.perf_counter()
        report = Sweeper(
            config, runtime.catalogue, runtime.audit, runtime.clock, runtime.erasers
        ).run()
        elapsed = time.perf_counter() - start
    finally:
        runtime.close()
    assert report.erased == expected, f"erased {report.erased} of {expected}"
    return elapsed
