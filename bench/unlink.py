"""Sweep of N due files with `erase.method = "unlink"` (audited) vs `find -mtime +30 -delete`.

recd's time is the sweep alone, in-process, as the daemon runs it at a deadline: the tree is
indexed first (untimed), then `Sweeper.run()` is timed. A `recd --once` run over a second copy
(rescan + sweep, process start included) is reported too.
"""

from __future__ import annotations

import subprocess

from bench.common import BIN, make_tree, ratio, sync, timed, timed_sweep, workdir, write_config


def run(count: int) -> dict[str, float]:
    with workdir("unlink") as base:
        find_root = base / "find-tree"
        make_tree(find_root, count)
        sync()
        t_find, _ = timed(["find", str(find_root), "-type", "f", "-mtime", "+30", "-delete"])
        sync()

        root = base / "recordings"
        make_tree(root, count)
        sync()
        t_sweep = timed_sweep(write_config(base / "a", root, retention="30d"), count)
        sync()

        root2 = base / "recordings2"
        make_tree(root2, count)
        sync()
        cfg2 = write_config(base / "b", root2, retention="30d")
        t_once, _ = timed([str(BIN / "recd"), "--once", "--config", str(cfg2)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return {
        "files": count,
        "find_delete_s": t_find,
        "recd_sweep_s": t_sweep,
        "recd_once_s": t_once,
        "ratio_sweep": ratio(t_find, t_sweep),
        "ratio_once": ratio(t_find, t_once),
    }
