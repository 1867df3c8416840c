"""Records the catalogue contract suites store and compare: recordings, requests, held rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from recd.adapters.sqlite.catalogue import to_us
from recd.core.model import Classification, Provenance, Recording, State, recording_id
from recd.ports.catalogue import Catalogue
from recd.ports.records import RequestState, StoredRequest

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
BAD = "bad\udcff\nname\x1b[31m.wav"
BAD_DIR = "d\udce9"  # "é" in Latin-1: the byte 0xe9 on its own


def rec(
    relpath: str,
    *,
    licence: str | None = "L1",
    started: datetime = T0,
    deadline: datetime | None = T0 + timedelta(days=30),
    ino: int = 1,
    source: str = "pbx",
) -> Recording:
    return Recording(
        id=recording_id(source, relpath),
        source=source,
        relpath=relpath,
        dev=7,
        ino=ino,
        size=100,
        mtime_ns=to_us(started) * 1000,
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


def stored_request(rid: str, state: RequestState = RequestState.VERIFIED) -> StoredRequest:
    document = {"request_id": rid, "licence": "L1", "scope": {"all": True}}
    info = {"registered_by": "alice", "registered_seq": 3, "approved_by": "bob"}
    return StoredRequest(rid, "L1", state, document, "ab" * 32, info, T0)


def held_rows(catalogue: Catalogue) -> dict[str, tuple[bool, datetime | None, datetime | None]]:
    return {r.relpath: (r.held, r.not_before, r.deadline) for r in catalogue.all()}  # type: ignore[attr-defined]
