"""Requests and breakers back in a catalogue from the audit log (SPEC section 8).

``restore_requests`` replays the log's ``request.*``, ``erase.*`` and ``breaker.*`` entries
(``recd.core.replayrequests``) onto what the catalogue already holds (nothing, after a loss)
and stores the result in one transaction each: every request with its state, document, digest,
approvals, runs and items; every breaker still tripped or released. A certificate the log names
is looked for where recd wrote it: found with the audited SHA-256, the request points to it;
lost or changed, that is reported (the log keeps its hash) and the next run writes a new one.
Replaying twice changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from recd.core.audit import AuditEntry
from recd.core.replaybreakers import BreakerRecord, ReplayedBreakers
from recd.core.replayrequests import ReplayedRequests, RequestRecord, replay_decisions
from recd.core.requeststate import RequestItem, RequestState
from recd.errors import os_reason
from recd.ports.marks import RebuildCatalogue
from recd.ports.records import Breaker, StoredRequest


@dataclass(frozen=True, slots=True)
class RestoredRequests:
    requests: ReplayedRequests
    breakers: ReplayedBreakers
    certificates: int  # found intact where the log says they were written
    problems: tuple[str, ...]  # the replays' and each certificate lost or changed

    def details(self) -> dict[str, int]:
        """The counts ``catalogue.rebuilt`` records."""
        states = {f"requests_{s}": self.requests.count(s) for s in RequestState}
        return {
            "requests": len(self.requests.requests),
            **{k: v for k, v in states.items() if v},
            "certificates": self.certificates,
            "breakers": len(self.breakers.standing),
            "breakers_tripped": self.breakers.tripped,
        }


def restore_requests(
    catalogue: RebuildCatalogue, entries: Iterable[AuditEntry]
) -> RestoredRequests:
    """Replay ``entries`` (the log's, in order, from where the catalogue stops reflecting it;
    read once) onto the catalogue's requests and breakers and store the result."""
    known = {r.id: record_of(r, catalogue.items(r.id)) for r in catalogue.requests()}
    had = {label: breaker_record(b) for label, b in catalogue.breakers().items()}
    replayed, tripped = replay_decisions(entries, known, had)
    changed = [r for r in replayed.requests.values() if known.get(r.id) != r]
    catalogue.restore_requests([(stored_of(r), items_of(r)) for r in changed])
    standing = tripped.standing
    catalogue.restore_breakers(
        [breaker_of(b) for b in standing.values()],
        rearmed=[label for label in had if label not in standing],
    )
    found, lost = check_certificates(replayed.requests.values())
    problems = (*replayed.problems, *tripped.problems, *lost)
    return RestoredRequests(replayed, tripped, found, problems)


def check_certificates(requests: Iterable[RequestRecord]) -> tuple[int, list[str]]:
    """How many certificates the log names are where recd wrote them with the audited SHA-256,
    and a problem for each that is not."""
    found, problems = 0, []
    for record in requests:
        cert = record.info.certificate
        if cert is None:
            continue
        path, sha256, seq = Path(cert.path), cert.sha256, cert.seq
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            problems.append(
                f"request {record.id}: certificate {path} is lost ({os_reason(exc)}); the audit "
                f"log keeps its SHA-256 {sha256} (entry #{seq}); a new run writes a new one"
            )
            continue
        if digest != sha256:
            problems.append(
                f"request {record.id}: certificate {path} does not match the SHA-256 {sha256} "
                f"audited in entry #{seq}: it was altered after recd wrote it"
            )
            continue
        found += 1
    return found, problems


# -- between the replay's records and the catalogue's -----------------------------------------


def record_of(stored: StoredRequest, items: Sequence[RequestItem]) -> RequestRecord:
    return RequestRecord(
        stored.id,
        stored.licence,
        stored.state,
        stored.document,
        stored.digest,
        stored.info,
        stored.updated,
        {i.recording_id: i for i in items},
    )


def stored_of(record: RequestRecord) -> StoredRequest:
    return StoredRequest(
        record.id,
        record.licence,
        record.state,
        dict(record.document),
        record.digest,
        record.info,
        record.updated,
    )


def items_of(record: RequestRecord) -> list[RequestItem]:
    """The items in the order a run stores them (by location, then id)."""
    return sorted(record.items.values(), key=lambda i: (i.location or "", i.recording_id))


def breaker_record(b: Breaker) -> BreakerRecord:
    return BreakerRecord(b.licence, b.tripped_at, b.due, b.total, b.released_at, b.released_by)


def breaker_of(b: BreakerRecord) -> Breaker:
    return Breaker(b.licence, b.tripped_at, b.due, b.total, b.released_at, b.released_by)
