"""Index one source: scan it, classify new and changed files, reconcile what vanished.

Unchanged files (same device, inode, size and mtime as catalogued) are not re-classified or
re-read, so a rescan of a large tree costs a stat per file. Work is streamed in batches, so
memory stays flat whatever the tree's size.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from recd.config import Config, SourceConfig
from recd.core import classify
from recd.core.model import FileFacts, Recording, State, recording_id
from recd.ports import Catalogue, Source, TagReader
from recd.service.policies import deadline, policy_key

logger = logging.getLogger(__name__)

BATCH = 1000


@dataclass(slots=True)
class IndexStats:
    source: str
    files: int = 0
    new: int = 0
    changed: int = 0
    missing: int = 0
    unclassified: int = 0
    licences: set[str | None] = field(default_factory=set)


def _batched(items: Iterable[FileFacts], size: int) -> Iterator[list[FileFacts]]:
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


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
    seconds, ns = divmod(facts.mtime_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=ns // 1000)


class Indexer:
    """Classifies files of one source into catalogue rows."""

    def __init__(
        self,
        config: Config,
        source_config: SourceConfig,
        source: Source,
        catalogue: Catalogue,
        tag_reader: TagReader | None,
    ) -> None:
        self.config = config
        self.rule = source_config.rule
        self.source = source
        self.catalogue = catalogue
        self.tag_reader = tag_reader

    def run(self, now: datetime) -> IndexStats:
        """One full scan and reconciliation of the source."""
        stats = IndexStats(self.source.name)
        gen, rule_changed = self.catalogue.begin_scan(self.source.name, now, rule_key(self.rule))
        if rule_changed:
            logger.info("scan %s: classification settings changed; re-classifying", stats.source)
        for batch in _batched(self.source.scan(), BATCH):
            self._index_batch(batch, gen, now, stats, reclassify=rule_changed)
        unreadable = self.source.report.unreadable_dirs
        stats.missing = self.catalogue.finish_scan(self.source.name, gen, now, unreadable)
        stored = self.catalogue.policies()
        for licence in stats.licences - set(stored):
            self.catalogue.record_policy(licence, policy_key(self.config.period_for(licence)))
        logger.info(
            "scan %s: %d files, %d new, %d changed, %d missing, %d unclassified",
            stats.source, stats.files, stats.new, stats.changed, stats.missing,
            stats.unclassified,
        )  # fmt: skip
        return stats

    def _index_batch(
        self,
        batch: Sequence[FileFacts],
        gen: int,
        now: datetime,
        stats: IndexStats,
        *,
        reclassify: bool,
    ) -> None:
        ids = [recording_id(f.source, f.relpath) for f in batch]
        known = self.catalogue.lookup(ids)
        unchanged: list[str] = []
        rows: list[Recording] = []
        for facts, rid in zip(batch, ids, strict=True):
            old = known.get(rid)
            if (
                old is not None
                and old.state is State.PRESENT
                and (old.dev, old.ino, old.size, old.mtime_ns)
                == (facts.dev, facts.ino, facts.size, facts.mtime_ns)
            ):
                unchanged.append(rid)
                continue
            if old is None:
                stats.new += 1
            else:
                stats.changed += 1
            rows.append(self.recording(rid, facts, now))
        for row in rows:
            licence = row.classification.licence
            stats.licences.add(licence)
            stats.unclassified += licence is None
        stats.files += len(batch)
        self.catalogue.upsert(rows, gen, now)
        self.catalogue.touch(unchanged, gen)

    def recording(self, rid: str, facts: FileFacts, now: datetime) -> Recording:
        """Classify one file into a catalogue row (reading tags only when they can help)."""
        fields = classify.path_fields(self.rule, facts.relpath)
        tags = None
        if self.tag_reader is not None and classify.needs_tags(self.rule, fields):
            tags = self._read_tags(facts)
        c = classify.classify(
            self.rule, facts.relpath, fields=fields, tags=tags, metadata=None, mtime=mtime_of(facts)
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
        )

    def _read_tags(self, facts: FileFacts) -> dict[str, str] | None:
        assert self.tag_reader is not None
        try:
            with self.source.open_read(facts.relpath, facts.dev, facts.ino) as fileobj:
                return dict(self.tag_reader.read(fileobj, facts.relpath))
        except OSError as exc:
            logger.debug("tags of %s/%s not read: %s", facts.source, facts.relpath, exc)
            return None
