"""Index one source: scan it, classify new and changed files, reconcile what vanished.

Unchanged files (same device, inode, size and times as catalogued) are not re-classified or
re-read, so a rescan of a large tree costs a stat per file. Work is streamed in batches, so
memory stays flat whatever the tree's size.

No single file stops a scan: one that cannot be classified or stored (any exception) is
counted, logged once while it keeps failing the same way, skipped, and tried again at the next
scan. A batch the catalogue refuses is split in halves until the rows at fault are alone.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from recd.config.load import Config, SourceConfig
from recd.core import classify
from recd.core.fastclass import Classified, Found, PathClassifier
from recd.core.model import FileFacts, Recording, State, recording_id
from recd.errors import os_reason
from recd.ports.clock import NO_TELEMETRY, Telemetry
from recd.ports.records import Known
from recd.ports.scanning import IndexingCatalogue
from recd.ports.source import DirStamp, DirWalk, Source, TagReader
from recd.service.policies import deadline, policy_key

logger = logging.getLogger(__name__)

BATCH = 5000  # rows per catalogue transaction (one fsync each)
#: How long a directory's stamp is trusted after the full listing that made it. A file changed
#: in place (``touch -d``, a restore over it) leaves its directory's mtime and ctime alone: a
#: rescan sees it at the latest this long after, or the erase's own checks see it first.
STAMP_TRUST = timedelta(hours=24)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Row = TypeVar("Row", Recording, Found)


@dataclass(slots=True)
class IndexStats:
    source: str
    files: int = 0
    new: int = 0
    changed: int = 0
    missing: int = 0
    unclassified: int = 0
    bytes: int = 0  # of every file seen (S3: every data version)
    seconds: float = 0.0  # how long the scan took (monotonic)
    licences: set[str | None] = field(default_factory=set)


def dir_of(relpath: str) -> str:
    return relpath.rpartition("/")[0]


def _by_dir(files: Iterable[FileFacts]) -> Iterator[tuple[str, list[FileFacts]]]:
    """Consecutive files of the same directory, grouped."""
    for directory, group in itertools.groupby(files, key=lambda f: dir_of(f.relpath)):
        yield directory, list(group)


def rule_key(rule: classify.ClassifyRule) -> str:
    """A fingerprint of a source's classification settings."""
    parts = (
        rule.licence,
        None if rule.pattern is None else rule.pattern.pattern,
        rule.started_format,
        str(rule.timezone),
        rule.tags,
        sorted((k, tuple(v)) for k, v in rule.tag_names.items()),
        rule.metadata,
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def mtime_of(facts: FileFacts) -> datetime:
    """When the file was last written (S3: when the key's oldest data version was: the last
    resort for ``started``)."""
    ns = facts.mtime_ns if facts.born_ns is None else facts.born_ns
    return _EPOCH + timedelta(microseconds=ns // 1000)  # = fromtimestamp, without a float


def _below(directory: str, roots: Sequence[str]) -> bool:
    return any(directory == r or directory.startswith(r + "/") for r in roots)


def unchanged(old: Known | Recording, facts: FileFacts) -> bool:
    """Whether ``facts`` are of the file ``old`` was indexed from: same device, inode, size,
    mtime, and ctime and birth time where both are known (an inode number can be reused at
    once by a new file of the same size with an old mtime: ``mv``, ``cp -p``)."""
    same_file = (old.dev, old.ino, old.size, old.mtime_ns)
    if same_file != (facts.dev, facts.ino, facts.size, facts.mtime_ns):
        return False
    for was, now in ((old.ctime_ns, facts.ctime_ns), (old.btime_ns, facts.btime_ns)):
        if was is not None and now is not None and was != now:
            return False
    return True


class IndexErrors:
    """Files that could not be indexed: each failure is counted; each file is logged once
    while it keeps failing for the same reason (not at every rescan). Keep one per process."""

    LIMIT = 100_000  # files remembered; past it the oldest is forgotten (and logged again)

    def __init__(self, telemetry: Telemetry = NO_TELEMETRY) -> None:
        self.telemetry = telemetry
        self._logged: dict[tuple[str, str], str] = {}

    def failed(self, source: str, relpath: str, exc: BaseException) -> None:
        self.telemetry.index_error(source)
        why = f"{type(exc).__name__}: {exc}"
        key = (source, relpath)
        if self._logged.get(key) == why:
            logger.debug("still cannot index %s/%s: %s", source, relpath, why)
            return
        if len(self._logged) >= self.LIMIT:
            del self._logged[next(iter(self._logged))]
        self._logged[key] = why
        logger.error(
            "cannot index %s/%s (%s); skipped, retention goes on for the other files and "
            "this one is tried again at every scan",
            source,
            relpath,
            why,
            exc_info=not isinstance(exc, (OSError, ValueError)),
        )

    def indexed(self, rows: Sequence[Recording] | Sequence[Found]) -> None:
        """Rows stored: a file among them that failed before is logged again if it fails."""
        if not self._logged:
            return
        for r in rows:
            if self._logged.pop((r.source, r.relpath), None) is not None:
                logger.info("%s/%s indexed now", r.source, r.relpath)


class Indexer:
    """Classifies files of one source into catalogue rows and reconciles what vanished.

    Reconciliation is per directory: the catalogue's rows for a directory are read once when
    the walk reaches it; unchanged files cost no write at all; rows of files no longer there
    become missing, and so do those of directories the walk no longer finds (except below
    directories it could not read).
    """

    def __init__(
        self,
        config: Config,
        source_config: SourceConfig,
        source: Source,
        catalogue: IndexingCatalogue,
        tag_reader: TagReader | None,
        progress: Callable[[int], None] | None = None,
        errors: IndexErrors | None = None,
    ) -> None:
        self.config = config
        self.errors = IndexErrors() if errors is None else errors
        self.progress = progress  # told the files seen so far, every batch
        self.rule = source_config.rule
        self.source = source
        self.catalogue = catalogue
        self.tag_reader = tag_reader
        self._pending: list[Recording] = []
        # A first index classifies by the path alone where it can (no datetime per file).
        self._fast = PathClassifier.for_rule(self.rule, config.period_for)
        self._found: list[Found] = []
        # Marked at the end of the scan: a source may list a directory in pieces (S3 does).
        self._missing: set[str] = set()
        self._now = datetime.min.replace(tzinfo=UTC)
        # A full scan of a DirWalk: stamps of the directories it listed, those it trusted,
        # and directories with a file that could not be indexed (never stamped: tried again).
        self._stamps: dict[str, DirStamp] = {}
        self._kept: set[str] = set()
        self._failed_dirs: set[str] = set()
        self._bulk = False  # a first index into an empty catalogue (``begin_bulk``)

    def run(self, now: datetime, under: str = "") -> IndexStats:
        """A full scan and reconciliation of the source, or of the subtree ``under`` only
        (a directory the watcher saw appear or vanish)."""
        name = self.source.name
        self._now = now
        stats = IndexStats(name)
        reclassify = False
        if not under:
            reclassify = self.catalogue.begin_scan(name, now, rule_key(self.rule))
            if reclassify:
                logger.info("scan %s: classification settings changed; re-classifying", name)
        visited: set[str] = set()
        self._stamps, self._kept, self._failed_dirs = {}, set(), set()
        walk = self.source if not under and isinstance(self.source, DirWalk) else None
        # A first index: nothing is catalogued, so no directory needs reading back.
        self._bulk = not under and self.catalogue.begin_bulk()
        try:
            if walk is not None:
                self._walk_dirs(walk, now, stats, reclassify, visited)
            else:
                for directory, files in _by_dir(self.source.scan(under)):
                    first_visit = directory not in visited
                    visited.add(directory)
                    self._index_dir(directory, files, now, stats, reclassify, first_visit)
                    self._batched(stats)
            self._flush()
        finally:
            if self._bulk:
                self._bulk = False
                self.catalogue.end_bulk()
        if self._missing:
            self.catalogue.mark_missing(sorted(self._missing))
            stats.missing += len(self._missing)
            self._missing.clear()
        unreadable = self.source.report.unreadable_dirs
        gone = [
            d
            for d in self.catalogue.dirs(name, under)
            if d not in visited and not _below(d, unreadable) and (not under or _below(d, [under]))
        ]
        stats.missing += self.catalogue.mark_dirs_missing(name, gone)
        if walk is not None:  # after the rows and what went missing: a stamp vouches for them
            stamps = {d: st for d, st in self._stamps.items() if d not in self._failed_dirs}
            self.catalogue.replace_dir_stamps(name, stamps, self._kept, now)
            self._stamps, self._kept = {}, set()
        if not under:
            self.catalogue.finish_scan(name, now)
        stored = self.catalogue.policies()
        for licence in stats.licences - set(stored):
            self.catalogue.record_policy(licence, policy_key(self.config.period_for(licence)))
        logger.log(
            logging.DEBUG if under else logging.INFO,
            "scan %s%s: %d files, %d new, %d changed, %d missing, %d unclassified",
            stats.source,
            f" ({under})" if under else "",
            stats.files,
            stats.new,
            stats.changed,
            stats.missing,
            stats.unclassified,
        )
        return stats

    def _walk_dirs(
        self,
        walk: DirWalk,
        now: datetime,
        stats: IndexStats,
        reclassify: bool,
        visited: set[str],
    ) -> None:
        """A full scan a directory at a time: one unchanged since its stamp (``DirWalk``) is
        not listed, and its catalogued rows count as seen (none becomes missing)."""
        name = self.source.name

        def known(directory: str) -> DirStamp | None:
            if reclassify:
                return None
            return self.catalogue.dir_stamp(name, directory, since=now - STAMP_TRUST)

        for listing in walk.scan_dirs("", known):
            visited.add(listing.relpath)
            if listing.files is None:
                self._kept.add(listing.relpath)
                if listing.stamp is not None:
                    stats.files += listing.stamp.files
                    stats.bytes += listing.stamp.bytes
                continue
            self._index_dir(listing.relpath, listing.files, now, stats, reclassify, True)
            if listing.stamp is not None:
                self._stamps[listing.relpath] = listing.stamp
            self._batched(stats)

    def _batched(self, stats: IndexStats) -> None:
        if len(self._pending) + len(self._found) >= BATCH:
            self._flush()
            if self.progress is not None:
                self.progress(stats.files)

    def index_files(
        self, files: Sequence[FileFacts], gone: Sequence[str], now: datetime
    ) -> list[Recording]:
        """Index files the watcher saw closed or moved in; ``gone`` relpaths become missing.

        Returns the rows written (unchanged files are skipped, as in a scan).
        """
        name = self.source.name
        self._now = now
        rows: list[Recording] = []
        for facts in files:
            rid = recording_id(name, facts.relpath)
            old = self.catalogue.get(rid)
            if old is not None and old.state is State.PRESENT and unchanged(old, facts):
                continue
            row = self._classify(rid, facts, now)
            if row is not None:
                rows.append(row)
        rows = self._store(rows, now)
        if rows:
            stored = self.catalogue.policies()
            for licence in {r.classification.licence for r in rows} - set(stored):
                self.catalogue.record_policy(licence, policy_key(self.config.period_for(licence)))
        if gone:
            self.catalogue.mark_missing([recording_id(name, relpath) for relpath in gone])
        return rows

    def reindex(self, relpath: str, now: datetime) -> Recording | None:
        """Index the file at ``relpath`` again whatever the catalogue holds (an erase found
        it changed: perhaps a new file that reused the inode number, which gets its own
        classification and deadline). Returns the row stored; None when no file is there (its
        row becomes missing) or it could not be indexed (reported). Raises ``OSError``."""
        name = self.source.name
        rid = recording_id(name, relpath)
        facts = self.source.facts(relpath)
        if facts is None:
            self.catalogue.mark_missing([rid])
            return None
        row = self._classify(rid, facts, now)
        stored = self._store([] if row is None else [row], now)
        if not stored:
            return None
        licence = stored[0].classification.licence
        if licence not in self.catalogue.policies():
            self.catalogue.record_policy(licence, policy_key(self.config.period_for(licence)))
        logger.info(
            "re-indexed %s/%s: %s",
            name,
            relpath,
            "no deadline"
            if stored[0].deadline is None
            else f"deadline {stored[0].deadline:%Y-%m-%d %H:%M:%S} UTC",
        )
        return stored[0]

    def _flush(self) -> None:
        if self._pending:
            self._store(self._pending, self._now)
            self._pending = []
        if self._found:
            now = self._now
            self._halving(self._found, lambda rows: self.catalogue.insert_new(rows, now))
            self._found = []

    def _store(self, rows: list[Recording], now: datetime) -> list[Recording]:
        """Upsert ``rows`` (``_halving``). Returns the rows stored."""
        return self._halving(rows, lambda batch: self.catalogue.upsert(batch, now))

    def _halving(self, rows: list[Row], write: Callable[[list[Row]], None]) -> list[Row]:
        """``write`` ``rows``; a batch the catalogue refuses is halved until each row at fault
        is alone, which is reported and skipped. Returns the rows stored."""
        if not rows:
            return rows
        try:
            write(rows)
        except Exception as exc:
            if len(rows) == 1:
                self._failed_dirs.add(dir_of(rows[0].relpath))
                self.errors.failed(rows[0].source, rows[0].relpath, exc)
                return []
            half = len(rows) // 2
            return self._halving(rows[:half], write) + self._halving(rows[half:], write)
        self.errors.indexed(rows)
        return rows

    def _classify(self, rid: str, facts: FileFacts, now: datetime) -> Recording | None:
        """``recording``, or None (reported) when anything about the file fails."""
        try:
            row = self.recording(rid, facts, now)
        except Exception as exc:  # one file never stops a scan
            self._failed_dirs.add(dir_of(facts.relpath))
            self.errors.failed(facts.source, facts.relpath, exc)
            return None
        return row

    def _index_dir(
        self,
        directory: str,
        files: Sequence[FileFacts],
        now: datetime,
        stats: IndexStats,
        reclassify: bool,
        first_visit: bool,
    ) -> None:
        known = {} if self._bulk else self.catalogue.in_dir(self.source.name, directory)
        fast = self._fast if self._bulk and not reclassify else None
        for facts in files:
            rid = recording_id(facts.source, facts.relpath)
            self._missing.discard(rid)
            stats.bytes += facts.size
            if fast is not None and (c := _fast_classified(fast, facts)) is not None:
                stats.new += 1  # a bulk load: nothing is known
                stats.licences.add(c.licence)
                stats.unclassified += c.licence is None
                self._found.append(Found(rid, facts, c))
                continue
            old = known.pop(rid, None)
            if (
                not reclassify
                and old is not None
                and old.state is State.PRESENT
                and unchanged(old, facts)
            ):
                continue
            row = self._classify(rid, facts, now)
            if row is None:  # reported; an old row stays as it was (not missing)
                continue
            if old is None:
                stats.new += 1
            else:
                stats.changed += 1
            licence = row.classification.licence
            stats.licences.add(licence)
            stats.unclassified += licence is None
            self._pending.append(row)
        stats.files += len(files)
        if first_visit:  # later pieces of the directory take theirs back off the list
            self._missing.update(rid for rid, k in known.items() if k.state is State.PRESENT)

    def recording(self, rid: str, facts: FileFacts, now: datetime) -> Recording:
        """Classify one file into a catalogue row (reading tags only when they can help)."""
        fields = classify.path_fields(self.rule, facts.relpath)
        tags = metadata = None
        if self.tag_reader is not None and classify.needs_tags(self.rule, fields):
            tags = self._read_tags(facts)
        if classify.needs_metadata(self.rule, fields):
            metadata = self._read_metadata(facts)
        c = classify.classify(
            self.rule,
            facts.relpath,
            fields=fields,
            tags=tags,
            metadata=metadata,
            mtime=mtime_of(facts),
        )
        return Recording(
            id=rid,
            source=facts.source,
            relpath=facts.relpath,
            dev=facts.dev,
            ino=facts.ino,
            size=facts.size,
            mtime_ns=facts.mtime_ns,
            classification=c,
            deadline=deadline(c.started, self.config.period_for(c.licence)),
            state=State.PRESENT,
            first_seen=now,
            ctime_ns=facts.ctime_ns,
            btime_ns=facts.btime_ns,
        )

    def _read_metadata(self, facts: FileFacts) -> dict[str, str] | None:
        try:
            return dict(self.source.metadata(facts.relpath))
        except OSError as exc:
            logger.warning(
                "metadata of %s/%s not read (%s); classified without it until the key changes",
                facts.source,
                facts.relpath,
                os_reason(exc),
            )
            return None

    def _read_tags(self, facts: FileFacts) -> dict[str, str] | None:
        assert self.tag_reader is not None
        try:
            with self.source.open_read(facts.relpath, facts.dev, facts.ino) as fileobj:
                return dict(self.tag_reader.read(fileobj, facts.relpath))
        except OSError as exc:
            logger.debug("tags of %s/%s not read: %s", facts.source, facts.relpath, exc)
            return None


def _fast_classified(fast: PathClassifier, facts: FileFacts) -> Classified | None:
    """``fast``'s classification of ``facts``, or None: the general path decides (and
    reports what fails)."""
    try:
        return fast.classify(
            facts.relpath, facts.mtime_ns if facts.born_ns is None else facts.born_ns
        )
    except Exception:
        return None
