"""`recd --once` and `recd release-breaker`: one run on the runtime, then closed.

``run_once`` recovers, scans every source this node serves, sweeps once and prints one line
per licence (``summary_lines``); the daemon's loop is built on the same runtime
(``recd.daemon.runtime``).
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from typing import TextIO

from recd import __version__
from recd.config.load import Config
from recd.core.audit import AuditDraft
from recd.core.safety import start_gap_problem
from recd.core.text import plural
from recd.core.times import format_time
from recd.daemon.evidence import start_evidence
from recd.daemon.runtime import (
    ONCE_ACKNOWLEDGE_HINT,
    ONCE_CONFIRM_HINT,
    Runtime,
    open_runtime,
    rebuilder,
    reindex,
    report_buckets,
    scan_all,
)
from recd.daemon.writable import report_unwritable
from recd.errors import (
    AuditUnwritable,
    CatalogueCorrupt,
    ExitCode,
    NotAllowedInState,
    StateError,
    os_reason,
)
from recd.ports.clock import Clock
from recd.service import breakers, rebuild
from recd.service.policies import apply_policies
from recd.service.recovery import Recovery
from recd.service.sweep import Sweeper, SweepReport

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClockConfirmation:
    """`recd --once --confirm-clock`: who trusts the wall clock, audited if it was in doubt."""

    actor: str
    reason: str | None = None


def run_once(
    config: Config,
    clock: Clock,
    out: TextIO,
    confirm: ClockConfirmation | None = None,
    acknowledge: ClockConfirmation | None = None,
) -> ExitCode:
    """`recd --once`: recover, scan every source, sweep once, print one line per licence.

    Raises ``NotAllowedInState`` (erasing nothing) when the wall clock is more than
    ``safety.max_clock_gap`` ahead of the last audit entry and the newest recording, unless
    ``confirm`` says an administrator checked it; likewise when the audit log does not
    verify or does not hold the catalogue's mark, unless ``acknowledge`` (who, and why).
    """
    runtime = open_runtime(config, clock)
    try:
        try:
            report, scanned = _once(runtime, config, clock, confirm, acknowledge)
        except CatalogueCorrupt as exc:  # met in a row: moved aside, the run starts again
            runtime.close()
            runtime = open_runtime(config, clock, corrupt=exc)
            report, scanned = _once(runtime, config, clock, confirm, acknowledge)
    except (OSError, StateError) as exc:
        failure = runtime.audit.failure
        if failure is None:
            raise
        raise AuditUnwritable(
            f"{config.audit_place}: cannot write the audit log: "
            f"{os_reason(failure)}; stopped erasing (an erase whose entry could not be "
            "written is settled by the next run)"
        ) from exc
    finally:
        runtime.close()
    for line in summary_lines(report):
        print(line, file=out)
    if not scanned:
        return ExitCode.FAILED
    return ExitCode.PARTIAL if report.failed else ExitCode.OK


def _once(
    runtime: Runtime,
    config: Config,
    clock: Clock,
    confirm: ClockConfirmation | None,
    acknowledge: ClockConfirmation | None = None,
) -> tuple[SweepReport, bool]:
    """Everything ``run_once`` does with the state open: the sweep's report, and whether
    every source was scanned."""
    rebuilding = rebuilder(runtime)
    rebuilding.restore()  # the holds first: nothing below may erase what the log holds
    found = rebuilding.problem
    if found is not None and acknowledge is None:
        raise NotAllowedInState(f"erasing nothing: {found.text}; {ONCE_ACKNOWLEDGE_HINT}")
    now = clock.now()
    evidence = start_evidence(runtime, now)  # before config.loaded, stamped with this clock
    problem = start_gap_problem(now, evidence, config.safety.max_clock_gap)
    if problem is not None and confirm is None:
        raise NotAllowedInState(f"erasing nothing: {problem}; {ONCE_CONFIRM_HINT}")
    details = {
        "config": str(config.path),
        "version": __version__,
        "mode": str(config.daemon.mode),
        "sources": [s.name for s in config.sources],
        "licences": sorted(config.licences),
        "pid": os.getpid(),
    }
    runtime.audit.append([AuditDraft("config.loaded", str(config.path), details)], clock.now())
    if problem is not None and confirm is not None:
        details = {"wall": format_time(now), "problem": problem, "reason": confirm.reason}
        runtime.audit.append(
            [AuditDraft("clock.confirmed", "clock", details, actor=confirm.actor)], now
        )
        logger.warning("wall clock confirmed by %s: %s", confirm.actor, problem)
    rebuilding.record()
    if acknowledge is not None:
        rebuild.acknowledge(
            runtime.catalogue,
            runtime.audit,
            rebuilding.path,
            found,
            acknowledge.actor,
            acknowledge.reason or "",
            clock.now(),
        )
    Recovery(config, runtime.catalogue, runtime.audit, clock, runtime.erasers).run()
    apply_policies(config, runtime.catalogue)
    report_buckets(runtime)
    report_unwritable(runtime, {})
    scanned = scan_all(runtime)
    if config.catalogue.shared:  # what other hosts logged meanwhile, first
        rebuild.catch_up(config, runtime.catalogue, runtime.audit, clock)
    report = Sweeper(
        config,
        runtime.catalogue,
        runtime.audit,
        clock,
        runtime.erasers,
        reindex=functools.partial(reindex, runtime),
        serves=runtime.duty.erases,
    ).run()
    rebuilding.mark()  # every decision of this run is in the catalogue and the log
    return report, scanned


def release_breaker(config: Config, clock: Clock, licence: str, actor: str) -> ExitCode:
    """`recd release-breaker LICENCE`: the next sweep may erase what the breaker held back."""
    runtime = open_runtime(config, clock)
    try:
        breakers.release_breaker(runtime.catalogue, runtime.audit, licence, actor, clock.now())
    finally:
        runtime.close()
    return ExitCode.OK


def summary_lines(report: SweepReport) -> list[str]:
    """One line per licence: recordings, due, erased, kept and why."""
    lines = []
    for label in sorted(report.licences):
        t = report.licences[label]
        parts = [plural(t.recordings, "recording"), f"{t.due} due"]
        if report.dry_run:
            parts.append(f"{t.would_erase} would be erased (dry-run)")
        else:
            parts.append(f"{t.erased} erased")
        if t.failed:
            parts.append(f"{t.failed} failed")
        kept = sum(t.kept.values())
        if kept:
            why = ", ".join(f"{n} {reason}" for reason, n in sorted(t.kept.items()))
            parts.append(f"{kept} kept ({why})")
        if t.breaker:
            parts.append("BREAKER TRIPPED")
        lines.append(f"{label}: " + ", ".join(parts))
    if not lines:
        lines.append("no recordings")
    return lines
