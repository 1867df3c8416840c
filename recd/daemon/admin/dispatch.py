"""The admin commands recctl sends over the socket: the command table, the entry the control
server calls (``Admin.handle``), and the changes that run on the daemon's loop.

Reads (``status``, ``ls``, ``show``, ``policy``, ``breaker ls``) are answered on the connection's
thread from a read-only catalogue connection (``recd.daemon.admin.records``), so they answer
while the loop is busy (the first scan of a large tree, a long sweep). Changes (``scan``,
``breaker release``, ``clock confirm``, ``audit acknowledge``) are run on the loop, the only
writer, and the reply waits for them. Arguments are checked by ``recd.daemon.admin.args``
before anything is read or changed. Result shapes are documented in ``recd.protocol``.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TypeVar

from recd.config.load import Config
from recd.daemon.admin import args as check
from recd.daemon.admin import records
from recd.daemon.admin.args import Args
from recd.daemon.admin.records import OVERDUE_GRACE, DaemonState, iso
from recd.daemon.collector import LicenceTotals, Snapshot, SourceState
from recd.daemon.control import Caller
from recd.errors import CatalogueUnreachable, NotFound, UsageError
from recd.ports.clock import Clock
from recd.ports.reader import CatalogueReader
from recd.protocol import Reply, Request
from recd.service.duty import Serving
from recd.service.indexing import IndexStats

T = TypeVar("T")

#: One admin command: its checked arguments and the caller, to the reply.
Handler = Callable[[Args, Caller], Reply]


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

    def scan_sources(self, names: list[str] | None) -> list[IndexStats]:
        """Scan ``names`` (None: every source this node serves); NotAllowedInState, scanning
        nothing, when this node does not serve one of them."""

    def release_breaker(self, licence: str, actor: str) -> int:
        """Returns how many due recordings the next sweep will erase."""

    def confirm_clock(self, actor: str, reason: str | None) -> tuple[datetime, str | None]:
        """Take the wall clock as it reads now; returns that reading and the pause it ended."""

    def acknowledge_log(self, actor: str, reason: str) -> tuple[int, str | None]:
        """Take the audit log as it is; returns the acknowledging entry's seq and the problem
        it ended. Raises NotAllowedInState when there is none."""


class Admin:
    """One method per protocol command; ``handle`` is the control server's handler."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.commands: dict[str, Handler] = {
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

    # -- reads --------------------------------------------------------------------------------

    def status(self, args: Args, caller: Caller) -> Reply:
        config, state, now = self.loop.config, self.loop.state(), self.loop.clock.now()
        if state.catalogue_problem is not None:  # waiting: the database, or this node's name
            return Reply.success(records.status_unreachable(config, state, state.catalogue_problem))
        try:
            with self.loop.reader() as reader:
                return Reply.success(records.status(config, state, now, reader))
        except CatalogueUnreachable as exc:  # what the daemon knows, and why no more
            problem = state.catalogue_problem or str(exc)
            return Reply.success(records.status_unreachable(config, state, problem))

    def ls(self, args: Args, caller: Caller) -> Reply:
        query = check.list_query(args)
        with self.loop.reader() as reader:
            result, truncated = records.recordings(self.loop.config, query, reader)
        return Reply.success(result, truncated=truncated)

    def show(self, args: Args, caller: Caller) -> Reply:
        wanted = check.text(args, "id")
        with self.loop.reader() as reader:
            rec = records.find(reader, wanted)
        return Reply.success(records.recording_detail(self.loop.config, rec))

    def policy(self, args: Args, caller: Caller) -> Reply:
        with self.loop.reader() as reader:
            return Reply.success(records.policy(self.loop.config, reader))

    def breaker_ls(self, args: Args, caller: Caller) -> Reply:
        with self.loop.reader() as reader:
            return Reply.success(records.breakers(reader))

    # -- changes, run on the loop -------------------------------------------------------------

    def scan(self, args: Args, caller: Caller) -> Reply:
        source = check.opt_text(args, "source")
        names: list[str] | None = None  # every source this node serves
        if source is not None:
            configured = [s.name for s in self.loop.config.sources]
            if source not in configured:
                raise NotFound(f"no source named {source} (configured: {', '.join(configured)})")
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

    def breaker_release(self, args: Args, caller: Caller) -> Reply:
        licence = check.text(args, "licence")
        due = self.loop.call_soon(lambda: self.loop.release_breaker(licence, caller.user))
        return Reply.success({"licence": licence, "due": due})

    def clock_confirm(self, args: Args, caller: Caller) -> Reply:
        reason = check.opt_text(args, "reason")
        wall, problem = self.loop.call_soon(lambda: self.loop.confirm_clock(caller.user, reason))
        return Reply.success({"wall": iso(wall), "problem": problem})

    def audit_acknowledge(self, args: Args, caller: Caller) -> Reply:
        reason = check.text(args, "reason")
        seq, problem = self.loop.call_soon(lambda: self.loop.acknowledge_log(caller.user, reason))
        return Reply.success({"seq": seq, "problem": problem})


def metrics_snapshot(
    state: DaemonState, reader: CatalogueReader, now: datetime, config: Config
) -> Snapshot:
    """What the metrics collector shows at scrape time: a few indexed queries, no full count."""
    totals = reader.totals()
    overdue = reader.overdue(now - OVERDUE_GRACE)
    next_deadline = reader.next_deadline(now)
    tripped = {b.licence for b in reader.breakers().values() if b.released_at is None}
    intervals = _scan_intervals(config)
    return Snapshot(
        licences=[
            LicenceTotals(t.licence, t.recordings, t.bytes, t.licence in tripped) for t in totals
        ],
        held=reader.held(),
        overdue=overdue,
        next_deadline=next_deadline,
        sources=[
            SourceState(
                s.name,
                s.type,
                s.last_scan,
                s.scan_seconds,
                s.watch == "periodic",
                s.objects,
                s.unwritable is not None,
                intervals.get(s.name),  # None: a source left from before a reload
                s.served is Serving.SERVED,
            )
            for s in state.sources
        ],
        clock_guard=state.clock_reason,
        holds_active=len(reader.holds()),
        requests=Counter(r.state for r in reader.requests()),
        mode=config.daemon.mode,
        audit_write_failed=state.audit_problem is not None,
        audit_log_problem=state.log_problem is not None,
    )


def _scan_intervals(config: Config) -> dict[str, float]:
    """Source name -> seconds between its full scans: daemon.rescan, or an S3 source's poll."""
    return {
        s.name: (config.daemon.rescan if s.type == "directory" else s.poll).total_seconds()
        for s in config.sources
    }
