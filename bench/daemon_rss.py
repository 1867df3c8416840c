"""Memory of the running daemon holding N recordings: flat, whatever N (SPEC section 10).

A tree of N empty 3CX-named files (1,000 a directory, started a day ago by name: a deadline in
29 days, nothing due) is made with ``bench.trees.make_empty_tree`` (one ``mknod`` a file);
``recd --config`` runs as a child process over it. Resident memory is read from
``/proc/<pid>/status``: ``VmRSS`` once the admin socket answers; ``VmHWM`` (peak) and
``VmRSS`` once the first full scan has finished (``sources[].last_scan`` in ``status``); again
after ``idle_s`` seconds of idling (with the daemon's own ``process_resident_memory_bytes``);
and after a full rescan asked for over the admin socket (what ``recctl scan`` does). ``VmRSS``
is also sampled every 0.2 s throughout, since the kernel updates ``VmHWM`` lazily; ``peak_mib``
is the largest of all of these.
"""

from __future__ import annotations

import time

from bench.common import (
    MemorySampler,
    RecdDaemon,
    cpu_seconds,
    parse_time,
    scrape_value,
    sync,
    workdir,
    write_config,
)
from bench.trees import make_empty_tree
from recd.cli.client import call
from recd.protocol import Request
from tests.tools import free_port

MIB = 1024


def run(count: int, idle_s: float = 30.0) -> dict[str, float]:
    count = max(1, count)
    with workdir("daemon-rss") as base:
        root = base / "recordings"
        t0 = time.perf_counter()
        make_empty_tree(root, count, age_days=1)
        sync()
        build_s = time.perf_counter() - t0
        port = free_port()
        config = write_config(base, root, retention="30d", metrics_port=port)
        with RecdDaemon(config, base, port) as daemon:
            at_ready = daemon.memory_kib()
            sampler = MemorySampler(daemon.pid)
            sampler.start()
            # ~12k files/s today: 10M files take ~15 min; an hour at least, 1k files/s at worst.
            status = daemon.wait_scanned(timeout=max(3600.0, count / 1000), poll=2.0)
            scanned = daemon.memory_kib()
            source = status["sources"][0]
            cpu_scan = cpu_seconds(daemon.pid)
            time.sleep(idle_s)
            idle = daemon.memory_kib()
            reported = scrape_value(daemon.metrics(), "process_resident_memory_bytes")
            t1 = time.perf_counter()
            rescan = call(daemon.socket, Request("scan"), timeout=None).unwrap()
            rescan_s = time.perf_counter() - t1
            after_rescan = daemon.memory_kib()
            recordings = daemon.status()["recordings"]
            peak = sampler.stop()
        assert rescan[0]["files"] == count, rescan
    return {
        "files": count,
        "recordings": recordings,
        "tree_build_s": build_s,
        "tree_files_per_s": count / build_s,
        "first_scan_s": source["scan_seconds"],
        "first_scan_files_per_s": count / source["scan_seconds"],
        "daemon_cpu_to_scanned_s": cpu_scan,
        "scan_done_after_ready_s": parse_time(source["last_scan"]) - parse_time(status["started"]),
        "rss_ready_mib": at_ready["VmRSS"] / MIB,
        "rss_scanned_mib": scanned["VmRSS"] / MIB,
        "hwm_scanned_mib": scanned["VmHWM"] / MIB,
        "rss_idle_mib": idle["VmRSS"] / MIB,
        "rss_metric_idle_mib": reported / (1024 * 1024),
        "rescan_s": rescan_s,
        "rss_rescan_mib": after_rescan["VmRSS"] / MIB,
        "hwm_end_mib": after_rescan["VmHWM"] / MIB,
        "rss_peak_sampled_mib": peak / MIB,
        "peak_mib": max(peak, scanned["VmHWM"], after_rescan["VmHWM"]) / MIB,
    }
