"""Use cases end to end in-process: real files, real SQLite, real audit log, a fake clock."""

from __future__ import annotations

import errno
import functools
import logging
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest

from recd.adapters.local.directory import DirScanReport
from recd.adapters.sqlite.catalogue import SqliteCatalogue
from recd.adapters.sqlite.reader import SqliteReader
from recd.core.audit import verify
from recd.core.classify import ClassifyRule
from recd.core.erasure import EraseSettings
from recd.core.model import EraseMethod, FileFacts, Recording, State, recording_id
from recd.core.periods import parse_period
from recd.core.safety import SafetySettings
from recd.daemon.runtime import Runtime, reindex, scan_all
from recd.errors import ExitCode
from recd.ports.source import ScanTotals, Source
from recd.service.indexing import Indexer, IndexErrors, IndexStats
from recd.service.sweep import Sweeper, SweepReport
from tests.estate import Estate
from tests.fakes import FakeClock


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    return Estate(tmp_path, fake_clock)


def rid(relpath: str) -> str:
    return recording_id("pbx", relpath)


def states(estate: Estate) -> dict[str, State]:
    cat = SqliteCatalogue(estate.config.daemon.state_dir / "catalog.db")
    try:
        return {r.relpath: r.state for r in cat.all()}
    finally:
        cat.close()


def test_due_recordings_are_erased_and_audited_others_kept(estate: Estate) -> None:
    old = estate.write("L1/old.wav", age_days=31)
    young = estate.write("L1/young.wav", age_days=29)
    kept3mo = estate.write("L2/forty-days.wav", age_days=40)
    stray = estate.write("stray.wav", age_days=400)
    report = estate.sweep()
    assert not old.exists()
    assert young.exists() and kept3mo.exists() and stray.exists()
    assert (report.erased, report.failed) == (1, 0)
    assert (report.licences["L1"].recordings, report.licences["L1"].due) == (2, 1)
    assert report.licences["(unclassified)"].due == 0
    assert estate.actions() == [
        ("erase.intent", rid("L1/old.wav")),
        ("erase.done", rid("L1/old.wav")),
    ]
    done = estate.audit()[-1]["details"]
    assert done["location"] == str(old)
    assert (done["licence"], done["size"], done["reason"]) == ("L1", 4096, "retention")
    assert (done["method"], done["effective"], done["bytes_overwritten"]) == (
        "overwrite",
        True,
        4096,
    )
    assert states(estate) == {
        "L1/old.wav": State.ERASED,
        "L1/young.wav": State.PRESENT,
        "L2/forty-days.wav": State.PRESENT,
        "stray.wav": State.PRESENT,
    }
    assert verify(estate.audit_path.read_bytes().splitlines(keepends=True)).ok


def test_once_prints_one_line_per_licence_and_exits_0(estate: Estate) -> None:
    estate.write("L1/a.wav", age_days=31)
    estate.write("L1/b.wav", age_days=1)
    estate.write("L2/c.wav", age_days=1)
    estate.write("stray.wav", age_days=1)
    code, out = estate.once()
    assert code is ExitCode.OK
    assert out.splitlines() == [
        "(unclassified): 1 recording, 0 due, 0 erased",
        "L1: 2 recordings, 1 due, 1 erased",
        "L2: 1 recording, 0 due, 0 erased",
    ]


def test_once_with_no_recordings_says_so(estate: Estate) -> None:
    assert estate.once() == (ExitCode.OK, "no recordings\n")


def test_once_exits_1_when_a_source_cannot_be_scanned(estate: Estate) -> None:
    estate.root.rmdir()
    code, out = estate.once()
    assert (code, out) == (ExitCode.FAILED, "no recordings\n")


def test_unclassified_default_policy_applies_default_retention(estate: Estate) -> None:
    from recd.config.load import RetentionSettings
    from recd.core.model import UnclassifiedPolicy

    estate.write("stray.wav", age_days=31)
    estate.configure(retention=RetentionSettings(unclassified=UnclassifiedPolicy.DEFAULT))
    report = estate.sweep()
    assert report.licences["(unclassified)"].erased == 1


def test_dry_run_erases_nothing_and_reports_what_it_would(estate: Estate) -> None:
    f = estate.write("L1/old.wav", age_days=31)
    estate.configure(mode="dry-run")
    code, out = estate.once()
    assert f.exists()
    assert code is ExitCode.OK
    assert out == "L1: 1 recording, 1 due, 1 would be erased (dry-run)\n"
    assert estate.actions() == []


def test_settle_keeps_a_file_modified_recently_until_it_settles(estate: Estate) -> None:
    f = estate.write("L1/call.wav", age_days=31, modified_seconds_ago=30)
    report = estate.sweep()
    assert f.exists()
    assert report.licences["L1"].kept == {"modified less than 2m ago": 1}
    assert estate.actions() == []  # a transient skip is not an audit event
    estate.clock.advance(120)
    assert estate.sweep().erased == 1
    assert not f.exists()


def test_hard_linked_file_is_refused_and_audited_once(estate: Estate) -> None:
    f = estate.write("L1/old.wav", age_days=31)
    os.link(f, estate.base / "elsewhere.wav")
    first = estate.sweep()
    second = estate.sweep()
    assert f.exists()
    assert first.licences["L1"].kept == {"has 2 hard links": 1}
    assert second.licences["L1"].kept == {"has 2 hard links": 1}
    assert estate.actions() == [("erase.skipped", rid("L1/old.wav"))]
    assert estate.audit()[-1]["details"]["skipped"] == "has 2 hard links"


def test_symlink_planted_after_indexing_is_not_followed(estate: Estate) -> None:
    victim = estate.base / "victim.wav"
    victim.write_bytes(b"precious" * 100)
    f = estate.write("L1/old.wav", age_days=31)
    estate.configure(mode="dry-run")
    estate.sweep()  # indexes the real file
    f.unlink()
    f.symlink_to(victim)
    estate.configure(mode="enforce")
    rt = estate.runtime()
    try:
        from recd.service.sweep import Sweeper

        report = Sweeper(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers).run()
    finally:
        rt.close()
    assert victim.read_bytes() == b"precious" * 100
    assert report.erased == 0
    assert [a for a, _ in estate.actions()] == ["erase.skipped"]


def test_file_gone_before_the_sweep_is_marked_missing(estate: Estate) -> None:
    f = estate.write("L1/old.wav", age_days=31)
    estate.configure(mode="dry-run")
    estate.sweep()
    f.unlink()
    estate.configure(mode="enforce")
    estate.sweep()
    assert states(estate) == {"L1/old.wav": State.MISSING}
    assert estate.actions() == []


def test_shortening_retention_recomputes_deadlines(estate: Estate) -> None:
    f = estate.write("L2/forty.wav", age_days=40)
    assert estate.sweep().erased == 0
    l2 = replace(estate.config.licences["L2"], retention=parse_period("30d"))
    estate.configure(licences={**estate.config.licences, "L2": l2})
    assert estate.sweep().erased == 1
    assert not f.exists()


def test_breaker_stops_a_licence_and_stays_tripped(estate: Estate) -> None:
    for i in range(3):
        estate.write(f"L1/old{i}.wav", age_days=31)
    estate.write("L1/new.wav", age_days=1)
    estate.write("L2/old.wav", age_days=100)
    estate.configure(safety=SafetySettings(max_due_fraction=0.5, min_breaker_count=2))
    code, out = estate.once()
    assert code is ExitCode.OK
    assert out.splitlines() == [
        "L1: 4 recordings, 3 due, 0 erased, 3 kept (3 mass-deletion breaker), BREAKER TRIPPED",
        "L2: 1 recording, 1 due, 1 erased",
    ]
    assert [a for a, _ in estate.actions("breaker.")] == ["breaker.tripped"]
    tripped = estate.audit()[[e["action"] for e in estate.audit()].index("breaker.tripped")]
    assert tripped["subject"] == "L1"
    assert tripped["details"] == {
        "due": 3, "recordings": 4, "max_due_fraction": 0.5, "min_breaker_count": 2,
    }  # fmt: skip
    estate.configure(safety=SafetySettings())  # even with a relaxed rule it waits for release
    assert estate.sweep().licences["L1"].breaker is True


def test_unlink_method_records_no_overwrite(estate: Estate) -> None:
    estate.write("L1/old.wav", age_days=31)
    estate.configure(erase=EraseSettings(method=EraseMethod.UNLINK))
    estate.sweep()
    done = estate.audit()[-1]
    assert done["action"] == "erase.done"
    assert (done["details"]["method"], done["details"]["effective"]) == ("unlink", False)


def test_rescan_reclassifies_only_changed_files(estate: Estate, tmp_path: Path) -> None:
    estate.write("L1/a.wav", age_days=1)
    estate.write("L1/b.wav", age_days=1)
    rt = estate.runtime()
    try:
        from recd.service.indexing import Indexer

        source = estate.config.sources[0]
        idx = Indexer(estate.config, source, rt.sources["pbx"], rt.catalogue, None)
        first = idx.run(estate.clock.now())
        (estate.root / "L1" / "b.wav").write_bytes(b"changed")
        (estate.root / "L1" / "a.wav").unlink()
        second = idx.run(estate.clock.now())
    finally:
        rt.close()
    assert (first.files, first.new, first.changed, first.missing) == (2, 2, 0, 0)
    assert (second.files, second.new, second.changed, second.missing) == (1, 0, 1, 1)


class ListedSource:
    """A Source that yields given facts in a given order and reports given unreadable dirs
    (what a permission-denied subtree or an S3 listing looks like to the indexer)."""

    def __init__(self, name: str, facts: list[FileFacts], unreadable: list[str]) -> None:
        self.meta: dict[str, dict[str, str]] = {}
        self.broken: set[str] = set()
        self.metadata_reads: list[str] = []
        self.name = name
        self._facts = facts
        self._report = DirScanReport(unreadable_dirs=unreadable)
        self.last_scan: ScanTotals | None = None

    @property
    def report(self) -> DirScanReport:
        return self._report

    def scan(self, under: str = "") -> Iterator[FileFacts]:
        yield from (f for f in self._facts if not under or f.relpath.startswith(under + "/"))

    def facts(self, relpath: str) -> FileFacts | None:
        return next((f for f in self._facts if f.relpath == relpath), None)

    def open_read(self, relpath: str, dev: int, ino: int) -> IO[bytes]:
        raise FileNotFoundError(relpath)

    def metadata(self, relpath: str) -> dict[str, str]:
        """S3-like metadata, from ``self.meta``; an OSError for names in ``self.broken``."""
        if relpath in self.broken:
            raise OSError(5, "AccessDenied: Access Denied", relpath)
        self.metadata_reads.append(relpath)
        return self.meta.get(relpath, {})


def index_with(estate: Estate, facts: list[FileFacts], unreadable: list[str]) -> IndexStats:
    rt = estate.runtime()
    try:
        source = ListedSource("pbx", facts, unreadable)
        return Indexer(estate.config, estate.config.sources[0], source, rt.catalogue, None).run(
            estate.clock.now()
        )
    finally:
        rt.close()


def facts(relpath: str, ino: int) -> FileFacts:
    return FileFacts("pbx", relpath, 1, ino, 10, 1_700_000_000_000_000_000)


def test_deleted_directory_makes_its_recordings_missing(estate: Estate) -> None:
    first = [facts("L1/a/x.wav", 1), facts("L1/a/y.wav", 2), facts("L1/b/z.wav", 3)]
    index_with(estate, first, [])
    stats = index_with(estate, [facts("L1/b/z.wav", 3)], [])
    assert stats.missing == 2
    assert states(estate) == {
        "L1/a/x.wav": State.MISSING,
        "L1/a/y.wav": State.MISSING,
        "L1/b/z.wav": State.PRESENT,
    }


def test_recordings_below_an_unreadable_directory_are_not_missing(estate: Estate) -> None:
    index_with(estate, [facts("L1/locked/x.wav", 1), facts("L1/locked/deep/y.wav", 2)], [])
    stats = index_with(estate, [], ["L1/locked"])
    assert stats.missing == 0
    assert set(states(estate).values()) == {State.PRESENT}


def test_a_directory_listed_in_pieces_loses_nothing(estate: Estate) -> None:
    # S3 lists a/b.wav, a/c/d.wav, a/e.wav: directory "a" comes back after "a/c".
    pieces = [facts("L1/x.wav", 1), facts("L1/c/d.wav", 2), facts("L1/y.wav", 3)]
    index_with(estate, pieces, [])
    stats = index_with(estate, pieces, [])
    assert (stats.files, stats.new, stats.changed, stats.missing) == (3, 0, 0, 0)
    assert set(states(estate).values()) == {State.PRESENT}


def test_released_breaker_lets_the_next_sweep_erase_then_rearms(estate: Estate) -> None:
    from recd.daemon.runtime import release_breaker

    for i in range(3):
        estate.write(f"L1/old{i}.wav", age_days=31)
    estate.configure(safety=SafetySettings(max_due_fraction=0.5, min_breaker_count=2))
    assert estate.sweep().erased == 0
    assert release_breaker(estate.config, estate.clock, "L1", "alice") is ExitCode.OK
    released = estate.audit()[-1]
    assert (released["action"], released["actor"], released["subject"]) == (
        "breaker.released", "alice", "L1",
    )  # fmt: skip
    assert released["details"] == {"due": 3, "recordings": 3}
    report = estate.sweep()
    assert (report.erased, report.licences["L1"].breaker) == (3, False)
    for i in range(4):  # re-armed: a new mass of due recordings trips it again
        estate.write(f"L1/again{i}.wav", age_days=31)
    assert estate.sweep().licences["L1"].breaker is True


def test_releasing_a_breaker_that_is_not_tripped_is_refused(estate: Estate) -> None:
    from recd.daemon.runtime import release_breaker
    from recd.errors import NotAllowedInState

    with pytest.raises(NotAllowedInState) as exc:
        release_breaker(estate.config, estate.clock, "L1", "alice")
    assert str(exc.value) == "no tripped mass-deletion breaker for licence L1"
    assert exc.value.exit_code == 3


@pytest.mark.root
def test_a_failed_erase_is_audited_as_failed_and_exits_4(estate: Estate) -> None:
    import subprocess

    f = estate.write("L1/old.wav", age_days=31)
    root = str(estate.root)
    subprocess.run(["mount", "--bind", root, root], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", root], check=True)
        code, out = estate.once()
    finally:
        subprocess.run(["umount", root], check=True)
    assert code is ExitCode.PARTIAL
    assert out == "L1: 1 recording, 1 due, 0 erased, 1 failed\n"
    assert f.read_bytes() == b"\x01" * 4096
    assert [a for a, _ in estate.actions()] == ["erase.intent", "erase.failed"]
    error = estate.audit()[-1]["details"]["error"]
    assert error == "cannot open for writing: Read-only file system"
    # A failed erase claims nothing (issue 13, 9a): the plan's effective flag is not copied.
    assert "effective" not in estate.audit()[-1]["details"]
    assert estate.audit()[-1]["details"]["method"] == "overwrite"
    assert states(estate) == {"L1/old.wav": State.PRESENT}
    assert estate.sweep().erased == 1  # writable again: the next sweep erases it


def test_recordings_of_a_source_no_longer_configured_are_kept(estate: Estate) -> None:
    f = estate.write("L1/old.wav", age_days=31)
    estate.configure(mode="dry-run")
    estate.sweep()  # indexed under source "pbx"
    estate.configure(mode="enforce", sources=())
    report = estate.sweep()
    assert f.exists()
    assert report.licences["L1"].kept == {"source pbx is not configured": 1}
    assert estate.actions() == []  # transient: the operator may put the source back


# -- indexing: a subtree reconciliation, files the watcher saw ---------------------------------


def indexer(estate: Estate, rt: Runtime, source: Source | None = None) -> Indexer:
    config = estate.config
    return Indexer(
        config, config.sources[0], source or rt.sources["pbx"], rt.catalogue, rt.tag_reader
    )


def scan_times(estate: Estate) -> dict[str, tuple[datetime, datetime | None]]:
    reader = SqliteReader(estate.config.daemon.state_dir / "catalog.db")
    try:
        return reader.scans()
    finally:
        reader.close()


def test_subtree_reconciliation_touches_only_that_subtree(
    estate: Estate, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="recd.service.indexing")
    for relpath in ["L1/a/x.wav", "L1/a/y.wav", "L1/ab/z.wav", "L2/w.wav"]:
        estate.write(relpath, age_days=1)
    rt = estate.runtime()
    try:
        indexer(estate, rt).run(estate.clock.now())
        scanned = scan_times(estate)
        (estate.root / "L1" / "a" / "x.wav").unlink()
        (estate.root / "L1" / "ab" / "z.wav").unlink()  # outside the subtree: not looked at
        (estate.root / "L2" / "w.wav").unlink()
        estate.write("L1/a/new.wav", age_days=1)
        estate.write("L1/a/sub/deep.wav", age_days=1)  # a directory made since
        (estate.root / "L1" / "a" / "y.wav").write_bytes(b"longer now")
        estate.clock.advance(60)
        caplog.clear()
        stats = indexer(estate, rt).run(estate.clock.now(), "L1/a")
    finally:
        rt.close()
    assert (stats.files, stats.new, stats.changed, stats.missing) == (3, 2, 1, 1)
    assert states(estate) == {
        "L1/a/x.wav": State.MISSING,
        "L1/a/y.wav": State.PRESENT,
        "L1/a/new.wav": State.PRESENT,
        "L1/a/sub/deep.wav": State.PRESENT,
        "L1/ab/z.wav": State.PRESENT,  # until the watcher's event or a full scan says so
        "L2/w.wav": State.PRESENT,
    }
    assert scan_times(estate) == scanned  # a subtree is not a scan of the source
    assert caplog.messages == [
        "scan pbx (L1/a): 3 files, 2 new, 1 changed, 1 missing, 3 unclassified"
    ]
    assert caplog.records[0].levelno == logging.DEBUG


def test_subtree_that_vanished_makes_its_recordings_missing_and_no_others(
    estate: Estate,
) -> None:
    for relpath in ["L1/a/x.wav", "L1/a/deep/y.wav", "L1/ab/z.wav", "L1/top.wav"]:
        estate.write(relpath, age_days=1)
    rt = estate.runtime()
    try:
        indexer(estate, rt).run(estate.clock.now())
        shutil.rmtree(estate.root / "L1" / "a")
        stats = indexer(estate, rt).run(estate.clock.now(), "L1/a")
    finally:
        rt.close()
    assert (stats.files, stats.missing) == (0, 2)
    assert states(estate) == {
        "L1/a/x.wav": State.MISSING,
        "L1/a/deep/y.wav": State.MISSING,
        "L1/ab/z.wav": State.PRESENT,
        "L1/top.wav": State.PRESENT,
    }


def test_subtree_below_an_unreadable_directory_keeps_its_recordings(estate: Estate) -> None:
    index_with(estate, [facts("L1/locked/x.wav", 1), facts("L1/locked/deep/y.wav", 2)], [])
    rt = estate.runtime()
    try:
        source = ListedSource("pbx", [], ["L1/locked/deep"])
        stats = indexer(estate, rt, source).run(estate.clock.now(), "L1/locked")
    finally:
        rt.close()
    assert stats.missing == 1
    assert states(estate) == {
        "L1/locked/x.wav": State.MISSING,
        "L1/locked/deep/y.wav": State.PRESENT,
    }


def test_index_files_writes_new_and_changed_files_and_skips_unchanged_ones(
    estate: Estate,
) -> None:
    estate.write("L1/a.wav", age_days=1)
    estate.write("L7/b.wav", age_days=1)  # a licence no scan has seen: its policy is recorded
    rt = estate.runtime()
    try:
        source, idx, now = rt.sources["pbx"], indexer(estate, rt), estate.clock.now()

        def seen(*relpaths: str) -> list[FileFacts]:
            return [f for f in (source.facts(r) for r in relpaths) if f is not None]

        first = idx.index_files(seen("L1/a.wav", "L7/b.wav"), [], now)
        assert [(r.relpath, r.classification.licence) for r in first] == [
            ("L1/a.wav", "L1"), ("L7/b.wav", "L7"),
        ]  # fmt: skip
        assert set(rt.catalogue.policies()) == {"L1", "L7"}
        assert idx.index_files(seen("L1/a.wav", "L7/b.wav"), [], now) == []  # unchanged
        (estate.root / "L1" / "a.wav").write_bytes(b"rewritten")
        again = idx.index_files(seen("L1/a.wav", "L7/b.wav"), ["L7/b.wav", "L1/never.wav"], now)
        assert [(r.relpath, r.size) for r in again] == [("L1/a.wav", 9)]
        assert states(estate) == {"L1/a.wav": State.PRESENT, "L7/b.wav": State.MISSING}
        back = idx.index_files(seen("L7/b.wav"), [], now)  # the same file, back where it was
        assert [r.relpath for r in back] == ["L7/b.wav"]
    finally:
        rt.close()
    assert states(estate) == {"L1/a.wav": State.PRESENT, "L7/b.wav": State.PRESENT}


def test_changed_classification_settings_reclassify_every_file(
    estate: Estate, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="recd.service.indexing")
    estate.write("L1/a.wav", age_days=1)
    estate.write("L2/b.wav", age_days=1)
    assert estate.once()[0] is ExitCode.OK
    source = replace(estate.config.sources[0], rule=ClassifyRule(timezone=UTC, licence="L2"))
    estate.configure(sources=(source,))
    caplog.clear()
    rt = estate.runtime()
    try:
        stats = indexer(estate, rt).run(estate.clock.now())
        rows = {r.relpath: r.classification.licence for r in rt.catalogue.all()}  # type: ignore[attr-defined]
    finally:
        rt.close()
    assert (stats.files, stats.new, stats.changed) == (2, 0, 2)
    assert rows == {"L1/a.wav": "L2", "L2/b.wav": "L2"}
    assert caplog.messages[0] == "scan pbx: classification settings changed; re-classifying"


def test_tags_that_cannot_be_read_leave_the_recording_unclassified(
    estate: Estate, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="recd.service.indexing")
    source = replace(estate.config.sources[0], rule=ClassifyRule(timezone=UTC, tags=True))
    estate.configure(sources=(source,))
    rt = estate.runtime()
    try:
        assert rt.tag_reader is not None
        listed = ListedSource("pbx", [facts("L1/a.wav", 1)], [])  # open_read: FileNotFoundError
        stats = indexer(estate, rt, listed).run(estate.clock.now())
    finally:
        rt.close()
    assert (stats.files, stats.unclassified) == (1, 1)
    assert "tags of pbx/L1/a.wav not read: L1/a.wav" in caplog.messages


def test_a_scan_writes_in_batches_and_reports_progress_after_each(
    estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recd.service import indexing

    monkeypatch.setattr(indexing, "BATCH", 2)
    for i in range(5):  # one directory each: batches are flushed between directories
        estate.write(f"L{i}/a.wav", age_days=1)
    progress: list[int] = []
    rt = estate.runtime()
    try:
        config = estate.config
        source = rt.sources["pbx"]
        with_progress = Indexer(
            config, config.sources[0], source, rt.catalogue, None, progress.append
        )
        assert with_progress.run(estate.clock.now()).new == 5
        for i in range(5):
            estate.write(f"L{i}/b.wav", age_days=1)
        assert indexer(estate, rt).run(estate.clock.now()).new == 5  # no one to tell: fine
    finally:
        rt.close()
    assert progress == [2, 4]
    assert len(states(estate)) == 10


# -- S3-like listings: metadata and the oldest version's time ---------------------------------


Row = tuple[str | None, datetime, dict[str, str]]


def index_s3_like(estate: Estate, source: ListedSource, rule: ClassifyRule) -> dict[str, Row]:
    """Index ``source`` under ``rule`` and return each row's licence, started and provenance."""
    rt = estate.runtime()
    try:
        config = replace(estate.config.sources[0], rule=rule)
        Indexer(estate.config, config, source, rt.catalogue, None).run(estate.clock.now())
        return {
            r.relpath: (r.classification.licence, r.classification.started,
                        {k: str(v) for k, v in r.classification.provenance.items()})
            for r in rt.catalogue.all()  # type: ignore[attr-defined]
        }  # fmt: skip
    finally:
        rt.close()


BORN = datetime(2026, 10, 1, 8, 30, tzinfo=UTC)
NEWEST = datetime(2026, 10, 20, 9, 0, tzinfo=UTC)


def s3_facts(key: str) -> FileFacts:
    """A key whose newest change is NEWEST and whose oldest data version is BORN."""
    return FileFacts(
        "pbx", key, 0, 7, 10, int(NEWEST.timestamp()) * 10**9,
        born_ns=int(BORN.timestamp()) * 10**9,
    )  # fmt: skip


def test_started_falls_back_to_the_oldest_version_not_the_newest_change(estate: Estate) -> None:
    rule = ClassifyRule(timezone=UTC, licence="L1")
    rows = index_s3_like(estate, ListedSource("pbx", [s3_facts("calls/a.wav")], []), rule)
    licence, started, provenance = rows["calls/a.wav"]
    assert (licence, started) == ("L1", BORN)
    assert (provenance["licence"], provenance["started"]) == ("source", "mtime")


def test_metadata_classifies_what_the_key_does_not_tell(estate: Estate) -> None:
    source = ListedSource("pbx", [s3_facts("calls/a.wav"), s3_facts("calls/b.wav")], [])
    source.meta["calls/a.wav"] = {"licence": "L2", "started": "2026-09-30T10:00:00Z"}
    rows = index_s3_like(estate, source, ClassifyRule(timezone=UTC, metadata=True))
    licence, started, provenance = rows["calls/a.wav"]
    assert (licence, started) == ("L2", datetime(2026, 9, 30, 10, tzinfo=UTC))
    assert (provenance["licence"], provenance["started"]) == ("metadata", "metadata")
    assert rows["calls/b.wav"][0] is None  # no metadata: unclassified
    assert sorted(source.metadata_reads) == ["calls/a.wav", "calls/b.wav"]


def test_metadata_is_not_read_when_the_key_gives_licence_and_start(estate: Estate) -> None:
    import re

    rule = ClassifyRule(
        timezone=UTC, metadata=True,
        pattern=re.compile(r"^(?P<licence>[^/]+)/(?P<started>\d{14})\.wav$"),
        started_format="%Y%m%d%H%M%S",
    )  # fmt: skip
    source = ListedSource("pbx", [s3_facts("L1/20261001083000.wav")], [])
    rows = index_s3_like(estate, source, rule)
    assert rows["L1/20261001083000.wav"][0] == "L1"
    assert source.metadata_reads == []  # two requests per key saved


def test_unreadable_metadata_is_logged_and_the_key_still_indexed(
    estate: Estate, caplog: pytest.LogCaptureFixture
) -> None:
    source = ListedSource("pbx", [s3_facts("calls/a.wav")], [])
    source.broken.add("calls/a.wav")
    rows = index_s3_like(estate, source, ClassifyRule(timezone=UTC, metadata=True))
    assert rows["calls/a.wav"][:2] == (None, BORN)
    assert "metadata of pbx/calls/a.wav not read (AccessDenied: Access Denied)" in caplog.text


class CountingTelemetry:
    """Counts ``index_error`` calls per source (the other events are not looked at)."""

    def __init__(self) -> None:
        self.index_errors: dict[str, int] = {}

    def erased(self, reason: str, result: str, size: int, lag: float | None) -> None:
        pass

    def indexed(self, lag: float) -> None:
        pass

    def watch_overflow(self, source: str) -> None:
        pass

    def object_error(self, source: str, code: str) -> None:
        pass

    def index_error(self, source: str) -> None:
        self.index_errors[source] = self.index_errors.get(source, 0) + 1


def test_a_row_the_catalogue_refuses_is_skipped_and_logged_once(
    estate: Estate, caplog: pytest.LogCaptureFixture
) -> None:
    """An inode number SQLite cannot hold (>= 2**63: FUSE, NFS) sinks only its own row: the
    batch is halved until it is alone; it is counted at every scan and logged once."""
    good = [facts(f"L1/{n}.wav", n + 1) for n in range(9)]
    bad = replace(facts("L1/huge-inode.wav", 1), ino=2**64 - 1)
    telemetry = CountingTelemetry()
    errors = IndexErrors(telemetry)
    rt = estate.runtime()
    try:
        source = ListedSource("pbx", [*good[:4], bad, *good[4:]], [])
        for _ in range(2):
            Indexer(
                estate.config, estate.config.sources[0], source, rt.catalogue, None,
                errors=errors,
            ).run(estate.clock.now())  # fmt: skip
    finally:
        rt.close()
    assert states(estate) == {f.relpath: State.PRESENT for f in good}
    assert telemetry.index_errors == {"pbx": 2}
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1
    assert logged[0].startswith("cannot index pbx/L1/huge-inode.wav (OverflowError: ")


class BrokenTags:
    """A tag reader that fails as a parser bug on a hostile file would (not an OSError)."""

    def read(self, fileobj: IO[bytes], name: str) -> dict[str, str]:
        if "hostile" in name:
            raise IndexError("list index out of range")
        return {}


def test_a_file_whose_classification_fails_is_skipped_and_the_others_indexed(
    estate: Estate, caplog: pytest.LogCaptureFixture
) -> None:
    rule = ClassifyRule(timezone=UTC, tags=True)
    estate.configure(sources=(replace(estate.config.sources[0], rule=rule),))
    for name in ("a.wav", "hostile.wav", "b.wav"):
        estate.write(name, age_days=1)
    rt = estate.runtime()
    try:
        idx = Indexer(
            estate.config, estate.config.sources[0], rt.sources["pbx"], rt.catalogue,
            BrokenTags(),
        )  # fmt: skip
        stats = idx.run(estate.clock.now())
        rows = idx.index_files([rt.sources["pbx"].facts("hostile.wav")], [], estate.clock.now())  # type: ignore[list-item]
    finally:
        rt.close()
    assert (stats.files, stats.new, rows) == (3, 2, [])
    assert states(estate) == {"a.wav": State.PRESENT, "b.wav": State.PRESENT}
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert logged == [
        "cannot index pbx/hostile.wav (IndexError: list index out of range); skipped, retention "
        "goes on for the other files and this one is tried again at every scan"
    ]


def changed_then_swept(estate: Estate, change: Callable[[Path], None]) -> SweepReport:
    """Index a due recording, ``change`` it in place (same inode), then sweep without a scan."""
    path = estate.write("L1/old.wav", age_days=31)
    rt = estate.runtime()
    try:
        scan_all(rt)
        change(path)
        return Sweeper(
            estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers,
            reindex=functools.partial(reindex, rt),
        ).run()  # fmt: skip
    finally:
        rt.close()


def test_a_file_rewritten_in_place_since_indexing_is_reindexed_not_erased(
    estate: Estate,
) -> None:
    """Same inode and size, a newer mtime: the file indexed is not there any more; the one
    there gets its own deadline (from its own mtime) and is not erased as the old one."""

    def rewrite(path: Path) -> None:
        ino = path.stat().st_ino
        path.write_bytes(b"\x02" * 4096)
        yesterday = (estate.clock.now() - timedelta(days=1)).timestamp()
        os.utime(path, (yesterday, yesterday))
        assert path.stat().st_ino == ino

    report = changed_then_swept(estate, rewrite)
    assert (report.erased, report.licences["L1"].kept) == (0, Counter({report_reason(estate): 1}))
    skipped = estate.audit()[-1]
    assert (skipped["action"], skipped["subject"]) == ("erase.skipped", rid("L1/old.wav"))
    assert skipped["details"]["skipped"].startswith("changed since it was indexed (mtime ")
    row = catalogued(estate, "L1/old.wav")
    assert row.deadline == estate.clock.now() + timedelta(days=29)
    assert (row.skip_reason, row.state) == (None, State.PRESENT)
    assert (estate.root / "L1" / "old.wav").exists()


def test_a_file_whose_ctime_changed_since_indexing_is_not_erased(estate: Estate) -> None:
    """Same inode, size and mtime (what ``cp -p`` onto a reused inode leaves): the change
    time still tells; the file is re-indexed (due again by its own old mtime, so the next sweep
    erases it under its own deadline)."""
    report = changed_then_swept(estate, lambda path: path.chmod(0o600))
    assert report.erased == 0
    skipped = estate.audit()[-1]["details"]["skipped"]
    assert skipped.startswith("changed since it was indexed (ctime ")
    assert skipped.endswith("): written to, or another file that reused its inode number")
    row = catalogued(estate, "L1/old.wav")
    assert row.ctime_ns == (estate.root / "L1" / "old.wav").stat().st_ctime_ns
    assert estate.sweep().erased == 1  # its own deadline, from its own mtime


def report_reason(estate: Estate) -> str:
    return str(estate.audit()[-1]["details"]["skipped"])


def catalogued(estate: Estate, relpath: str) -> Recording:
    cat = SqliteCatalogue(estate.config.daemon.state_dir / "catalog.db")
    try:
        row = cat.get(rid(relpath))
    finally:
        cat.close()
    assert row is not None
    return row


def test_a_failed_directory_flush_fails_every_erase_of_the_batch(
    estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files were overwritten and unlinked, but their directory entries may come back
    after a power cut: no erase of the batch is claimed done, each is audited as failed with
    the reason. (A kernel does not fail an fsync on demand: the eraser's flush is made to.)"""
    paths = [estate.write(f"L1/{n}.wav", age_days=31) for n in ("a", "b")]
    rt = estate.runtime()
    try:
        scan_all(rt)
        eraser = rt.erasers["pbx"]
        flush = eraser.sync

        def flush_fails() -> None:
            flush()
            raise OSError(errno.EIO, os.strerror(errno.EIO))

        monkeypatch.setattr(eraser, "sync", flush_fails)
        report = Sweeper(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers).run()
    finally:
        rt.close()
    assert (report.erased, report.failed) == (0, 2)
    assert not any(p.exists() for p in paths)
    assert [a for a, _ in estate.actions()] == ["erase.intent"] * 2 + ["erase.failed"] * 2
    for entry in estate.audit()[-2:]:
        assert entry["details"]["error"] == "directory flush failed: Input/output error"
        assert "effective" not in entry["details"]
    assert states(estate) == {"L1/a.wav": State.PRESENT, "L1/b.wav": State.PRESENT}
