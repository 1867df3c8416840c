"""The audit log against the catalogue: a problem found at start, and the catalogue's mark.

At start the log's chain is verified and the catalogue's mark (the seq of the last entry it
reflects) looked up in it; a log that does not verify or does not hold the mark pauses erasing
until an administrator takes the log as it is (``recctl audit acknowledge``). A new problem is
audited and logged once, not again at each reload. Between steps, while there is no problem,
the catalogue is marked at the log's last entry; after an admin command that failed half-way
the mark stays put until the next start, which replays the entries after it.
"""

from __future__ import annotations

import logging

from recd.core.audit import AuditDraft
from recd.core.logcheck import Finding
from recd.daemon.inbox import Command
from recd.daemon.runtime import ACKNOWLEDGE_HINT, Runtime
from recd.errors import NotAllowedInState, RecdError
from recd.ports.clock import Clock
from recd.service.rebuild import acknowledge, mark_at_end, problem_draft, report_problem

logger = logging.getLogger(__name__)


class LogCheck:
    """The audit log's standing: ``problem`` pauses erasing while set."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.problem: str | None = None  # what people read, with how to end it
        self._finding: Finding | None = None
        self._marked: int | None = None  # the seq the catalogue was last marked at
        self.frozen = False  # a command failed half-way: leave the rest to the replay

    def found(self, runtime: Runtime, finding: Finding | None) -> None:
        """After the start's checks: audit and log a new problem once (not again on reload)."""
        if finding is not None and finding != self._finding:
            path = runtime.config.audit_place
            report_problem(runtime.audit, path, finding, self.clock.now())
        self._set(finding)

    def found_in_outage(self, runtime: Runtime, finding: Finding | None) -> list[AuditDraft]:
        """As ``found`` while the audit log cannot be written: the entry to write later."""
        drafts: list[AuditDraft] = []
        if finding is not None and finding != self._finding:
            path = runtime.config.audit_place
            report_problem(None, path, finding, self.clock.now())
            drafts.append(problem_draft(path, finding))
        self._set(finding)
        return drafts

    def _set(self, finding: Finding | None) -> None:
        self._finding = finding
        self.problem = None if finding is None else f"{finding.text}; {ACKNOWLEDGE_HINT}"

    def acknowledge(self, runtime: Runtime, actor: str, reason: str) -> tuple[int, str]:
        """Take the audit log as it is; the ``audit.acknowledged`` entry's seq and the
        problem it ended."""
        finding = self._finding
        if finding is None:
            raise NotAllowedInState(
                "the audit log verified and matches the catalogue: nothing to acknowledge"
            )
        path = runtime.config.audit_place
        now = self.clock.now()
        entry = acknowledge(runtime.catalogue, runtime.audit, path, finding, actor, reason, now)
        self._set(None)
        self._marked = entry.seq
        return entry.seq, finding.text

    def mark(self, runtime: Runtime | None, *, waiting: bool) -> None:
        """Between steps: every decision made so far is in both the catalogue and the log, so
        the catalogue is marked at the log's last entry (one small write when it moved). Not
        while the log has a problem (the mark is what the next start compares), nor while
        something is ``waiting`` to be audited, nor once ``frozen``."""
        if runtime is None or self._finding is not None or waiting or self.frozen:
            return
        if runtime.config.catalogue.shared:
            return  # shared by several hosts: marked by each sweep's catch_up, not here
        last = runtime.audit.last()
        if last is not None and last.seq != self._marked:
            mark_at_end(runtime.catalogue, runtime.audit)
            self._marked = last.seq

    def check_command(self, command: Command[object]) -> None:
        """An admin command that failed unexpectedly (not a refusal, which changes nothing)
        may have written its audit entry but not its catalogue change: the mark stays where
        it is until recd restarts, so that start replays the entries after it."""
        future = command.future
        failure = None if not future.done() or future.cancelled() else future.exception()
        if failure is not None and not isinstance(failure, RecdError) and not self.frozen:
            self.frozen = True
            logger.warning(
                "the catalogue's audit mark stays at entry %s until recd restarts (an admin "
                "command failed: %s); the start then replays the entries after it",
                self._marked,
                failure,
            )
