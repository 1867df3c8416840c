"""A rescan takes an unchanged directory's files from the catalogue (its stamp): what that
must not break. A file rewritten in place in such a directory is not erased at its old
deadline but re-indexed by the erase's own check; a file that could not be indexed keeps its
directory unstamped (tried again at every scan); new classification settings list every
directory again."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest

from recd.adapters.local import directory
from recd.adapters.sqlite.catalogue import SqliteCatalogue
from recd.core.fastclass import Classified, PathClassifier
from recd.core.model import Recording, recording_id
from recd.service.indexing import STAMP_TRUST, Indexer, IndexStats
from tests.estate import Estate

TICK = 0.05


@pytest.fixture(autouse=True)
def no_slack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(directory, "STAMP_SLACK_NS", 0)


def scan(estate: Estate) -> IndexStats:
    time.sleep(TICK)  # every directory changed before this scan's start
    rt = estate.runtime()
    try:
        source = estate.config.sources[0]
        stats = Indexer(estate.config, source, rt.sources["pbx"], rt.catalogue, None).run(
            estate.clock.now()
        )
    finally:
        rt.close()
    time.sleep(TICK)
    return stats


def row(estate: Estate, relpath: str) -> Recording:
    cat = SqliteCatalogue(estate.config.daemon.state_dir / "catalog.db")
    try:
        found = cat.get(recording_id("pbx", relpath))
    finally:
        cat.close()
    assert found is not None
    return found


def test_a_file_rewritten_in_place_in_an_unchanged_directory_is_reindexed_not_erased(
    estate: Estate,
) -> None:
    path = estate.write("L1/a.wav", age_days=29.5)  # started from the mtime: due in 12 hours
    estate.write("L1/b.wav", age_days=1)
    scan(estate)
    old = row(estate, "L1/a.wav")
    assert old.deadline == estate.clock.now() + timedelta(hours=12)
    path.write_bytes(b"\x02" * 100)  # the same name, new content: the directory is unchanged
    rewritten = (estate.clock.now() - timedelta(days=1)).timestamp()
    os.utime(path, (rewritten, rewritten))
    stats = scan(estate)
    assert (stats.files, stats.new, stats.changed, stats.missing) == (2, 0, 0, 0)
    assert row(estate, "L1/a.wav").size == old.size  # trusted: not listed, not stat-ed
    estate.clock.advance(timedelta(hours=13).total_seconds())  # past the old deadline,
    report = estate.sweep()  # within the stamp's day of trust
    assert report.erased == 0
    assert ("erase.done", "L1/a.wav") not in estate.actions()
    assert path.read_bytes() == b"\x02" * 100
    assert row(estate, "L1/a.wav").size == old.size  # this sweep had no re-indexer
    scan(estate)  # the skip took the directory's stamp away: listed, and re-indexed
    now = row(estate, "L1/a.wav")
    assert now.size == 100
    assert now.deadline == estate.clock.now() - timedelta(days=1, hours=13) + timedelta(days=30)


def test_once_reindexes_a_file_rewritten_in_place_in_an_unchanged_directory(
    estate: Estate,
) -> None:
    path = estate.write("L1/a.wav", age_days=29.5)
    scan(estate)
    path.write_bytes(b"\x02" * 100)
    rewritten = (estate.clock.now() - timedelta(days=1)).timestamp()
    os.utime(path, (rewritten, rewritten))
    estate.clock.advance(timedelta(hours=13).total_seconds())  # the stamp still trusted
    time.sleep(TICK)
    estate.once()
    assert path.read_bytes() == b"\x02" * 100
    assert ("erase.done", "L1/a.wav") not in estate.actions()
    now = row(estate, "L1/a.wav")
    assert (now.size, now.deadline) == (100, estate.clock.now() + timedelta(days=29, hours=-13))


def test_a_stamp_is_trusted_for_a_day_after_the_listing_that_made_it(estate: Estate) -> None:
    """A file backdated in place (``touch -d``) leaves its directory's times alone: a rescan
    within ``STAMP_TRUST`` of the listing keeps the catalogue's row; the first rescan after
    lists the directory again and the earlier start time (an earlier deadline) is seen."""
    path = estate.write("L1/a.wav", age_days=1)
    scan(estate)
    assert row(estate, "L1/a.wav").deadline == estate.clock.now() + timedelta(days=29)
    backdated = (estate.clock.now() - timedelta(days=40)).timestamp()
    os.utime(path, (backdated, backdated))
    estate.clock.advance((STAMP_TRUST - timedelta(minutes=1)).total_seconds())
    assert scan(estate).changed == 0  # trusted: the stamp is a day old less a minute
    scan(estate)  # a trusted directory keeps its stamp's time: not renewed by this scan
    estate.clock.advance(timedelta(minutes=2).total_seconds())
    stats = scan(estate)
    assert (stats.files, stats.changed) == (1, 1)
    assert row(estate, "L1/a.wav").deadline == estate.clock.now() - timedelta(
        days=10, hours=24, minutes=1
    )


def test_a_directory_with_a_file_that_failed_to_index_is_listed_again(
    estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    estate.write("L1/a.wav", age_days=1)
    estate.write("L2/b.wav", age_days=1)
    real = Indexer.recording

    def failing(self: Indexer, rid: str, facts: object, now: object) -> Recording:
        if getattr(facts, "relpath", "") == "L1/a.wav":
            raise ValueError("unreadable tags")
        return real(self, rid, facts, now)  # type: ignore[arg-type]

    monkeypatch.setattr(Indexer, "recording", failing)
    # A first index classifies by fastclass; what fails there is handed to ``recording``.
    fast = PathClassifier.classify

    def fast_failing(self: PathClassifier, relpath: str, mtime_ns: int) -> Classified | None:
        if relpath == "L1/a.wav":
            raise ValueError("unreadable tags")
        return fast(self, relpath, mtime_ns)

    monkeypatch.setattr(PathClassifier, "classify", fast_failing)
    assert scan(estate).new == 1
    monkeypatch.setattr(Indexer, "recording", real)
    monkeypatch.setattr(PathClassifier, "classify", fast)
    stats = scan(estate)
    assert (stats.files, stats.new) == (2, 1)  # L1 listed again, L2 trusted


def test_new_classification_settings_list_every_directory(estate: Estate) -> None:
    from dataclasses import replace

    estate.write("L1/a.wav", age_days=1)
    scan(estate)
    assert scan(estate).changed == 0
    first = estate.config.sources[0]
    source = replace(first, rule=replace(first.rule, started_format="%Y%m%d%H%M"))
    estate.configure(sources=(source,))
    assert scan(estate).changed == 1
