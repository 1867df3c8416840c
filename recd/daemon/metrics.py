"""recd's Prometheus metrics: the event instruments on a private registry, and its HTTP endpoint.

Two kinds of metric live on one private ``CollectorRegistry`` (never the global ``REGISTRY``):
the state gauges, computed at every scrape by ``recd.daemon.collector.StateCollector``, and the
events counted here where they happen (erasures, indexing, watch overflows, S3 and audit write
errors, refused connections, catalogue rebuilds). Every label is bounded: ``reason``,
``result``, ``endpoint`` and ``why`` take fixed sets (anything else raises ``ValueError``),
``source`` the configured sources. ``serve`` puts the registry on ``metrics.listen``
(``recd.daemon.httpendpoint``); a reload keeps the one ``Metrics`` and every count in it.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, make_wsgi_app

from recd import __version__
from recd.config.types import Listen
from recd.core.admission import Limits
from recd.daemon.collector import Snapshot, StateCollector
from recd.daemon.httpendpoint import MAX_HTTP_HEAD, WsgiEndpoint, listen_tcp
from recd.daemon.serving import BoundedServer

REASONS = ("retention", "request")
RESULTS = ("done", "failed", "skipped", "dry-run")
ENDPOINTS = ("admin", "metrics")  # recd_connections_refused_total's endpoint label
REFUSALS = ("limit", "descriptors", "timeout")  # ... and its reason label
#: recd_catalogue_rebuilds_total's why label (recd.service.rebuild.WHYS)
REBUILD_REASONS = ("missing", "empty", "unmarked", "corrupt", "behind")
#: A scraper sends a few hundred bytes at once and reads the reply at once; Prometheus scrapes
#: one target from one connection at a time, so a few connections are plenty.
HTTP_LIMITS = Limits(connections=16, idle=5.0, request=10.0, reply=30.0, max_request=MAX_HTTP_HEAD)
HTTP_WORKERS = 1
HTTP_STOP_GRACE = 0.5

# Seconds after the deadline: SPEC section 10 wants erasure within seconds, and the top buckets
# still tell a slow sweep (minutes) from a stalled one (an hour).
DELETION_LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600)
# Seconds from the last write to the catalogue: SPEC section 10 wants under one second.
INDEXING_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30, 60)


class Metrics:
    """recd's Prometheus metrics on a private registry, and the HTTP endpoint that serves them.

    Usage::

        metrics = Metrics(lambda: daemon.snapshot, per_licence=config.metrics.per_licence)
        metrics.serve(config.metrics.listen)
        metrics.erased("retention", "done", size=1234, lag=0.4)
        metrics.close()
    """

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        *,
        per_licence: bool = True,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        self._running: BoundedServer | None = None
        errors = Counter(
            "recd_snapshot_errors",
            "Scrapes whose state could not be read; they carry the event metrics only.",
            registry=None,
        )
        self._overflows = Counter(
            "recd_watch_overflows",
            "Times the source's watch queue overflowed and recd rescanned it.",
            ["source"],
            registry=None,
        )
        collector = self._state = StateCollector(
            snapshot, per_licence=per_licence, errors=errors, overflows=self._overflows
        )
        # The state collector is registered first, so a scrape whose snapshot fails already
        # shows that failure in recd_snapshot_errors_total (collectors run in this order).
        self.registry.register(collector)
        self.registry.register(errors)
        self.registry.register(self._overflows)
        self._erasure_instruments()
        self._endpoint_instruments()

    def _erasure_instruments(self) -> None:
        """Counted as recordings are indexed and erased, and the audit log written."""
        self._object_errors = Counter(
            "recd_s3_erase_errors",
            "Versions an S3 store refused to delete, by source and S3 error code (retried "
            "transient errors included).",
            ["source", "code"],
            registry=self.registry,
        )
        self._index_errors = Counter(
            "recd_index_errors",
            "Files that could not be classified or stored, by source; each was skipped and is "
            "tried again at the next scan (logged once while it keeps failing the same way).",
            ["source"],
            registry=self.registry,
        )
        self._deletions = Counter(
            "recd_deletions",
            "Erasures by reason (retention, request) and result (done, failed, skipped, dry-run).",
            ["reason", "result"],
            registry=self.registry,
        )
        for reason in REASONS:  # every series exists from 0, so rate() sees the first erasure
            for result in RESULTS:
                self._deletions.labels(reason, result)
        self._erased_bytes = Counter(
            "recd_erased_bytes", "Bytes of recordings erased.", registry=self.registry
        )
        self._audit_errors = Counter(
            "recd_audit_write_errors",
            "Appends to the audit log that failed (full or failing disk), retries included.",
            registry=self.registry,
        )
        self._deletion_lag = Histogram(
            "recd_deletion_lag_seconds",
            "Seconds from a recording's deadline to its erasure.",
            buckets=DELETION_LAG_BUCKETS,
            registry=self.registry,
        )
        self._indexing_lag = Histogram(
            "recd_indexing_lag_seconds",
            "Seconds from a recording's file being closed to its being indexed.",
            buckets=INDEXING_LAG_BUCKETS,
            registry=self.registry,
        )

    def _endpoint_instruments(self) -> None:
        """The build, refused connections and catalogue rebuilds."""
        Info("recd_build", "The running recd version.", registry=self.registry).info(
            {"version": __version__}
        )
        self._refused = Counter(
            "recd_connections_refused",
            "Connections to the admin socket or the metrics port refused or closed by recd: "
            "at the connection limit (limit), for want of file descriptors (descriptors), or a "
            "client too slow sending its request or taking its reply (timeout).",
            ["endpoint", "reason"],
            registry=self.registry,
        )
        for endpoint in ENDPOINTS:
            for reason in REFUSALS:
                self._refused.labels(endpoint, reason)
        self._rebuilds = Counter(
            "recd_catalogue_rebuilds",
            "Catalogues given back what the audit log holds at start: missing, empty (0 bytes) "
            "or unmarked (all of the log replayed), or behind (the entries after its mark).",
            ["why"],
            registry=self.registry,
        )
        for why in REBUILD_REASONS:
            self._rebuilds.labels(why)

    @property
    def per_licence(self) -> bool:
        """Whether state metrics carry a licence label; may change on reload."""
        return self._state.per_licence

    @per_licence.setter
    def per_licence(self, value: bool) -> None:
        self._state.per_licence = value

    def catalogue_rebuilt(self, why: str) -> None:
        """Count one rebuild; ``why`` is one of ``REBUILD_REASONS`` (else ``ValueError``)."""
        if why not in REBUILD_REASONS:
            raise ValueError(f"unknown rebuild reason {why!r}")
        self._rebuilds.labels(why).inc()

    def audit_write_failed(self) -> None:
        """Count one failed append to the audit log."""
        self._audit_errors.inc()

    def erased(self, reason: str, result: str, size: int, lag: float | None) -> None:
        """Count one erasure attempt.

        ``reason`` is "retention" or "request", ``result`` one of "done", "failed", "skipped",
        "dry-run" (anything else raises ``ValueError``, keeping the labels bounded). ``size``
        bytes count as erased and ``lag`` (seconds from the deadline to the erasure; None:
        unknown) is observed only for "done".
        """
        if reason not in REASONS:
            raise ValueError(f"unknown deletion reason {reason!r} (expected one of {REASONS})")
        if result not in RESULTS:
            raise ValueError(f"unknown deletion result {result!r} (expected one of {RESULTS})")
        self._deletions.labels(reason, result).inc()
        if result != "done":
            return
        self._erased_bytes.inc(size)
        if lag is not None:
            # Clamped: a negative observation would lower the histogram's _sum, which
            # Prometheus reads as a counter reset.
            self._deletion_lag.observe(max(lag, 0.0))

    def indexed(self, lag: float) -> None:
        """Observe one recording indexed ``lag`` seconds after its file was closed."""
        self._indexing_lag.observe(max(lag, 0.0))  # clamped: clock skew on network storage

    def watch_overflow(self, source: str) -> None:
        """Count one overflow of the source's watch queue (events lost, a rescan follows)."""
        self._overflows.labels(source).inc()

    def object_error(self, source: str, code: str) -> None:
        """Count one version an S3 store refused to delete with error ``code``."""
        self._object_errors.labels(source, code).inc()

    def index_error(self, source: str) -> None:
        """Count one file of ``source`` that could not be indexed (it was skipped)."""
        self._index_errors.labels(source).inc()

    def connection_refused(self, endpoint: str, reason: str) -> None:
        """Count one connection to ``endpoint`` ("admin", "metrics") refused or closed for
        ``reason`` ("limit", "descriptors", "timeout"); anything else raises ``ValueError``."""
        if endpoint not in ENDPOINTS or reason not in REFUSALS:
            raise ValueError(f"unknown endpoint or reason {endpoint!r}, {reason!r}")
        self._refused.labels(endpoint, reason).inc()

    def serve(self, listen: Listen, *, limits: Limits = HTTP_LIMITS) -> None:
        """Serve the registry over HTTP on ``listen`` within ``limits``
        (``recd.daemon.serving``); raises ``StateError`` with a one-line message when it
        cannot listen."""
        if self._running is not None:
            raise RuntimeError(f"metrics already served on {self.address}")
        listener = listen_tcp(listen)
        endpoint = WsgiEndpoint("metrics", make_wsgi_app(self.registry))
        self._running = BoundedServer(
            listener,
            endpoint,
            limits,
            workers=HTTP_WORKERS,
            thread_name="recd-metrics",
            count=lambda reason: self.connection_refused("metrics", reason),
        )
        self._running.start()

    @property
    def address(self) -> tuple[str, int] | None:
        """The bound address (port 0 resolved), or None when not serving."""
        if self._running is None:
            return None
        bound = self._running.listener.getsockname()
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        """Stop the HTTP server and its threads without waiting on any client; idempotent."""
        if self._running is None:
            return
        server, self._running = self._running, None
        server.stop(HTTP_STOP_GRACE)


__all__ = ["Metrics"]
