"""Catalogue write rate: PostgreSQL against SQLite, in the same run (issue 18).

``run(count)`` writes the same ``count`` recordings through each catalogue as the daemon
would: a first index (``insert_new``, in the indexer's batches of ``indexing.BATCH``), a
rescan that found every file changed (``upsert``, same batches), then a sweep's catalogue work
for every recording, all due (``due_dirs``, ``due_in`` by pages of ``sweep.PAGE`` per
directory, and per batch of ``sweep.BATCH`` ``add_intents`` then ``resolve_intents``). No
files are touched and nothing is audited: only the catalogue is timed. Each phase's rate is in
rows per second, and its ratio PostgreSQL/SQLite (1.0: as fast; 0.5: twice as slow).

Both are durable, as in production: SQLite in WAL with ``synchronous=FULL``; PostgreSQL is
started here (``bench.pgserver``: initdb into a temporary directory, unix socket only, as
``nobody`` under root) with ``fsync``, ``synchronous_commit`` and ``full_page_writes`` on,
which ``pg_durable`` (1) reads back from the running server. Both on the same filesystem (the
system's temporary directory), over a unix socket, on one host: a networked server adds a
round trip per statement on top.

Without PostgreSQL's server binaries or psycopg, ``run`` raises ``Skipped`` saying what to
install.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import pgserver
from recd.adapters.sqlite.catalogue import SqliteCatalogue
from recd.core.fastclass import Classified, Found
from recd.core.model import FileFacts, Provenance, Recording, recording_id
from recd.ports.records import Intent
from recd.ports.sweeping import SweepCatalogue
from recd.service import indexing, sweep

#: Durable as in production (the tests' server runs without any of it).
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
SOURCE = "bench"
PER_DIR = 1000  # files per directory, as bench.common.make_tree
NOW = datetime(2026, 1, 1, tzinfo=UTC)
_PROVENANCE = tuple(
    (name, Provenance.PATTERN) for name in ("licence", "call_id", "caller", "started", "format")
)


class Skipped(Exception):
    """The row cannot run on this machine (the message says what to install)."""


def found(count: int) -> list[Found]:
    """``count`` recordings of a first index, ``PER_DIR`` to a directory, all due at ``NOW``."""
    started = NOW - timedelta(days=31)
    started_us = int(started.timestamp() * 1e6)
    deadline_us = int((NOW - timedelta(days=1)).timestamp() * 1e6)
    name_time = started.strftime("%Y%m%d%H%M%S")
    rows = []
    for n in range(count):
        d, i = divmod(n, PER_DIR)
        relpath = f"{1000 + d}/0770090{i:04}_{1000 + d}_{name_time}({n}).wav"
        mtime_ns = started_us * 1000
        facts = FileFacts(SOURCE, relpath, 2049, 10_000 + n, 64, mtime_ns, ctime_ns=mtime_ns)
        classified = Classified(
            "3CX-1234-5678", started_us, deadline_us, str(n), None, f"0770090{i:04}",
            str(1000 + d), "wav", _PROVENANCE,
        )  # fmt: skip
        rows.append(Found(recording_id(SOURCE, relpath), facts, classified))
    return rows


def changed(rows: Sequence[Found], now: datetime) -> list[Recording]:
    """What a rescan stores when every file grew: ``rows`` as recordings, a byte larger and
    modified a second later."""
    return [
        replace(r, size=r.size + 1, mtime_ns=r.mtime_ns + 10**9)
        for r in (f.recording(now) for f in rows)
    ]


def index(catalogue: Any, rows: Sequence[Found], now: datetime) -> None:
    """A first index: ``insert_new`` in the indexer's batches."""
    for start in range(0, len(rows), indexing.BATCH):
        catalogue.insert_new(rows[start : start + indexing.BATCH], now)


def rescan(catalogue: Any, rows: Sequence[Recording], now: datetime) -> None:
    """A rescan that found ``rows`` changed: ``upsert`` in the indexer's batches."""
    for start in range(0, len(rows), indexing.BATCH):
        catalogue.upsert(rows[start : start + indexing.BATCH], now)


def sweep_all(catalogue: SweepCatalogue, now: datetime) -> int:
    """A sweep's catalogue work for everything due at ``now``, directory by directory, page by
    page, batch by batch as ``Sweeper.run``; returns the recordings marked erased."""
    erased = 0
    due: list[Recording] = []
    for source, directory in catalogue.due_dirs(now):
        after = ""
        while page := catalogue.due_in(source, directory, now, sweep.PAGE, after):
            after = page[-1].relpath
            for rec in page:
                due.append(rec)
                if len(due) >= sweep.BATCH:
                    erased += _settle(catalogue, due, now, erased)
                    due = []
    if due:
        erased += _settle(catalogue, due, now, erased)
    return erased


def _settle(catalogue: SweepCatalogue, due: list[Recording], now: datetime, offset: int) -> int:
    """One batch's intents recorded, then resolved as erased; returns how many were."""
    intents = [
        Intent(f"i{offset + k}", r.id, offset, f".recd-erase-{offset + k:012}",
               {"method": "unlink", "effective": True}, now)
        for k, r in enumerate(due)
    ]  # fmt: skip
    recorded = catalogue.add_intents(intents)
    catalogue.resolve_intents([(i, now) for i in sorted(recorded)], [])
    return len(recorded)


def phases(catalogue: Any, rows: Sequence[Found]) -> dict[str, float]:
    """Seconds of each phase (``insert``, ``upsert``, ``sweep``) on ``catalogue``."""
    again = changed(rows, NOW + timedelta(seconds=1))
    seconds: dict[str, float] = {}
    steps: list[tuple[str, Callable[[], object]]] = [
        ("insert", lambda: index(catalogue, rows, NOW)),
        ("upsert", lambda: rescan(catalogue, again, NOW + timedelta(seconds=1))),
        ("sweep", lambda: _swept(catalogue, len(rows))),
    ]
    for name, step in steps:
        start = time.perf_counter()
        step()
        seconds[name] = time.perf_counter() - start
    return seconds


def _swept(catalogue: SweepCatalogue, expected: int) -> None:
    erased = sweep_all(catalogue, NOW + timedelta(seconds=2))
    if erased != expected:
        raise RuntimeError(f"the sweep erased {erased} recordings, not {expected}")


def durable(url: str) -> bool:
    """Whether the server at ``url`` runs with every setting of ``DURABLE``."""
    import psycopg

    with psycopg.connect(url) as conn:
        return all(
            conn.execute(f"SHOW {key}").fetchone() == (value,) for key, value in DURABLE.items()
        )


def run(count: int) -> dict[str, float]:
    """The row (see the module): rates per engine and phase, and their ratios."""
    try:
        from recd.adapters.postgres.catalogue import PostgresCatalogue
    except ImportError as exc:
        raise Skipped(f"{exc.name} missing: pip install 'psycopg[binary]'") from exc
    rows = found(count)
    try:
        with pgserver.running(DURABLE) as server:
            sqlite = SqliteCatalogue(Path(server.socket_dir) / "catalog.db")
            pg = PostgresCatalogue(server.url(), node="bench")
            try:
                lite = phases(sqlite, rows)
                post = phases(pg, rows)
                if list(sqlite.all()) != list(pg.all()):
                    raise RuntimeError("SQLite and PostgreSQL stored different rows")
                is_durable = durable(server.url())
            finally:
                sqlite.close()
                pg.close()
    except pgserver.Missing as exc:
        raise Skipped(
            f"{exc.binary} missing: apt-get install postgresql "
            f"(looked in {pgserver.DEBIAN_ROOT}/*/bin and on PATH)"
        ) from exc
    result: dict[str, float] = {"files": count, "pg_durable": int(is_durable)}
    for phase in ("insert", "upsert", "sweep"):
        result[f"sqlite_{phase}_rps"] = count / lite[phase]
        result[f"pg_{phase}_rps"] = count / post[phase]
        result[f"ratio_{phase}"] = lite[phase] / post[phase]
    return result
