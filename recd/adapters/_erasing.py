"""The one-file ``erase`` of the port, shared by the erasers over their own ``_erase_job``.

``ports.Eraser.erase`` takes a prepared file, a decision and the erase settings; each eraser
does the work for one ``EraseJob`` (the local one file by file, the S3 one as a batch of one),
so the signature and the packing into a job live here once.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from recd.core.erasure import Decision
from recd.core.model import ErasePattern
from recd.ports.eraser import EraseJob, EraseOutcome, PreparedErase

Outcome = TypeVar("Outcome", bound=EraseOutcome)


class SingleErase(Generic[Outcome]):
    """``erase(prepared, decision, ...)`` as ``_erase_job(EraseJob(...))``, outcome ``Outcome``."""

    def _erase_job(self, job: EraseJob, *, pattern: ErasePattern, verify: bool) -> Outcome:
        raise NotImplementedError

    def erase(
        self,
        prepared: PreparedErase,
        decision: Decision,
        *,
        pattern: ErasePattern,
        verify: bool,
        temp_name: str,
    ) -> Outcome:
        """The irreversible step, as the eraser's ``_erase_job`` says. Raises ``EraseError``
        when it did not complete; ``ValueError`` for a caller's mistake."""
        job = EraseJob(prepared, decision, temp_name)
        return self._erase_job(job, pattern=pattern, verify=verify)
