"""Overwrite-and-remove of N MB in 5 MB files: recd vs `shred -n0 -z -u` vs `dd conv=fdatasync`.

All three write zeros over every byte and wait for the disk: shred then renames and removes
each file (as recd does), dd only overwrites. recd's time is the in-process sweep.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from bench.common import make_tree, ratio, sync, timed, timed_sweep, workdir, write_config

FILE = 5 * 1024 * 1024


def files_of(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*.wav"))


def run(total_mb: int) -> dict[str, float]:
    count = max(1, total_mb * 1024 * 1024 // FILE)
    with workdir("overwrite") as base:
        shred_root = base / "shred"
        make_tree(shred_root, count, size=FILE, per_dir=50)
        sync()
        t_shred, _ = timed(["shred", "-n0", "-z", "-u", *files_of(shred_root)])

        dd_root = base / "dd"
        make_tree(dd_root, count, size=FILE, per_dir=50)
        sync()
        start = time.perf_counter()
        for path in files_of(dd_root):
            subprocess.run(
                ["dd", "if=/dev/zero", f"of={path}", f"bs={FILE}", "count=1",
                 "conv=notrunc,fdatasync", "status=none"],
                check=True,
            )  # fmt: skip
        t_dd = time.perf_counter() - start

        root = base / "recordings"
        make_tree(root, count, size=FILE, per_dir=50)
        sync()
        cfg = write_config(base / "a", root, retention="30d", method="overwrite")
        t_recd = timed_sweep(cfg, count)
    mb = count * FILE / 1e6
    return {
        "files": count,
        "mb": mb,
        "shred_s": t_shred,
        "dd_s": t_dd,
        "recd_s": t_recd,
        "recd_mb_per_s": mb / t_recd,
        "ratio_shred": ratio(t_shred, t_recd),
        "ratio_dd": ratio(t_dd, t_recd),
    }
