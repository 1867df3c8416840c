"""recd.service.indexing: a scan classifies new and changed files, reconciles what vanished (a tree,
a subtree, an unreadable directory), writes in batches, and skips a file it cannot classify or store
without stopping."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recd.adapters.local.directory import DirScanReport
from recd.adapters.sqlite.reader import SqliteReader
from recd.core.classify import ClassifyRule
from recd.core.model import FileFacts, State
from recd.daemon.runtime import Runtime
from recd.errors import ExitCode
from recd.ports.records import Known
from recd.ports.source import ScanTotals, Source
from recd.service.indexing import Indexer, IndexErrors, IndexStats
from tests.estate import Estate
from tests.service.helpers import states


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


class FailingSource(ListedSource):
    """A walk that fails (an OSError) after its first files."""

    def scan(self, under: str = "") -> Iterator[FileFacts]:
        yield from super().scan(under)
        raise OSError(5, "Input/output error")


def test_a_first_index_is_a_bulk_load_whose_indexes_are_built_even_if_it_fails(
    estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty catalogue is loaded without its secondary indexes and without reading each
    directory back; they are built when the scan ends, however it ends. Later scans are not
    bulk loads."""
    from recd.adapters.sqlite.schema import SECONDARY_INDEXES
    from recd.service import indexing

    monkeypatch.setattr(indexing, "BATCH", 1)
    rt = estate.runtime()
    try:
        catalogue = rt.catalogue
        source = FailingSource("pbx", [facts("L1/a/x.wav", 1), facts("L1/b/y.wav", 2)], [])
        asked: list[str] = []
        in_dir = catalogue.in_dir

        def asking(source_name: str, directory: str) -> dict[str, Known]:
            asked.append(directory)
            return in_dir(source_name, directory)

        monkeypatch.setattr(catalogue, "in_dir", asking)
        idx = indexer(estate, rt, source)
        with pytest.raises(OSError, match="Input/output"):
            idx.run(estate.clock.now())
        assert asked == []
        db = sqlite3.connect(estate.config.daemon.state_dir / "catalog.db")
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        db.close()
        assert set(SECONDARY_INDEXES) <= names
        assert states(estate) == {"L1/a/x.wav": State.PRESENT}  # the batches committed
        again = [facts("L1/a/x.wav", 1), facts("L1/b/y.wav", 2)]
        stats = indexer(estate, rt, ListedSource("pbx", again, [])).run(estate.clock.now())
        assert asked == ["L1/a", "L1/b"]
        assert (stats.new, stats.changed, stats.missing) == (1, 0, 0)
    finally:
        rt.close()


@given(ns=st.integers(min_value=-(10**19), max_value=253_402_300_799 * 10**9))
def test_mtime_of_is_fromtimestamp_to_the_microsecond_below(ns: int) -> None:
    """``mtime_of`` adds a timedelta to the epoch; it is what ``fromtimestamp`` of the whole
    seconds with the microseconds below gives (no float on the way)."""
    from recd.service.indexing import mtime_of

    seconds, rest = divmod(ns, 1_000_000_000)
    try:
        want: datetime | None = datetime.fromtimestamp(seconds, UTC).replace(
            microsecond=rest // 1000
        )
    except (OverflowError, OSError, ValueError):
        want = None
    try:
        got: datetime | None = mtime_of(FileFacts("pbx", "a.wav", 1, 1, 0, ns))
    except (OverflowError, OSError, ValueError):
        got = None
    assert got == want
