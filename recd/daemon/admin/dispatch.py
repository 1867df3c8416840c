"""The admin commands recctl sends over the socket: validate arguments, answer, or hand a change
to the daemon's loop.

Reads (``status``, ``ls``, ``show``, ``policy``, ``breaker ls``) are answered on the connection's
thread from a read-only catalogue connection, so they answer while the loop is busy (the first
scan of a large tree, a long sweep). Changes (``scan``, ``breaker release``) are run on the loop,
the only writer, and the reply waits for them. Result shapes are documented in
``recd.protocol``.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from recd import __version__
from recd.config.load import Config
from recd.core.model import FIELDS, Recording, State, UnclassifiedPolicy
from recd.core.safety import ClockPause
from recd.core.times import format_iso, parse_iso
from recd.daemon.collector import LicenceTotals, S3Totals, Snapshot, SourceState
from recd.daemon.control import Caller
from recd.errors import NotFound, UsageError
from recd.ports.clock import Clock
from recd.ports.reader import CatalogueReader, ListQuery
from recd.protocol import Reply, Request
from recd.service.indexing import IndexStats
from recd.service.plan import location_of, source_roots
from recd.service.policies import deadline

T = TypeVar("T")

#: A recording is overdue once its deadline is this far behind (metrics, `status`): erasing
#: takes a moment, and a sweep may be finishing the batch before it.
OVERDUE_GRACE = timedelta(minutes=1)
MAX_LIMIT = 1_000_000


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    type: str
    watch: str  # "inotify", "periodic" (watching degraded) or "none"
    scanning: bool
    last_scan: datetime | None
    scan_seconds: float | None
    objects: S3Totals | None = None  # S3: what the last completed poll listed


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


class Loop(Protocol):
    """The daemon as the admin commands see it."""

    @property
    def config(self) -> Config: ...

    @property
    def clock(self) -> Clock: ...

    def state(self) -> DaemonState: ...

    def reader(self) -> contextlib.AbstractContextManager[CatalogueReader]: ...

    def call_soon(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the loop and return its result (or raise its exception)."""

    def scan_sources(self, names: list[str]) -> list[IndexStats]: ...

    def release_breaker(self, licence: str, actor: str) -> int:
        """Returns how many due recordings the next sweep will erase."""

    def confirm_clock(self, actor: str, reason: str | None) -> tuple[datetime, str | None]:
        """Take the wall clock as it reads now; returns that reading and the pause it ended."""

    def acknowledge_log(self, actor: str, reason: str) -> tuple[int, str | None]:
        """Take the audit log as it is; returns the acknowledging entry's seq and the problem
        it ended. Raises NotAllowedInState when there is none."""


def iso(when: datetime | None) -> str | None:
    return None if when is None else format_iso(when)


def recording_json(rec: Recording, roots: Mapping[str, str]) -> dict[str, Any]:
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


class Admin:
    """One method per protocol command; ``handle`` is the control server's handler."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.commands: dict[str, Callable[[dict[str, Any], Caller], Reply]] = {
            "status": self.status,
            "ls": self.ls,
            "show": self.show,
            "policy": self.policy,
            "scan": self.scan,
            "breaker ls": self.breaker_ls,
            "breaker release": self.breaker_release,
            "clock confirm": self.clock_confirm,
            "audit acknowledge": self.audit_acknowledge,
        }

    def handle(self, request: Request, caller: Caller) -> Reply:
        command = self.commands.get(request.command)
        if command is None:
            known = ", ".join(sorted(self.commands))
            raise UsageError(f"unknown command {request.command!r} (this recd knows: {known})")
        return command(request.args, caller)

    @contextlib.contextmanager
    def _reader(self) -> Iterator[CatalogueReader]:
        with self.loop.reader() as reader:
            yield reader

    # -- reads --------------------------------------------------------------------------------

    def status(self, args: dict[str, Any], caller: Caller) -> Reply:
        config, state, now = self.loop.config, self.loop.state(), self.loop.clock.now()
        with self._reader() as reader:
            totals = reader.totals()
            due = reader.due_counts(now)
            overdue = reader.overdue(now - OVERDUE_GRACE)
            next_deadline = reader.next_deadline(now)
            breakers = reader.breakers()
        tripped = sorted(b.licence for b in breakers.values() if b.released_at is None)
        return Reply.success(
            {
                "version": __version__,
                "mode": str(config.daemon.mode),
                "pid": state.pid,
                "started": iso(state.started),
                "recordings": sum(t.recordings for t in totals),
                "bytes": sum(t.bytes for t in totals),
                "unclassified": sum(t.recordings for t in totals if t.licence is None),
                "overdue": overdue,
                "next_deadline": iso(next_deadline),
                "breaker": tripped,
                "clock_guard": {
                    "paused": state.clock_problem is not None,
                    "reason": state.clock_problem,
                },
                "audit_log": {
                    "writable": state.audit_problem is None,
                    "problem": state.audit_problem,
                },
                "audit_check": {
                    "paused": state.log_problem is not None,
                    "problem": state.log_problem,
                },
                "sources": [
                    {
                        "name": s.name,
                        "type": s.type,
                        "watch": s.watch,
                        "scanning": s.scanning,
                        "last_scan": iso(s.last_scan),
                        "scan_seconds": s.scan_seconds,
                        "objects": None if s.objects is None else asdict(s.objects),
                    }
                    for s in state.sources
                ],
                "licences": [
                    {
                        "licence": t.licence,
                        "recordings": t.recordings,
                        "bytes": t.bytes,
                        "due": due.get(t.licence, 0),
                    }
                    for t in totals
                ],
            }
        )

    def ls(self, args: dict[str, Any], caller: Caller) -> Reply:
        query = ListQuery(
            licence=_opt_str(args, "licence"),
            unclassified=_bool(args, "unclassified"),
            due_before=_opt_time(args, "due_before"),
            state=_state(args),
            limit=_limit(args),
        )
        if query.unclassified and query.licence is not None:
            raise UsageError("--licence and --unclassified exclude each other")
        # One more than asked for tells whether the list was cut short.
        wider = ListQuery(
            query.licence, query.unclassified, query.due_before, query.state, query.limit + 1
        )
        with self._reader() as reader:
            rows = reader.recordings(wider)
        roots = source_roots(self.loop.config)
        result = [recording_json(r, roots) for r in rows[: query.limit]]
        return Reply.success(result, truncated=len(rows) > query.limit)

    def show(self, args: dict[str, Any], caller: Caller) -> Reply:
        wanted = _str(args, "id")
        with self._reader() as reader:
            rec = reader.get(wanted)
            if rec is None and len(wanted) >= 6:
                matches = reader.match(wanted)
                if len(matches) > 1:
                    raise UsageError(f"recording id {wanted} is ambiguous: give more of it")
                rec = matches[0] if matches else None
        if rec is None:
            raise NotFound(f"no recording with id {wanted} (see `recctl ls`)")
        config = self.loop.config
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
        return Reply.success(result)

    def policy(self, args: dict[str, Any], caller: Caller) -> Reply:
        config = self.loop.config
        with self._reader() as reader:
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
        return Reply.success(rows)

    def breaker_ls(self, args: dict[str, Any], caller: Caller) -> Reply:
        with self._reader() as reader:
            breakers = sorted(reader.breakers().values(), key=lambda b: b.licence)
        return Reply.success(
            [
                {
                    "licence": b.licence,
                    "tripped_at": iso(b.tripped_at),
                    "due": b.due,
                    "total": b.total,
                    "released_at": iso(b.released_at),
                    "released_by": b.released_by,
                }
                for b in breakers
            ]
        )

    # -- changes, run on the loop -------------------------------------------------------------

    def scan(self, args: dict[str, Any], caller: Caller) -> Reply:
        source = _opt_str(args, "source")
        names = [s.name for s in self.loop.config.sources]
        if source is not None:
            if source not in names:
                raise NotFound(f"no source named {source} (configured: {', '.join(names)})")
            names = [source]
        stats = self.loop.call_soon(lambda: self.loop.scan_sources(names))
        return Reply.success(
            [
                {
                    "source": s.source,
                    "files": s.files,
                    "new": s.new,
                    "changed": s.changed,
                    "missing": s.missing,
                    "seconds": round(s.seconds, 3),
                }
                for s in stats
            ]
        )

    def breaker_release(self, args: dict[str, Any], caller: Caller) -> Reply:
        licence = _str(args, "licence")
        due = self.loop.call_soon(lambda: self.loop.release_breaker(licence, caller.user))
        return Reply.success({"licence": licence, "due": due})

    def clock_confirm(self, args: dict[str, Any], caller: Caller) -> Reply:
        reason = _opt_str(args, "reason")
        wall, problem = self.loop.call_soon(lambda: self.loop.confirm_clock(caller.user, reason))
        return Reply.success({"wall": iso(wall), "problem": problem})

    def audit_acknowledge(self, args: dict[str, Any], caller: Caller) -> Reply:
        reason = _str(args, "reason")
        seq, problem = self.loop.call_soon(lambda: self.loop.acknowledge_log(caller.user, reason))
        return Reply.success({"seq": seq, "problem": problem})


# -- argument checks: one-line usage errors naming the argument --------------------------------


def _str(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value:
        raise UsageError(f"{name}: a non-empty text value is required")
    return value


def _opt_str(args: dict[str, Any], name: str) -> str | None:
    return None if args.get(name) is None else _str(args, name)


def _bool(args: dict[str, Any], name: str) -> bool:
    value = args.get(name, False)
    if not isinstance(value, bool):
        raise UsageError(f"{name}: true or false expected")
    return value


def _opt_time(args: dict[str, Any], name: str) -> datetime | None:
    value = _opt_str(args, name)
    if value is None:
        return None
    try:
        return parse_iso(value).astimezone(UTC)
    except ValueError:
        raise UsageError(f"{name}: not an ISO 8601 time with a zone: {value!r}") from None


def _state(args: dict[str, Any]) -> State | None:
    value = args.get("state", "present")
    if value == "all":
        return None
    try:
        return State(value)
    except ValueError:
        raise UsageError(f"state: one of present, erased, missing, all; not {value!r}") from None


def _limit(args: dict[str, Any]) -> int:
    value = args.get("limit", 1000)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_LIMIT:
        raise UsageError(f"limit: a whole number from 1 to {MAX_LIMIT}, not {value!r}")
    return value


def _field(rec: Recording, name: str) -> Any:
    value = getattr(rec.classification, name)
    return iso(value) if isinstance(value, datetime) else value


def _retention(config: Config, licence: str | None) -> dict[str, Any]:
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


def metrics_snapshot(
    state: DaemonState, reader: CatalogueReader, now: datetime, config: Config
) -> Snapshot:
    """What the metrics collector shows at scrape time: a few indexed queries, no full count."""
    totals = reader.totals()
    overdue = reader.overdue(now - OVERDUE_GRACE)
    next_deadline = reader.next_deadline(now)
    tripped = {b.licence for b in reader.breakers().values() if b.released_at is None}
    return Snapshot(
        licences=[
            LicenceTotals(t.licence, t.recordings, t.bytes, t.licence in tripped) for t in totals
        ],
        held=reader.held(),
        overdue=overdue,
        next_deadline=next_deadline,
        sources=[
            SourceState(
                s.name, s.type, s.last_scan, s.scan_seconds, s.watch == "periodic", s.objects
            )
            for s in state.sources
        ],
        clock_guard=state.clock_reason,
        holds_active=len(reader.holds()),
        requests=Counter(str(r.state) for r in reader.requests()),
        mode=str(config.daemon.mode),
        audit_write_failed=state.audit_problem is not None,
        audit_log_problem=state.log_problem is not None,
    )
