"""The clock and the telemetry the use cases are given (``Clock``, ``Telemetry``).

``Clock.now`` is the only wall-clock read in the service (once per sweep, passed down);
``Telemetry`` counts events where they happen, ``NO_TELEMETRY`` when nothing listens (tests,
`recd --once`). Implementations must not block: they run on the daemon's single writer loop.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """The wall clock (UTC) and a monotonic one (``recd.adapters.clock.SystemClock``)."""

    def now(self) -> datetime:
        """Wall-clock time, timezone-aware UTC."""

    def monotonic(self) -> float:
        """Monotonic seconds, for measuring intervals and detecting wall-clock jumps."""


class Telemetry(Protocol):
    """Events counted where they happen (metrics); the no-op default is ``NO_TELEMETRY``."""

    def erased(self, reason: str, result: str, size: int, lag: float | None) -> None:
        """One erasure: ``reason`` retention|request, ``result`` done|failed|skipped|dry-run;
        ``lag`` is seconds from the deadline to the erasure (None when unknown)."""

    def indexed(self, lag: float) -> None:
        """A recording indexed ``lag`` seconds after it was last written."""

    def watch_overflow(self, source: str) -> None:
        """Events of ``source`` may have been lost; a full reconciliation follows."""

    def object_error(self, source: str, code: str) -> None:
        """An S3 store refused to delete one version (``code``: AccessDenied, SlowDown...)."""

    def index_error(self, source: str) -> None:
        """One file of ``source`` could not be classified or stored; it was skipped."""


class _NoTelemetry:
    """Telemetry that counts nothing."""

    def erased(self, reason: str, result: str, size: int, lag: float | None) -> None:
        pass

    def indexed(self, lag: float) -> None:
        pass

    def watch_overflow(self, source: str) -> None:
        pass

    def object_error(self, source: str, code: str) -> None:
        pass

    def index_error(self, source: str) -> None:
        pass


NO_TELEMETRY: Telemetry = _NoTelemetry()
