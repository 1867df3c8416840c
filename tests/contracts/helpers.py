"""Shared by the catalogue and reader contract suites and the SQLite corruption tests: ``rec``, a
catalogue row as the indexer writes it (a classified recording, present, with a deadline 30 days
after it started), built field by field so that a test states only what it is about.

``T0`` is the fixed time every such row starts at unless a test says otherwise. Nothing here
depends on an implementation: a second catalogue's suite uses the same rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from recd.core.model import Classification, Provenance, Recording, State, recording_id

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def rec(
    relpath: str,
    *,
    licence: str | None = "L1",
    started: datetime = T0,
    deadline: datetime | None = T0 + timedelta(days=30),
    ino: int = 1,
    source: str = "pbx",
) -> Recording:
    """A present, classified row for ``relpath``; its mtime is its start."""
    return Recording(
        id=recording_id(source, relpath),
        source=source,
        relpath=relpath,
        dev=7,
        ino=ino,
        size=100,
        mtime_ns=(started - EPOCH) // timedelta(microseconds=1) * 1000,
        classification=Classification(
            licence=licence,
            started=started,
            call_id="42",
            duration=1.5,
            provenance={"licence": Provenance.PATTERN, "started": Provenance.MTIME},
        ),
        deadline=deadline,
        state=State.PRESENT,
        first_seen=T0,
    )
