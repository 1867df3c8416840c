"""A first index classifies most files by ``recd.core.fastclass`` (integer microseconds, rows
from plain values): the catalogue it leaves is the one the general path leaves, row for row,
including files the fast path hands back (a DST change that day, a start time the format does
not take, no start time in the name)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from recd.core import fastclass
from recd.service.indexing import Indexer
from tests.estate import Estate

NAMES = [
    "L1/20261106120000_a.wav",
    "L1/20240229235959_b.wav",  # a leap day
    "L2/20251130083000_c.wav",  # 3 months on: a clamped month end
    "L2/20260329013000_d.wav",  # London's spring-forward gap: the general path
    "L2/20261025013000_e.WAV.wav",  # London's fall-back overlap: the general path
    "L1/20261399000000_f.wav",  # no such date: the mtime
    "X9/20261106120000_g.wav",  # an unknown licence
    "L1/h.wav",  # no start time in the name: the mtime
]


def first_index(estate: Estate, fast: bool, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    if not fast:
        monkeypatch.setattr(fastclass.PathClassifier, "for_rule", staticmethod(lambda *a: None))
    rt = estate.runtime()
    try:
        source = estate.config.sources[0]
        idx = Indexer(estate.config, source, rt.sources["pbx"], rt.catalogue, None)
        assert (idx._fast is not None) is fast
        stats = idx.run(estate.clock.now())
    finally:
        rt.close()
        monkeypatch.undo()
    db = sqlite3.connect(estate.config.daemon.state_dir / "catalog.db")
    try:
        got = db.execute(
            "SELECT id, source, location, dir, dev, ino, size, mtime_ns, licence, started, "
            "deadline, fields, state, first_seen, indexed_at, held, ctime_ns, btime_ns, "
            "not_before FROM recordings ORDER BY id"
        ).fetchall()
    finally:
        db.close()
    return [stats.files, stats.new, stats.unclassified, sorted(map(str, stats.licences)), got]


@pytest.mark.parametrize("zone", ["UTC", "Europe/London", "Australia/Lord_Howe"])
def test_a_first_index_stores_what_the_general_path_stores(
    tmp_path: Path, estate: Estate, monkeypatch: pytest.MonkeyPatch, zone: str
) -> None:
    source = estate.config.sources[0]
    rule = replace(source.rule, timezone=ZoneInfo(zone))
    estate.configure(sources=(replace(source, rule=rule),))
    for name in NAMES:
        estate.write(name, age_days=3)
    fast = first_index(estate, True, monkeypatch)
    (estate.config.daemon.state_dir / "catalog.db").unlink()
    for extra in ("catalog.db-wal", "catalog.db-shm"):
        (estate.config.daemon.state_dir / extra).unlink(missing_ok=True)
    general = first_index(estate, False, monkeypatch)
    assert fast == general
    assert fast[1] == len(NAMES)
