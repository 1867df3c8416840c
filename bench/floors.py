"""The pure-Python floors under issue 17's goals: the least a Python process can do per file,
timed in the same run as the `find` it is compared with.

Two rows:

- ``floor_index``: on the scan bench's tree, each in a fresh interpreter (start-up included, as
  for `recd --once`): a walk that stats every entry (``walk``), then a first index stripped to
  its bones (``index``): the walk, one regex match and a SHA-256 id per file, and one row per
  file into a fresh SQLite table by ``executemany`` (primary key only; no classification,
  deadline, provenance or secondary index). Against `find -printf`.
- ``floor_sweep``: on three copies of the unlink bench's tree, `find -mtime +30 -delete`, then,
  timed in this process as the unlink bench times recd's sweep (the listing and the catalogue's
  rows made first, untimed): an unlink loop (``unlink``: open the directory and the file
  ``O_PATH``, ``fstat``, ``unlinkat``, close), and that loop with the least audit and catalogue
  work (``audited``): one hash-chained JSON line per file, written and fsynced once per 256
  files, and one catalogue row updated per file in one transaction per 256.

recd does more than either floor for every file (SPEC §§4-7: the mount, type, identity and
writer checks; the intent before and the outcome after; the catalogue's classification). A goal
above its floor cannot be met by tuning the Python: it needs the per-file work in compiled
code. Run alone: `python -m bench.run_all --only floors`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bench.common import PATTERN, make_tree, ratio, sync, timed, workdir
from bench.trees import make_empty_tree

BATCH = 256  # files per audit flush and catalogue transaction, as a sweep batch


def index(root: Path, db_path: Path, *, walk_only: bool = False) -> int:
    """The stripped first index of ``root`` (``<dir>/<file>``) into ``db_path``; the files seen."""
    name = re.compile(PATTERN)
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(
        "CREATE TABLE r (id TEXT PRIMARY KEY, relpath TEXT, dev INT, ino INT, size INT, "
        "mtime_ns INT, started TEXT, caller TEXT, callee TEXT, call_id TEXT)"
    )
    seen = 0
    db.execute("BEGIN")
    with os.scandir(root) as dirs:
        for d in dirs:
            rows = []
            with os.scandir(d.path) as files:
                for f in files:
                    st = f.stat(follow_symlinks=False)
                    seen += 1
                    if walk_only:
                        continue
                    relpath = f"{d.name}/{f.name}"
                    match = name.search(relpath)
                    g = {} if match is None else match.groupdict()
                    rid = hashlib.sha256(f"bench\0{relpath}".encode()).hexdigest()[:32]
                    rows.append((
                        rid, relpath, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                        g.get("started"), g.get("caller"), g.get("callee"), g.get("call_id"),
                    ))  # fmt: skip
            db.executemany("INSERT INTO r VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.execute("COMMIT")
    db.close()
    return seen


def sweep(root: Path, state: Path, *, audited: bool) -> float:
    """Unlink every file below ``root`` (``<dir>/<file>``), audited into ``state`` or not;
    the seconds the loop took (the listing and the catalogue made before, untimed)."""
    names = [(d, f) for d in sorted(os.listdir(root)) for f in sorted(os.listdir(root / d))]
    db = sqlite3.connect(state / "catalogue.db", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("CREATE TABLE r (id TEXT PRIMARY KEY, state INT)")
    db.executemany("INSERT INTO r VALUES (?, 0)", [(f"{d}/{f}",) for d, f in names])
    log = os.open(state / "audit.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    chain = b""
    began = time.perf_counter()
    for start in range(0, len(names), BATCH):
        lines, done = [], []
        for d, f in names[start : start + BATCH]:
            dir_fd = os.open(root / d, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            try:
                fd = os.open(f, os.O_PATH | os.O_NOFOLLOW, dir_fd=dir_fd)
                st = os.fstat(fd)
                os.unlink(f, dir_fd=dir_fd)
                os.close(fd)
            finally:
                os.close(dir_fd)
            if audited:
                entry = {"action": "erase.done", "subject": f"{d}/{f}", "ino": st.st_ino}
                line = json.dumps(entry | {"prev": chain.hex()}, sort_keys=True).encode()
                chain = hashlib.sha256(chain + line).digest()
                lines.append(line)
                done.append((f"{d}/{f}",))
        if audited:
            os.write(log, b"\n".join(lines) + b"\n")
            os.fsync(log)
            db.execute("BEGIN")
            db.executemany("UPDATE r SET state = 1 WHERE id = ?", done)
            db.execute("COMMIT")
    elapsed = time.perf_counter() - began
    os.close(log)
    db.close()
    return elapsed


def _child(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench.floors", *args]


def run_index(count: int) -> dict[str, float]:
    with workdir("floor-index") as base:
        root = base / "recordings"
        make_empty_tree(root, count, age_days=40)
        sync()
        find = ["find", str(root), "-type", "f", "-printf", "%p %s %T@ %i\n"]
        subprocess.run(find, stdout=subprocess.DEVNULL, check=True)  # warm the dentry cache
        t_find, _ = timed(find, stdout=subprocess.DEVNULL)
        t_walk, _ = timed(_child("walk", str(root), str(base / "walk.db")))
        t_index, _ = timed(_child("index", str(root), str(base / "index.db")))
    return {
        "files": count,
        "find_s": t_find,
        "walk_s": t_walk,
        "index_s": t_index,
        "ratio_walk": ratio(t_find, t_walk),
        "ratio_index": ratio(t_find, t_index),
    }


def run_sweep(count: int) -> dict[str, float]:
    with workdir("floor-sweep") as base:
        for tree in ("find", "unlink", "audited"):
            make_tree(base / tree, count)
            (base / f"{tree}-state").mkdir()
        sync()
        t_find, _ = timed(["find", str(base / "find"), "-type", "f", "-mtime", "+30", "-delete"])
        sync()
        t_unlink = sweep(base / "unlink", base / "unlink-state", audited=False)
        sync()
        t_audited = sweep(base / "audited", base / "audited-state", audited=True)
    return {
        "files": count,
        "find_delete_s": t_find,
        "unlink_s": t_unlink,
        "audited_s": t_audited,
        "ratio_unlink": ratio(t_find, t_unlink),
        "ratio_audited": ratio(t_find, t_audited),
    }


def main(argv: list[str]) -> None:
    """``<walk|index> ROOT DB``: one index floor, for ``timed``."""
    what, root, db_path = argv[0], Path(argv[1]), Path(argv[2])
    start = time.perf_counter()
    n = index(root, db_path, walk_only=what == "walk")
    print(f"{what}: {n} files in {time.perf_counter() - start:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
