"""The daemon's two endpoints: the admin socket and the metrics port, and the counts they keep.

Both are served by threads the loop starts (with recd's signals blocked, so that signals reach
the main thread) and restarted on reload only when their settings changed; the one ``Metrics``
lives as long as the daemon, so a reload keeps every counter and histogram. Until the metrics
exist (early in the start) the counting methods count nothing and ``telemetry`` is
``NO_TELEMETRY``. Counting may happen on any thread: each is one call into prometheus_client,
which locks for itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import ProcessCollector

from recd.config.load import Config, Listen
from recd.daemon.collector import Snapshot
from recd.daemon.control import ControlServer, Handler
from recd.daemon.metrics import Metrics
from recd.ports.clock import NO_TELEMETRY, Telemetry

logger = logging.getLogger(__name__)


class Endpoints:
    """The admin socket (``control``) and the metrics (``metrics``), once served."""

    def __init__(self, snapshot: Callable[[], Snapshot], handler: Callable[[], Handler]) -> None:
        self._snapshot = snapshot  # the collector's view, at scrape time
        self._handler = handler  # a new admin command handler over the loop
        self.control: ControlServer | None = None
        self.metrics: Metrics | None = None

    def serve(self, config: Config, old: Config | None = None) -> None:
        """Serve both for ``config`` (again, where it changed from ``old`` on reload)."""
        d = config.daemon
        if old is None or (d.socket, d.admin_group) != (old.daemon.socket, old.daemon.admin_group):
            if self.control is not None:
                self.control.stop()
            self.control = ControlServer(
                d.socket, d.admin_group, self._handler(), count=self._count_admin_refusal
            )
            self.control.start()
        m = config.metrics
        if self.metrics is None:
            self.metrics = Metrics(self._snapshot, per_licence=m.per_licence)
            ProcessCollector(registry=self.metrics.registry)  # process_resident_memory_bytes...
        self.metrics.per_licence = m.per_licence
        if old is None or m.listen != old.metrics.listen:
            self.metrics.close()
            self.metrics.serve(m.listen)
            if (address := self.metrics.address) is not None:
                logger.info("metrics served at http://%s/metrics", Listen(*address))

    def stop(self) -> None:
        if self.control is not None:
            self.control.stop()
            self.control = None
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None

    def telemetry(self) -> Telemetry:
        return self.metrics if self.metrics is not None else NO_TELEMETRY

    def _count_admin_refusal(self, reason: str) -> None:
        """From the admin socket's thread: one connection refused or dropped."""
        if (metrics := self.metrics) is not None:
            metrics.connection_refused("admin", reason)

    def count_overflow(self, source: str) -> None:
        if (metrics := self.metrics) is not None:
            metrics.watch_overflow(source)

    def count_audit_failure(self) -> None:
        if self.metrics is not None:
            self.metrics.audit_write_failed()

    def count_rebuilds(self, whys: list[str]) -> None:
        """Count each rebuild and clear ``whys``; before the metrics exist, keep them."""
        if self.metrics is not None:
            for why in whys:
                self.metrics.catalogue_rebuilt(why)
            whys.clear()
