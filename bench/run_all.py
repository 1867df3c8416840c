"""`make bench`: run every benchmark and print ratios (recd relative to the baseline tool), and
the running daemon's latencies and memory.

`--scale 0.1` runs everything at a tenth of the size (quick check); the goals in
docs/benchmarks.md are stated for scale 1. The latency benchmarks keep their rates at any
scale (deadlines a second, files written a second): the number of recordings and the minute
over which their deadlines are spread shrink together (to 6 s at least), the writer runs for
less time (2 s at least), and the memory benchmark idles for less (3 s at least).

`--only floors` runs the pure-Python floors under the first-index and sweep goals alone
(`bench/floors.py`); the full run prints each floor beside its goal.

`--only catalogue` runs the catalogue write rate on PostgreSQL against SQLite alone
(`bench/catalogue.py`; it starts its own durable PostgreSQL, and is skipped, saying what to
install, without the server's binaries or psycopg).

`--only multihost` runs issue 18's rows alone (`bench/multihost.py`; its own durable
PostgreSQL, skipped like `catalogue`): erase throughput with 1, 2 and 3 daemons on one shared
catalogue against `find -delete`, one at a time on a `shared` source, and deletion lag on
PostgreSQL against SQLite.

`--only daemon-rss-10m` runs the 10M-recording memory row alone (at scale 1 an hour or more:
its tree alone is 10M inodes in `bench-run/`; `df -i` first).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from bench import (
    audit_rotate,
    audit_segcheck,
    catalogue,
    daemon_rss,
    deletion_lag,
    floors,
    indexing_lag,
    multihost,
    overwrite,
    s3,
    scan,
    unlink,
)

#: Throughput goals (recd relative to the baseline tool in the same run): result -> (ratio,
#: must reach at least). Issue 17: first index >= 0.5x find, rescan faster than find, the
#: audited unlink sweep >= 0.8x find -delete.
GOALS = {
    "scan_1m": [("ratio_first", 0.5)],
    "rescan_1m": [("ratio", 1.0)],
    "unlink_200k": [("ratio_sweep", 0.8)],
    "overwrite_1gb": [("ratio_shred", 1.0), ("ratio_dd", 0.6)],
    "s3_10k": [("ratio_erase", 0.8)],
}

#: The pure-Python floor under a goal (``bench.floors``): the least a Python process can do per
#: file, as a ratio to the same baseline. A goal above its floor needs compiled code.
FLOORS = {
    ("scan_1m", "ratio_first"): ("floor_index_1m", "ratio_index"),
    ("unlink_200k", "ratio_sweep"): ("floor_sweep_200k", "ratio_audited"),
}

#: Latency and memory ceilings (SPEC sections 3 and 10): result -> (figure, must stay below).
#: Memory: 150 MB (issue 17), in MiB, flat from 100k to 10M recordings.
RSS_CEILING_MIB = 150 * 1e6 / 2**20
CEILINGS = {
    "deletion_lag_unlink": [("audit_p99_s", 2.0), ("early_intent", 1)],
    "deletion_lag_overwrite": [("audit_p99_s", 2.0), ("early_intent", 1)],
    "deletion_lag_unlink_bg1m": [("audit_p99_s", 2.0), ("early_intent", 1)],
    "indexing_lag": [("observed_p99_s", 1.0)],
    "daemon_rss_100k": [("peak_mib", RSS_CEILING_MIB)],
    "daemon_rss_1m": [("peak_mib", RSS_CEILING_MIB)],
    "daemon_rss_10m": [("peak_mib", RSS_CEILING_MIB)],
}

ONLY = [
    "scan", "unlink", "overwrite", "rss", "deletion-lag", "indexing-lag", "daemon-rss", "s3",
    "audit", "floors", "catalogue", "multihost", "daemon-rss-10m",
]  # fmt: skip


def measure(only: str | None, s: float) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    if only in (None, "scan"):
        results["scan_1m"], results["rescan_1m"] = scan.run(int(1_000_000 * s))
    if only in (None, "rss", "scan"):
        results["scan_100k"], results["rescan_100k"] = scan.run(int(100_000 * s))
    if only in (None, "unlink"):
        results["unlink_200k"] = unlink.run(int(200_000 * s))
    if only in (None, "overwrite"):
        results["overwrite_1gb"] = overwrite.run(int(1000 * s))
    if only in (None, "deletion-lag"):
        due, minute = int(10_000 * s), max(6.0, 60.0 * s)
        results["deletion_lag_unlink"] = deletion_lag.run(due, spread_s=minute)
        results["deletion_lag_overwrite"] = deletion_lag.run(
            due, spread_s=minute, method="overwrite", size=32 * 1024
        )
        # The same beside 1M recordings that are not due: a sweep must not cost O(catalogue).
        results["deletion_lag_unlink_bg1m"] = deletion_lag.run(
            due, spread_s=minute, background=int(1_000_000 * s)
        )
    if only in (None, "indexing-lag"):
        results["indexing_lag"] = indexing_lag.run(rate=1000, seconds=max(2.0, 20.0 * s))
    if only in (None, "s3"):
        results["s3_10k"] = s3.run(int(10_000 * s))
    if only in (None, "audit"):
        results["audit_rotate"] = audit_rotate.run(int(50_000 * s))
        results["audit_segcheck_50"] = audit_segcheck.run()
    if only in (None, "floors"):
        results["floor_index_1m"] = floors.run_index(int(1_000_000 * s))
        results["floor_sweep_200k"] = floors.run_sweep(int(200_000 * s))
    results.update(measure_catalogue(only, s))
    results.update(measure_multihost(only, s))
    results.update(measure_memory(only, s))
    return results


def measure_catalogue(only: str | None, s: float) -> dict[str, dict[str, float]]:
    """The catalogue write rate on PostgreSQL against SQLite; skipped, saying what to install,
    on a machine without PostgreSQL's server or psycopg."""
    if only not in (None, "catalogue"):
        return {}
    try:
        return {"catalogue_200k": catalogue.run(int(200_000 * s))}
    except catalogue.Skipped as exc:
        print(f"catalogue_200k skipped: {exc}", file=sys.stderr)
        return {}


def measure_multihost(only: str | None, s: float) -> dict[str, dict[str, float]]:
    """Several daemons on one PostgreSQL catalogue: 20k recordings erased by 1, 2 and 3 (the
    medians of three rounds), the deletion lag of 2,000 due over 200 s (20 s at least) on
    PostgreSQL and on SQLite, and 12k S3 keys erased by 1, 2 and 3 (three rounds; at least
    1,000, one batch); skipped like the catalogue row."""
    if only not in (None, "multihost"):
        return {}
    try:
        return multihost.run(
            int(20_000 * s), int(2_000 * s), lag_spread_s=max(20.0, 200.0 * s), repeat=3,
            s3_count=max(1_000, int(12_000 * s)),
        )  # fmt: skip
    except catalogue.Skipped as exc:
        print(f"multihost skipped: {exc}", file=sys.stderr)
        return {}


def measure_memory(only: str | None, s: float) -> dict[str, dict[str, float]]:
    """The running daemon's memory at 100k and 1M recordings, and (alone: it is long) 10M."""
    results: dict[str, dict[str, float]] = {}
    idle = max(3.0, 30.0 * s)
    if only in (None, "daemon-rss"):
        results["daemon_rss_100k"] = daemon_rss.run(int(100_000 * s), idle_s=idle)
        results["daemon_rss_1m"] = daemon_rss.run(int(1_000_000 * s), idle_s=idle)
    if only in (None, "daemon-rss-10m"):
        results["daemon_rss_10m"] = daemon_rss.run(int(10_000_000 * s), idle_s=idle)
    return results


def report(results: dict[str, dict[str, float]]) -> None:
    for name, values in results.items():
        print(f"\n{name}")
        for key, value in values.items():
            print(
                f"  {key:24} {value:12.3f}" if isinstance(value, float) else f"  {key:24} {value}"
            )
    verdicts = [
        (name, key, results[name][key], limit)
        for name, ceilings in CEILINGS.items()
        if name in results
        for key, limit in ceilings
    ]
    reached = [
        (name, key, results[name][key], floor)
        for name, goals in GOALS.items()
        if name in results
        for key, floor in goals
        if key in results[name]
    ]
    if reached:
        print(
            "\ngoal (at least)                               measured       goal  met  python floor"
        )
        for name, key, value, goal in reached:
            met = "yes" if value >= goal else ("?" if math.isnan(value) else "no")
            under = floor_of(results, name, key)
            print(f"  {name + '.' + key:42} {value:10.3f} {goal:10.3f}  {met:3}{under}")
    if verdicts:
        print("\ngoal (below)                                  measured      limit  met")
        for name, key, value, limit in verdicts:
            met = "yes" if value < limit else ("?" if math.isnan(value) else "no")
            print(f"  {name + '.' + key:42} {value:10.3f} {limit:10.3f}  {met}")
    print("\n" + json.dumps(results, indent=1))


def floor_of(results: dict[str, dict[str, float]], name: str, key: str) -> str:
    """The pure-Python floor under a goal, when it was measured in this run ("" if not)."""
    row, column = FLOORS.get((name, key), ("", ""))
    value = results.get(row, {}).get(column)
    return "" if value is None else f" {value:10.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--only", choices=ONLY, default=None)
    args = parser.parse_args()
    report(measure(args.only, args.scale))


if __name__ == "__main__":
    main()
