"""Scan + classify + catalogue of N files (`recd --once`, nothing due) vs `find -printf`: the
first index into an empty catalogue, then a rescan of the unchanged tree by a second
`recd --once` (two rows of the report from one tree)."""

from __future__ import annotations

import subprocess
import time

from bench.common import BIN, ratio, sync, timed, workdir, write_config
from bench.trees import make_empty_tree


def run(count: int) -> tuple[dict[str, float], dict[str, float]]:
    """The first index's figures and the rescan's, each against the same ``find``."""
    with workdir("scan") as base:
        root = base / "recordings"
        make_empty_tree(root, count, age_days=40)  # mtimes: now (recd reads the name)
        sync()
        # An estate at rest: a directory changed within 2 s of a scan's start is listed
        # again by the next (directory.STAMP_SLACK_NS); recordings are older than that.
        time.sleep(2.1)
        config = write_config(base, root, retention="never")
        find = ["find", str(root), "-type", "f", "-printf", "%p %s %T@ %i\n"]
        subprocess.run(find, stdout=subprocess.DEVNULL, check=True)  # warm the dentry cache
        t_find, _ = timed(find, stdout=subprocess.DEVNULL)
        recd = [str(BIN / "recd"), "--once", "--config", str(config)]
        t_first, rss_first = timed(recd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t_again, rss_again = timed(recd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = {
        "files": count,
        "find_s": t_find,
        "recd_first_s": t_first,
        "ratio_first": ratio(t_find, t_first),
        "rss_first_mib": rss_first / 1024,
        "files_per_s_first": count / t_first,
    }
    rescan = {
        "files": count,
        "find_s": t_find,
        "recd_s": t_again,
        "ratio": ratio(t_find, t_again),
        "rss_mib": rss_again / 1024,
        "files_per_s": count / t_again,
    }
    return first, rescan
