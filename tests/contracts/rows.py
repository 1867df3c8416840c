"""Records the catalogue contract suites store and compare: recordings, requests, held rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from recd.core.model import Classification, Provenance, Recording, State, recording_id
from recd.core.requestinfo import RequestInfo, Step
from recd.core.requeststate import RequestState
from recd.ports.records import StoredRequest

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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
        mtime_ns=ns(started),
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
    registered = Step("alice", 1000, "2026-11-01T09:00:00.000000Z", 3)
    info = RequestInfo(
        "two-person", registered, approved=Step("bob", 1001, "2026-11-01T09:01:00.000000Z", 4)
    )
    return StoredRequest(rid, "L1", state, document, "ab" * 32, info, T0)


class Lookup(Protocol):
    """Every writer role looks recordings up by id."""

    def get(self, recording_id: str) -> Recording | None: ...


def ns(moment: datetime) -> int:
    """Nanoseconds since the epoch of a (microsecond) time, as file facts give them."""
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000


def stored(catalogue: Lookup, relpath: str, source: str = "pbx") -> Recording:
    """The catalogue's recording of ``source``/``relpath``, which must be there."""
    found = catalogue.get(recording_id(source, relpath))
    assert found is not None, relpath
    return found


def held_row(catalogue: Lookup, relpath: str) -> tuple[bool, datetime | None, datetime | None]:
    """Whether the recording is held, its not-before and its deadline."""
    r = stored(catalogue, relpath)
    return r.held, r.not_before, r.deadline
