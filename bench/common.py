"""Shared bench helpers: trees of files, configs, timing and child RSS; the daemon as a
subprocess, its metrics and its memory; percentiles."""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / "bench-run"  # same fs as the repo; gitignored
LICENCE = "3CX-1234-5678"
S3_PREFIX = "bench/"  # the S3 benches' keys
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
    base: Path,
    root: Path,
    *,
    retention: str,
    method: str = "unlink",
    settle: str = "0s",
    metrics_port: int | None = None,
    catalogue_url: str | None = None,
    node: str = "bench",
    shared: bool = False,
    source: str = "bench",
) -> Path:
    """recd.toml (``write_recd_toml``) with the one directory source ``source`` at ``root``.
    With ``catalogue_url`` the source is ``shared`` (one node at a time among all) or this
    node's own (``nodes = [node]``)."""
    serving = ""
    if catalogue_url is not None:
        serving = "shared = true\n" if shared else f'nodes = ["{node}"]\n'
    table = (
        f'[[source]]\nname = "{source}"\ntype = "directory"\npath = "{root}"\n'
        f'licence = "{LICENCE}"\npattern = \'{PATTERN}\'\nstarted_format = "%Y%m%d%H%M%S"\n'
        + serving
    )
    return write_recd_toml(
        base, table, retention=retention, method=method, settle=settle,
        metrics_port=metrics_port, catalogue_url=catalogue_url, node=node,
    )  # fmt: skip


def s3_source(bucket: str, endpoint: str, extra: str = "") -> str:
    """The ``[[source]]`` table of the S3 source "bench": ``bucket`` under ``S3_PREFIX`` on
    the server ``endpoint``, every key licence ``LICENCE``'s; ``extra`` lines added."""
    return (
        f'[[source]]\nname = "bench"\ntype = "s3"\nbucket = "{bucket}"\nprefix = "{S3_PREFIX}"\n'
        f'endpoint_url = "{endpoint}"\nregion = "us-east-1"\nlicence = "{LICENCE}"\n' + extra
    )


def write_recd_toml(
    base: Path,
    source_table: str,
    *,
    retention: str = "30d",
    method: str | None = None,
    settle: str = "0s",
    metrics_port: int | None = None,
    catalogue_url: str | None = None,
    node: str = "bench",
) -> Path:
    """recd.toml (and one licence file, ``retention``) under ``base/etc``; state in
    ``base/state``, the admin socket at ``base/recd.sock``, the sources ``source_table``. A
    daemon needs ``metrics_port`` (``tests.tools.free_port``). With ``catalogue_url`` the
    catalogue is that PostgreSQL database and this host the node ``node``."""
    etc = base / "etc"
    (etc / "licences.d").mkdir(parents=True)
    (etc / "licences.d" / "bench.toml").write_text(
        f'id = "{LICENCE}"\nname = "Bench"\nretention = "{retention}"\n'
    )
    config = etc / "recd.toml"
    metrics = "" if metrics_port is None else f'[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n\n'
    shared_db = ""
    if catalogue_url is not None:
        shared_db = f'node = "{node}"\n\n[catalogue]\nurl = "{catalogue_url}"\n'
    how = "" if method is None else f'method = "{method}"\n'
    config.write_text(
        f'[daemon]\nstate_dir = "{base / "state"}"\nsocket = "{base / "recd.sock"}"\n'
        f"{shared_db}\n{metrics}"
        f'[erase]\n{how}settle = "{settle}"\n\n'
        f"[safety]\nmax_due_fraction = 1.0\nmin_breaker_count = 100000000\n\n" + source_table
    )
    return config


def child_env() -> dict[str, str]:
    """The environment for a child process: this checkout's ``recd`` first on its path. The
    scripts in ``BIN`` (the venv's ``recd``) otherwise import the checkout the venv was
    installed from in editable mode, which for a worktree is another tree's code."""
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))
    return env


def timed(argv: list[str], **kwargs: object) -> tuple[float, int]:
    """Run a command (in ``child_env()`` unless given ``env``); returns (wall seconds, peak RSS
    in KiB of that process)."""
    kwargs.setdefault("env", child_env())
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
    return timed_scan_and_sweep(config_path, expected)[1]


def timed_scan_and_sweep(
    config_path: Path, expected: int, clock: Any = None
) -> tuple[float, float]:
    """Seconds of a full scan of every source, then of one in-process sweep, on ``clock``
    (default: the system's); asserts that the sweep erased ``expected`` recordings."""
    from recd.adapters.clock import SystemClock
    from recd.config.load import load
    from recd.daemon.runtime import open_runtime, scan_all
    from recd.service.sweep import Sweeper

    config = load(config_path)
    runtime = open_runtime(config, SystemClock() if clock is None else clock)
    try:
        start = time.perf_counter()
        assert scan_all(runtime)
        scanned = time.perf_counter() - start
        start = time.perf_counter()
        report = Sweeper(
            config, runtime.catalogue, runtime.audit, runtime.clock, runtime.erasers
        ).run()
        elapsed = time.perf_counter() - start
    finally:
        runtime.close()
    assert report.erased == expected, (
        f"erased {report.erased} of {expected} ({report.failed} failed)"
    )
    return scanned, elapsed


# -- recordings named for a given start time -------------------------------------------------

_NAME = re.compile(PATTERN)
STAMP = "%Y%m%d%H%M%S"


def recording_relpath(extension: int, call: int, started: datetime) -> str:
    """A 3CX-style relative path matching ``PATTERN``, started at ``started`` (whole seconds)."""
    return (
        f"{extension}/0770090{call % 10_000:04}_{extension}_{started.strftime(STAMP)}({call}).wav"
    )


def started_of(relpath: str) -> datetime:
    """The start time written in a ``recording_relpath`` name (UTC, as the source reads it)."""
    match = _NAME.match(relpath)
    if match is None:
        raise ValueError(f"not a bench recording name: {relpath}")
    return datetime.strptime(match["started"], STAMP).replace(tzinfo=UTC)


def parse_time(text: str) -> float:
    """An audit or recctl time (ISO 8601 with ``Z``) as a Unix timestamp."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# -- figures -------------------------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (``q`` in 0..1) of ``values``; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def spread(values: Sequence[float], prefix: str) -> dict[str, float]:
    """``{prefix}_p50_s``, ``_p95_s``, ``_p99_s`` and ``_max_s`` of ``values`` (seconds)."""
    return {
        f"{prefix}_p50_s": quantile(values, 0.50),
        f"{prefix}_p95_s": quantile(values, 0.95),
        f"{prefix}_p99_s": quantile(values, 0.99),
        f"{prefix}_max_s": max(values) if values else math.nan,
    }


@dataclass(frozen=True, slots=True)
class Histogram:
    """One Prometheus histogram as scraped: cumulative ``(le, count)`` buckets, +Inf last."""

    buckets: tuple[tuple[float, float], ...]
    count: float
    sum: float

    def quantile(self, q: float) -> float:
        """``histogram_quantile`` as Prometheus computes it (linear within a bucket); the
        highest finite bound when the quantile falls in +Inf; NaN when empty."""
        if not self.count:
            return math.nan
        rank = q * self.count
        lower, below = 0.0, 0.0
        for bound, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(bound):
                    return lower
                inside = cumulative - below
                return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
            lower, below = bound, cumulative
        return lower

    def lowest(self) -> tuple[float, float]:
        """The lowest bucket's bound and the share of observations in it."""
        bound, cumulative = self.buckets[0]
        return bound, cumulative / self.count if self.count else math.nan

    def fraction_le(self, bound: float) -> float:
        """The share of observations at or below ``bound`` (which must be a bucket bound)."""
        for le, cumulative in self.buckets:
            if le == bound:
                return cumulative / self.count if self.count else math.nan
        raise ValueError(f"{bound} is not a bucket bound")


def scrape_histogram(text: str, name: str) -> Histogram:
    """The unlabelled histogram ``name`` from a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    buckets: list[tuple[float, float]] = []
    count = total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                buckets.append((float(sample.labels["le"]), sample.value))
            elif sample.name == f"{name}_count":
                count = sample.value
            elif sample.name == f"{name}_sum":
                total = sample.value
    buckets.sort()
    return Histogram(tuple(buckets), count, total)


def scrape_value(text: str, sample_name: str) -> float:
    """The sum of every sample called ``sample_name`` (0 when there is none)."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample_name
    )


# -- the daemon as a subprocess -----------------------------------------------------------------


def memory_kib(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak RSS) of a live process, in KiB, from /proc."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


class RecdDaemon:
    """``recd --config PATH`` in the foreground as a child process, for as long as a ``with``
    block runs: started, waited for until its admin socket answers ``status``, stopped with
    SIGTERM (exit status kept in ``exit_code``). ``base`` is the directory ``write_config`` was
    given: the admin socket, ``state/`` and the daemon's log (``recd.log``) are there. With
    ``url`` (its ``[catalogue] url``) the bench's queries go to that PostgreSQL database."""

    def __init__(self, config: Path, base: Path, metrics_port: int, url: str | None = None) -> None:
        self.config = config
        self.url = url
        self.socket = base / "recd.sock"
        self.state_dir = base / "state"
        self.metrics_port = metrics_port
        self.log = base / "recd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None
        self.ready_s = math.nan  # seconds from exec to the first answer on the admin socket

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> RecdDaemon:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, timeout: float = 120.0) -> None:
        begun = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "recd"), "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=child_env(),
            )
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"recd exited {self.proc.returncode} at start:\n{self.tail()}")
            try:
                self.status(timeout=5.0)
            except Exception:
                if time.monotonic() - begun > timeout:
                    self.stop()
                    raise RuntimeError(f"recd did not answer within {timeout} s") from None
                time.sleep(0.05)
            else:
                self.ready_s = time.monotonic() - begun
                return

    def status(self, timeout: float = 30.0) -> dict[str, Any]:
        from recd.cli.client import call
        from recd.protocol import Request

        result = call(self.socket, Request("status"), timeout=timeout).unwrap()
        assert isinstance(result, dict)
        return result

    def wait_scanned(self, timeout: float, poll: float = 1.0) -> dict[str, Any]:
        """Wait until every source has finished a full scan; the status, whose
        ``sources[].last_scan`` says when. Polled in the catalogue (read-only), not with
        ``status``, whose due counts cost the daemon a query per call."""
        end = time.monotonic() + timeout
        while True:
            (running, finished), *_ = self.query(
                "SELECT COUNT(*) - COUNT(finished), COUNT(finished) FROM scans"
            )
            if finished and not running:
                status = self.status()
                sources = status["sources"]  # empty until the daemon has published its state
                if sources and all(s["last_scan"] is not None for s in sources):
                    return status
            if time.monotonic() > end:
                raise RuntimeError(f"the first scan did not finish within {timeout} s")
            time.sleep(poll)

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Rows of one query on the daemon's catalogue, opened read-only (``?`` placeholders
        in SQLite, ``%s`` in PostgreSQL)."""
        if self.url is not None:
            return pg_query(self.url, sql, args)
        uri = f"file:{self.state_dir / 'catalog.db'}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as db:
            return db.execute(sql, args).fetchall()

    def recordings(self) -> int:
        """Present recordings in the catalogue (its trigger-kept totals)."""
        (count,), *_ = self.query("SELECT COALESCE(SUM(recordings), 0) FROM totals")
        return int(count)

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as reply:
            return str(reply.read().decode())

    def memory_kib(self) -> dict[str, int]:
        return memory_kib(self.pid)

    def stop(self, timeout: float = 120.0) -> int | None:
        if self.proc is None or self.exit_code is not None:
            return self.exit_code
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.exit_code = self.proc.wait()
        return self.exit_code

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def pg_query(url: str, sql: str, args: Sequence[Any] = ()) -> list[Any]:
    """Rows of one query on the PostgreSQL database ``url``."""
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class MemorySampler(threading.Thread):
    """Samples a process's ``VmRSS`` every ``interval`` seconds until ``stop()``; ``peak_kib``
    is the largest sample (the kernel's ``VmHWM`` is only updated lazily, so it can miss a
    peak or even read lower later)."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.peak_kib = max(self.peak_kib, memory_kib(self.pid)["VmRSS"])
            except (OSError, KeyError):
                return  # the process is gone
            self._stopping.wait(self.interval)

    def stop(self) -> int:
        self._stopping.set()
        self.join()
        return self.peak_kib
