"""The read answers about recordings and the daemon: ``status``, ``ls``, ``show``, ``policy`` and
``breaker ls``, as the JSON results ``recd.protocol`` documents.

Each answer is a function of what it reads (a read-only ``CatalogueReader``, the ``Config``, the
``DaemonState`` the loop published, the time) and writes nothing, so it runs on a connection's
thread while the loop is busy. Times in results are ISO 8601 UTC with a ``Z`` (``iso``); a
recording's location is said as the source shows it (a path, or an ``s3://`` URL).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

from recd import __version__
from recd.config.load import Config
from recd.config.types import SourceType
from recd.core.model import FIELDS, Recording, UnclassifiedPolicy
from recd.core.safety import ClockPause
from recd.core.times import format_iso
from recd.daemon.collector import S3Totals
from recd.daemon.watching import WatchMode
from recd.errors import NotFound, UsageError
from recd.ports.reader import CatalogueReader, ListQuery
from recd.service.duty import Serving
from recd.service.plan import location_of, source_roots
from recd.service.policies import deadline

#: A JSON object of a reply's result.
JsonObject: TypeAlias = dict[str, Any]

#: A recording is overdue once its deadline is this far behind (metrics, `status`): erasing
#: takes a moment, and a sweep may be finishing the batch before it.
OVERDUE_GRACE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    type: SourceType
    watch: WatchMode
    scanning: bool
    last_scan: datetime | None
    scan_seconds: float | None
    objects: S3Totals | None = None  # S3: what the last completed poll listed
    unwritable: str | None = None  # why recd cannot write the root (nothing erased there)
    served: Serving = Serving.SERVED  # whether this node serves it (``Duty.serving``)


@dataclass(frozen=True, slots=True)
class DaemonState:
    """What the loop publishes for readers on other threads (replaced, never mutated)."""

    started: datetime
    pid: int
    clock_problem: str | None
    sources: tuple[SourceStatus, ...]
    audit_problem: str | None = None  # why the audit log cannot be written, while it cannot
    log_problem: str | None = None  # the log does not verify or match: until acknowledged
    clock_reason: ClockPause | None = None  # the clock guard's reason code, while paused
    catalogue_problem: str | None = None  # the catalogue's database cannot be reached


def iso(when: datetime | None) -> str | None:
    return None if when is None else format_iso(when)


def recording_json(rec: Recording, roots: Mapping[str, str]) -> JsonObject:
    return {
        "id": rec.id,
        "source": rec.source,
        "location": location_of(roots, rec),
        "licence": rec.classification.licence,
        "started": iso(rec.classification.started),
        "deadline": iso(rec.deadline),
        "size": rec.size,
        "held": rec.held,
        "state": str(rec.state),
        "skip_reason": rec.skip_reason,
        "not_before": iso(rec.not_before),
    }


def status(
    config: Config, state: DaemonState, now: datetime, reader: CatalogueReader
) -> JsonObject:
    """``status``: the daemon's state, counts, guards, sources and licences."""
    totals = reader.totals()
    due = reader.due_counts(now)
    tripped = sorted(b.licence for b in reader.breakers().values() if b.released_at is None)
    counts: JsonObject = {
        "recordings": sum(t.recordings for t in totals),
        "bytes": sum(t.bytes for t in totals),
        "unclassified": sum(t.recordings for t in totals if t.licence is None),
        "overdue": reader.overdue(now - OVERDUE_GRACE),
        "next_deadline": iso(reader.next_deadline(now)),
        "breaker": tripped,
    }
    licences = [
        {"licence": t.licence, "recordings": t.recordings, "bytes": t.bytes,
         "due": due.get(t.licence, 0)}
        for t in totals
    ]  # fmt: skip
    return _status(config, state, counts, licences, state.audit_problem)


def status_unreachable(config: Config, state: DaemonState, problem: str) -> JsonObject:
    """``status`` while the catalogue's database cannot be reached: what the daemon knows of
    itself, no counts (0, with ``catalogue.reachable`` false), and the reason also as the audit
    log's, which it is: a recctl that predates ``catalogue`` shows "erasing paused" and why."""
    counts: JsonObject = {
        "recordings": 0, "bytes": 0, "unclassified": 0, "overdue": 0,
        "next_deadline": None, "breaker": [],
    }  # fmt: skip
    found = _status(config, state, counts, [], problem)
    return found | {"catalogue": {"reachable": False, "problem": problem}}


def _status(
    config: Config,
    state: DaemonState,
    counts: JsonObject,
    licences: list[JsonObject],
    audit_problem: str | None,
) -> JsonObject:
    """The reply of ``status``, its catalogue ``counts`` and ``licences`` given."""
    return {
        "version": __version__,
        "node": config.daemon.node,
        "mode": str(config.daemon.mode),
        "pid": state.pid,
        "started": iso(state.started),
        **counts,
        "clock_guard": {"paused": state.clock_problem is not None, "reason": state.clock_problem},
        "audit_log": {"writable": audit_problem is None, "problem": audit_problem},
        "audit_check": {"paused": state.log_problem is not None, "problem": state.log_problem},
        "sources": [_source_json(s) for s in state.sources],
        "licences": licences,
    }


def _source_json(source: SourceStatus) -> JsonObject:
    return {
        "name": source.name,
        "type": source.type,
        "watch": source.watch,
        "scanning": source.scanning,
        "last_scan": iso(source.last_scan),
        "scan_seconds": source.scan_seconds,
        "objects": None if source.objects is None else asdict(source.objects),
        "unwritable": source.unwritable,
        "served": str(source.served),
    }


def recordings(
    config: Config, query: ListQuery, reader: CatalogueReader
) -> tuple[list[JsonObject], bool]:
    """``ls``: the recordings ``query`` selects, and whether there were more than its limit."""
    # One more than asked for tells whether the list was cut short.
    wider = ListQuery(
        query.licence, query.unclassified, query.due_before, query.state, query.limit + 1
    )
    rows = reader.recordings(wider)
    roots = source_roots(config)
    return [recording_json(r, roots) for r in rows[: query.limit]], len(rows) > query.limit


def find(reader: CatalogueReader, wanted: str) -> Recording:
    """The recording with id ``wanted``, or the one whose id starts with it (6 or more)."""
    rec = reader.get(wanted)
    if rec is None and len(wanted) >= 6:
        matches = reader.match(wanted)
        if len(matches) > 1:
            raise UsageError(f"recording id {wanted} is ambiguous: give more of it")
        rec = matches[0] if matches else None
    if rec is None:
        raise NotFound(f"no recording with id {wanted} (see `recctl ls`)")
    return rec


def recording_detail(config: Config, rec: Recording) -> JsonObject:
    """``show``: where each classified field and the deadline come from."""
    result = recording_json(rec, source_roots(config))
    c = rec.classification
    result["fields"] = {
        name: {"value": _field(rec, name), "from": str(c.provenance.get(name) or "")}
        for name in FIELDS
        if _field(rec, name) is not None
    }
    result["retention"] = _retention(config, c.licence) | {
        "deadline": iso(deadline(c.started, config.period_for(c.licence)))
    }
    result |= {
        "first_seen": iso(rec.first_seen),
        "mtime": iso(datetime.fromtimestamp(rec.mtime_ns / 1e9, UTC)),
        "dev": rec.dev,
        "ino": rec.ino,
    }
    return result


def policy(config: Config, reader: CatalogueReader) -> list[JsonObject]:
    """``policy``: each licence's retention, where it was configured, and its breaker."""
    counts = {t.licence: t.recordings for t in reader.totals()}
    breakers = reader.breakers()
    licences: list[str | None] = [*sorted(set(config.licences) | {k for k in counts if k})]
    if None in counts or config.retention.unclassified is not UnclassifiedPolicy.KEEP:
        licences.append(None)
    rows = []
    for licence in licences:
        known = config.licences.get(licence) if licence is not None else None
        breaker = breakers.get(licence) if licence is not None else None
        retention = _retention(config, licence)
        rows.append(
            {
                "licence": licence,
                "name": known.name if known is not None else None,
                "retention": retention["period"],
                "rule": retention["rule"],
                "recordings": counts.get(licence, 0),
                "breaker": breaker is not None and breaker.released_at is None,
            }
        )
    return rows


def breakers(reader: CatalogueReader) -> list[JsonObject]:
    """``breaker ls``: tripped breakers, and released ones the catalogue remembers."""
    return [
        {
            "licence": b.licence,
            "tripped_at": iso(b.tripped_at),
            "due": b.due,
            "total": b.total,
            "released_at": iso(b.released_at),
            "released_by": b.released_by,
        }
        for b in sorted(reader.breakers().values(), key=lambda b: b.licence)
    ]


def _field(rec: Recording, name: str) -> object:
    value = getattr(rec.classification, name)
    return iso(value) if isinstance(value, datetime) else value


def _retention(config: Config, licence: str | None) -> dict[str, str]:
    """The period that applies to ``licence`` and where it was configured."""
    period = config.period_for(licence)
    text = "keep" if period is None else period.text
    if licence is None:
        rule = f"retention.unclassified = {config.retention.unclassified}"
        if period is not None:
            rule += f" (retention.default in {config.path})"
        else:
            rule += f" in {config.path}"
    elif licence in config.licences:
        rule = f"retention in {config.licences[licence].file}"
    else:
        rule = f"retention.default in {config.path} (licence not in licences.d)"
    return {"period": text, "rule": rule}
