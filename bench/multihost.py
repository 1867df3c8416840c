"""recd on several hosts sharing one PostgreSQL catalogue (issue 18): erase throughput with 1, 2
and 3 daemons on one catalogue, and deletion lag on PostgreSQL against SQLite, in the same run.

Both rows run real ``recd --config`` daemons (``bench.common.RecdDaemon``) on a durable
PostgreSQL the bench starts (``bench.pgserver``, the settings of ``bench.catalogue``: fsync,
synchronous commit and full page writes on), each row and each daemon count on a fresh
database, over a unix socket, on this one machine: the "hosts" share its cores and disk.

**Erase throughput** (``erase``): ``k`` daemons, nodes ``node1``..``nodek``, each with its own
state directory, admin socket and metrics port, on one catalogue. Each node erases its own
local directory (a source of its own, ``nodes = ["nodeN"]``, as docs/multihost.md has each
PBX's spool): once each has finished its first scan, ``count`` recordings in all, split evenly
among the ``k`` directories, are written, all due at one whole second ``T`` (``lead_s`` ahead,
so every daemon has indexed them before); at ``T`` every daemon sweeps its own. Time = the last
``erase.done`` entry in the shared audit table - ``T``; ``files_per_s`` = count / time;
``scaling`` = k daemons' rate / 1 daemon's (what ``k`` hosts sharing one catalogue gain, here
on one machine's cores and disk); ``ratio_find`` = ``find -type f -delete`` on an identical
tree, in the same run, over recd's time (1.0: as fast). On a small, shared machine one run's
time swings by 2x, so ``make bench`` runs three rounds (each: every ``k``, then ``find``) and
reports medians, with the spread of each. The row counts any recording erased twice (``twice``,
must be 0), any intent before ``T`` (``early``, must be 0) and any left (``not_erased``).

A directory with ``shared = true`` (an NFS export) is served, and erased, by the one node
holding its lock, so however many daemons run, one erases it all: ``multihost_erase_shared``
shows exactly that with the largest ``k`` on one directory (``most_by_one_node`` = 1). Work on
one store divides among daemons only on S3, where every node erases the keys it claims
(``bench.multihost_s3``). Before recd refused a directory source listed on several nodes
without ``shared``, this row ran ``k`` daemons on one such source and found recordings never
erased (each node's scan marked the others' indexed recordings missing).

**Deletion lag** (``lag``): ``bench.deletion_lag.run`` (one daemon, recordings written once it
has scanned, deadlines on whole seconds spread over ``spread_s``, lag = ``erase.done`` time -
deadline) once on SQLite and once on PostgreSQL, p50/p95/max of each.

Without PostgreSQL's server binaries or psycopg, ``run`` raises ``catalogue.Skipped``.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench import catalogue, deletion_lag, multihost_s3, pgserver
from bench.common import RecdDaemon, pg_query, ratio, sync, timed, workdir, write_config
from tests.tools import free_port

SIZE = 64  # bytes a recording
#: Counts of an erase run that must be 0 (summed over the rounds).
MUST_BE_ZERO = ("not_erased", "twice", "early", "failed")


def run(
    erase_count: int,
    lag_count: int,
    *,
    ks: Sequence[int] = (1, 2, 3),
    lag_spread_s: float = 20.0,
    lead_s: float | None = None,
    repeat: int = 1,
    s3_count: int = 0,
) -> dict[str, dict[str, float]]:
    """The rows ``multihost_erase`` (``repeat`` rounds), ``multihost_erase_shared`` (the
    largest ``k``, one node at a time, one round), ``multihost_lag`` (see the module) and,
    with ``s3_count``, ``multihost_erase_s3`` (``bench.multihost_s3``, ``repeat`` rounds;
    left out, saying why on stderr, without moto)."""
    rows: dict[str, dict[str, float]] = {}
    with _server() as server:
        rows["multihost_erase"] = erase(server, erase_count, ks, lead_s=lead_s, repeat=repeat)
        rows["multihost_erase_shared"] = erase(
            server, erase_count, (max(ks),), shared=True, lead_s=lead_s
        )
        rows["multihost_lag"] = lag(
            server, lag_count, lag_spread_s, lead_s=10.0 if lead_s is None else lead_s
        )
        if s3_count:
            try:
                rows["multihost_erase_s3"] = multihost_s3.erase(
                    lambda: database(server), s3_count, ks, lead_s=lead_s, repeat=repeat
                )
            except multihost_s3.Missing as exc:
                print(f"multihost_erase_s3 skipped: {exc}", file=sys.stderr)
    return rows


@contextlib.contextmanager
def _server() -> Iterator[pgserver.Postgres]:
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise catalogue.Skipped(f"{exc.name} missing: pip install 'psycopg[binary]'") from exc
    try:
        with pgserver.running(catalogue.DURABLE) as server:
            yield server
    except pgserver.Missing as exc:
        raise catalogue.Skipped(
            f"{exc.binary} missing: apt-get install postgresql "
            f"(looked in {pgserver.DEBIAN_ROOT}/*/bin and on PATH)"
        ) from exc


_databases = iter(range(1, 1_000_000))


def database(server: pgserver.Postgres) -> str:
    """The URL of a fresh, empty database on ``server``."""
    import psycopg

    name = f"bench{next(_databases)}"
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.url(name)


def erase(
    server: pgserver.Postgres,
    count: int,
    ks: Sequence[int],
    *,
    shared: bool = False,
    lead_s: float | None = None,
    repeat: int = 1,
) -> dict[str, float]:
    """``count`` recordings due at once, erased by each of ``ks`` daemons in turn, and by
    ``find -delete``, ``repeat`` rounds (each round every ``k`` once, then ``find``); each
    figure is its median over the rounds, ``*_spread_s`` the longest time less the shortest,
    and the counts that must stay 0 are summed over every round. ``shared``: the source is
    one-at-a-time (``shared = true``)."""
    count = max(1, count)
    lead = max(10.0, count / 250) if lead_s is None else lead_s
    finds: list[float] = []
    runs: dict[int, list[dict[str, float]]] = {k: [] for k in ks}
    for _ in range(repeat):
        for k in ks:
            runs[k].append(_erase_with(database(server), k, count, shared, lead))
        finds.append(_find_delete(count))
    t_find = statistics.median(finds)
    row: dict[str, float] = {"files": count, "shared": int(shared), "rounds": repeat}
    row |= {"find_delete_s": t_find, "find_spread_s": max(finds) - min(finds)}
    row["find_files_per_s"] = count / t_find
    row |= per_daemons(runs, repeat, MUST_BE_ZERO, t_find, "ratio_find")
    return row


def per_daemons(
    runs: dict[int, list[dict[str, float]]],
    repeat: int,
    must_be_zero: tuple[str, ...],
    baseline_s: float,
    ratio_name: str,
) -> dict[str, float]:
    """``k<k>_<figure>`` for each number of daemons ``k``: its median run (by erase time), the
    ``must_be_zero`` counts summed over every round, the fewest erased, the spread, the rate
    as a multiple of the first ``k``'s (``scaling``) and ``ratio_name``: the baseline's time
    over its erase time."""
    row: dict[str, float] = {}
    first_rate = math.nan
    for k, rounds in runs.items():
        one = sorted(rounds, key=lambda r: r["erase_s"])[(repeat - 1) // 2]  # the median run
        for key in must_be_zero:
            one[key] = sum(r[key] for r in rounds)
        one["erased"] = min(r["erased"] for r in rounds)
        times = [r["erase_s"] for r in rounds]
        one["erase_spread_s"] = max(times) - min(times)
        if math.isnan(first_rate):
            first_rate = one["files_per_s"]
        one["scaling"] = one["files_per_s"] / first_rate
        one[ratio_name] = ratio(baseline_s, one["erase_s"])
        row.update({f"k{k}_{key}": value for key, value in one.items()})
    return row


def _find_delete(count: int) -> float:
    """Seconds of ``find -type f -delete`` over ``count`` recordings laid out as recd's."""
    with workdir("multihost-find") as base:
        root = base / "recordings"
        deletion_lag.make_due_tree(root, [math.ceil(time.time())] * count, SIZE)
        sync()
        return timed(["find", str(root), "-type", "f", "-delete"])[0]


def _erase_with(url: str, k: int, count: int, shared: bool, lead_s: float) -> dict[str, float]:
    """One run of ``k`` daemons on the database ``url`` (see the module)."""
    with workdir(f"multihost-{k}") as base, contextlib.ExitStack() as stack:
        names = [f"node{n}" for n in range(1, k + 1)]
        # shared: one directory all serve, one at a time; else each node's own directory
        roots = [base / "recordings"] if shared else [base / name for name in names]
        daemons = []
        for n, name in enumerate(names):
            node_base, port = base / f"{name}-host", free_port()
            root = roots[0] if shared else roots[n]
            root.mkdir(exist_ok=True)
            config = write_config(
                node_base, root, retention="30d", settle="1s", metrics_port=port,
                catalogue_url=url, node=name, shared=shared,
                source="bench" if shared else f"{name}-local",
            )  # fmt: skip
            daemons.append(stack.enter_context(RecdDaemon(config, node_base, port, url)))
        for daemon in daemons:
            wait_scanned(daemon)
        due = math.ceil(time.time() + lead_s)
        for n, root in enumerate(roots):  # count split among the roots, the first the rest
            share = count // len(roots) + (n < count % len(roots))
            deletion_lag.make_due_tree(root, [due] * share, SIZE)
        leader = daemons[0]
        while leader.recordings() < count and time.time() < due:
            time.sleep(0.1)
        indexed_margin = due - time.time()
        end = due + 120.0 + count / 50
        while leader.recordings() > 0 and time.time() < end:
            time.sleep(0.2)
        left = leader.recordings()
        audited(url, count, end)
        lines = deletion_lag.audit_lines(Path(), url)
        codes = [daemon.stop() for daemon in daemons]
        audits = [deletion_lag.read_audit(lines, root) for root in roots]
    done = [when for audit in audits for when in audit.done.values()]
    intents = [when for audit in audits for when in audit.intent.values()]
    done_by: Counter[str] = sum((audit.done_by for audit in audits), Counter())
    last = max(done, default=math.nan)
    return {
        "erase_s": last - due,
        "files_per_s": count / (last - due),
        "first_intent_s": min(intents, default=math.nan) - due,
        "indexed_margin_s": indexed_margin,  # > 0: all indexed before the deadline
        "erased": len(done),
        "not_erased": left,
        "twice": sum(done_by.values()) - len(done),
        "early": sum(when < due for when in intents),
        "failed": audits[0].failed,  # every erase.failed entry, whichever root
        "nodes_erasing": len(done_by),
        "most_by_one_node": max(done_by.values(), default=0) / count,
        "exit_max": float(max(c if c is not None else -1 for c in codes)),
    }


DONE = (
    "SELECT count(*) FROM audit WHERE convert_from(line, 'UTF8')::jsonb->>'action' = 'erase.done'"
)


def audited(url: str, count: int, end: float) -> None:
    """Until the audit table of ``url`` holds ``count`` ``erase.done`` entries, or the time
    ``end``: a batch's recordings leave the catalogue before its ``erase.done`` entries are
    written, so an empty catalogue does not mean the audit is complete."""
    while pg_query(url, DONE)[0][0] < count and time.time() < end:
        time.sleep(0.1)


def wait_scanned(daemon: RecdDaemon, timeout: float = 600.0) -> None:
    """Until this daemon's status shows a finished scan of every source it serves (a node
    that does not serve a shared source never scans it)."""
    end = time.monotonic() + timeout
    while True:
        sources = daemon.status()["sources"]
        if sources and all(
            s["last_scan"] is not None or s["served"] in ("elsewhere", "not-listed")
            for s in sources
        ):
            return
        if time.monotonic() > end:
            raise RuntimeError(f"{daemon.config}: no first scan within {timeout} s")
        time.sleep(0.2)


def lag(
    server: pgserver.Postgres, count: int, spread_s: float, *, lead_s: float = 10.0
) -> dict[str, float]:
    """Deletion lag of one daemon on SQLite, then on PostgreSQL (see the module)."""
    row: dict[str, float] = {"files": max(1, count), "spread_s": spread_s}
    for engine, url in (("sqlite", None), ("pg", database(server))):
        one = deletion_lag.run(count, spread_s=spread_s, lead_s=lead_s, url=url)
        for key in ("audit_p50_s", "audit_p95_s", "audit_max_s"):
            row[f"{engine}_{key.removeprefix('audit_')}"] = one[key]
        row[f"{engine}_indexed_margin_s"] = one["indexed_margin_s"]
        row[f"{engine}_erased"] = one["erased_audit"]
        row[f"{engine}_early"] = one["early_intent"] + one["early_done"]
    return row
