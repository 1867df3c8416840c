"""Prometheus metrics: a private registry, state gauges computed at scrape time, event instruments.

Two kinds of metric live on one private ``CollectorRegistry`` (never the global ``REGISTRY``):

* **State** (SPEC section 9) comes from one collector that calls ``snapshot()`` on every scrape
  and caches nothing. The daemon's loop refreshes the snapshot after each sweep, so a scrape
  never queries the catalogue; ``snapshot`` runs on the HTTP server's thread and must be safe to
  call from there (returning an immutable ``Snapshot`` the loop swapped in is).
* **Events** are counted where they happen: ``erased``, ``indexed`` and ``watch_overflow``.

If ``snapshot()`` raises, the scrape still succeeds: it carries the event instruments only, one
warning line is logged and ``recd_snapshot_errors_total`` goes up.

Label schemes (``[metrics] per_licence``); only the licence families change:

* ``per_licence = true``: ``recd_recordings{licence}`` and ``recd_recording_bytes{licence}`` per
  classified licence, and ``recd_breaker_tripped{licence}`` (1/0) per licence, where unclassified
  recordings, which have a breaker of their own, appear as ``licence="(unclassified)"`` (the
  label ``recctl`` shows).
* ``per_licence = false``, for estates with very many licences: ``recd_recordings`` and
  ``recd_recording_bytes`` are single totals over the classified licences, and
  ``recd_breakers_tripped`` counts tripped breakers (unclassified counted as one).

In both, unclassified recordings are in ``recd_unclassified_recordings`` and
``recd_unclassified_bytes`` only, so ``recd_recordings + recd_unclassified_recordings`` is every
present recording. Every other label is bounded by the configuration: ``source`` (configured
sources), ``reason`` and ``result`` (fixed sets), ``state`` (request states) and the clock guard's
``reason`` (fixed set).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from recd import __version__
from recd.core.admission import Limits
from recd.core.text import UNCLASSIFIED
from recd.daemon.serving import MAX_HTTP_HEAD, BoundedServer, WsgiEndpoint
from recd.errors import StateError, os_reason
from recd.ports.records import RequestState

logger = logging.getLogger(__name__)

REASONS = ("retention", "request")
RESULTS = ("done", "failed", "skipped", "dry-run")
CLOCK_GUARD_REASONS = ("jump", "behind-audit", "start-gap")
#: Every request state has a ``recd_requests`` sample, 0 when no request is in it, so that an
#: alert on one state sees 0 rather than no data.
REQUEST_STATES = tuple(str(state) for state in RequestState)
ENDPOINTS = ("admin", "metrics")  # recd_connections_refused_total's endpoint label
REFUSALS = ("limit", "descriptors", "timeout")  # ... and its reason label
#: recd_catalogue_rebuilds_total's why label (recd.service.rebuild.WHYS)
REBUILD_REASONS = ("missing", "empty", "unmarked", "corrupt", "behind")
#: A scraper sends a few hundred bytes at once and reads the reply at once; Prometheus scrapes
#: one target from one connection at a time, so a few connections are plenty.
HTTP_LIMITS = Limits(connections=16, idle=5.0, request=10.0, reply=30.0, max_request=MAX_HTTP_HEAD)
HTTP_WORKERS = 1
HTTP_STOP_GRACE = 0.5
BACKLOG = 512  # a burst of connections waits in the kernel, not on a SYN retry

# Seconds after the deadline: SPEC section 10 wants erasure within seconds, and the top buckets
# still tell a slow sweep (minutes) from a stalled one (an hour).
DELETION_LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600)
# Seconds from the last write to the catalogue: SPEC section 10 wants under one second.
INDEXING_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30, 60)


@dataclass(frozen=True, slots=True)
class LicenceTotals:
    """Present recordings of one licence."""

    licence: str | None  # None: unclassified
    recordings: int
    bytes: int
    breaker: bool  # the mass-deletion breaker is tripped for this licence


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the daemon knows about one configured source."""

    name: str
    type: str  # "directory" or "s3"
    last_scan: datetime | None  # end of the last full scan, UTC aware; None before the first
    scan_seconds: float | None  # duration of that scan
    degraded: bool  # watching fell back to periodic scans (inotify watch limit)
    objects: S3Totals | None = None  # S3: what the last completed poll listed


@dataclass(frozen=True, slots=True)
class S3Totals:
    """Keys with data, their versions (delete markers apart) and bytes at the last poll."""

    objects: int
    versions: int
    delete_markers: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The daemon's state as the loop last computed it; every datetime is UTC aware."""

    licences: Sequence[LicenceTotals]
    held: int
    overdue: int  # present, not held, past the deadline by more than a grace
    next_deadline: datetime | None
    sources: Sequence[SourceState]
    clock_guard: str | None  # None, or why erasing is paused: "jump" or "behind-audit"
    holds_active: int
    requests: Mapping[str, int]  # request state -> count (may be empty)
    mode: str  # "enforce" or "dry-run"
    audit_write_failed: bool = False  # the audit log cannot be written: erasing is paused
    audit_log_bytes: int = 0  # size of the live audit.log
    audit_segments: int = 0  # closed audit log segments beside it
    audit_log_problem: bool = False  # the log does not verify or match: until acknowledged


_EMPTY = Snapshot((), 0, 0, None, (), None, 0, {}, "enforce")


def _unix(when: datetime) -> float:
    # A naive datetime would be read as local time and be off by the host's UTC offset.
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when.isoformat()} (expected UTC aware)")
    return when.timestamp()


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _labelled(
    name: str, documentation: str, label: str, samples: Iterable[tuple[str, float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value, sample in samples:
        family.add_metric([value], sample)
    return family


def _licence_families(totals: Sequence[LicenceTotals], per_licence: bool) -> list[Metric]:
    merged: dict[str | None, tuple[int, int, bool]] = {}
    for t in totals:  # merged so that a repeated licence cannot yield duplicate samples
        count, size, tripped = merged.get(t.licence, (0, 0, False))
        merged[t.licence] = (count + t.recordings, size + t.bytes, tripped or t.breaker)
    unclassified = merged.pop(None, None)
    classified = sorted((name, value) for name, value in merged.items() if name is not None)
    breakers = [(name, float(tripped)) for name, (_, _, tripped) in classified]
    if unclassified is not None:
        breakers.append((UNCLASSIFIED, float(unclassified[2])))
    families: list[Metric]
    if per_licence:
        families = [
            _labelled(
                "recd_recordings",
                "Present recordings per licence (unclassified: recd_unclassified_recordings).",
                "licence",
                ((name, n) for name, (n, _, _) in classified),
            ),
            _labelled(
                "recd_recording_bytes",
                "Bytes of present recordings per licence.",
                "licence",
                ((name, b) for name, (_, b, _) in classified),
            ),
            _labelled(
                "recd_breaker_tripped",
                "1 while the mass-deletion breaker stops erasing the licence's recordings, else 0.",
                "licence",
                breakers,
            ),
        ]
    else:
        families = [
            _gauge(
                "recd_recordings",
                "Present recordings of every licence (unclassified: recd_unclassified_recordings).",
                sum(n for _, (n, _, _) in classified),
            ),
            _gauge(
                "recd_recording_bytes",
                "Bytes of present recordings of every licence.",
                sum(b for _, (_, b, _) in classified),
            ),
            _gauge(
                "recd_breakers_tripped",
                "Licences whose mass-deletion breaker stops erasing (unclassified counts as one).",
                sum(tripped for _, tripped in breakers),
            ),
        ]
    n, b, _ = unclassified or (0, 0, False)
    families.append(_gauge("recd_unclassified_recordings", "Present recordings of no licence.", n))
    families.append(
        _gauge("recd_unclassified_bytes", "Bytes of present unclassified recordings.", b)
    )
    return families


def _deadline_family(deadline: datetime | None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "recd_next_deadline_timestamp_seconds",
        "Unix time of the earliest deadline of a present recording; no sample when there is none.",
    )
    # No deadline means no sample rather than NaN: NaN compares false in every alert expression
    # and poisons arithmetic such as `- time()`, while an absent series is what PromQL's absent()
    # and `or` are made for; 0 would read as a deadline in 1970. promtool accepts a family
    # without samples.
    if deadline is not None:
        family.add_metric([], _unix(deadline))
    return family


def _source_families(sources: Sequence[SourceState]) -> list[Metric]:
    info = GaugeMetricFamily(
        "recd_source_info",
        "Configured sources and their type; always 1.",
        labels=["source", "type"],
    )
    ended = GaugeMetricFamily(
        "recd_source_last_scan_timestamp_seconds",
        "Unix time at which the last full scan of the source ended; no sample before the first.",
        labels=["source"],
    )
    took = GaugeMetricFamily(
        "recd_source_last_scan_duration_seconds",
        "Duration of the last full scan of the source.",
        labels=["source"],
    )
    degraded = GaugeMetricFamily(
        "recd_source_watch_degraded",
        "1 while the source is rescanned periodically instead of watched (inotify limit), else 0.",
        labels=["source"],
    )
    for source in sources:
        info.add_metric([source.name, source.type], 1)
        if source.last_scan is not None:
            ended.add_metric([source.name], _unix(source.last_scan))
        if source.scan_seconds is not None:
            took.add_metric([source.name], source.scan_seconds)
        degraded.add_metric([source.name], float(source.degraded))
    return [info, ended, took, degraded, *_s3_families(sources)]


def _s3_families(sources: Sequence[SourceState]) -> list[Metric]:
    families = {
        "objects": GaugeMetricFamily(
            "recd_s3_objects",
            "S3 keys holding at least one data version (recordings), at the last poll.",
            labels=["source"],
        ),
        "versions": GaugeMetricFamily(
            "recd_s3_versions",
            "Data versions of those keys (delete markers apart), at the last poll.",
            labels=["source"],
        ),
        "delete_markers": GaugeMetricFamily(
            "recd_s3_delete_markers",
            "Delete markers under the source's prefix, at the last poll.",
            labels=["source"],
        ),
        "bytes": GaugeMetricFamily(
            "recd_s3_bytes",
            "Bytes of every data version of those keys, at the last poll.",
            labels=["source"],
        ),
    }
    for source in sources:
        if source.objects is None:
            continue
        for field_name, family in families.items():
            family.add_metric([source.name], getattr(source.objects, field_name))
    return list(families.values())


def _clock_guard_families(reason: str | None) -> list[Metric]:
    # Every known reason is always exposed (1 or 0), so an alert can name the reason and the
    # series exist before the first pause; an unknown reason is shown rather than hidden.
    reasons: tuple[str, ...] = CLOCK_GUARD_REASONS
    if reason is not None and reason not in reasons:
        reasons = (*reasons, reason)
    return [
        _gauge(
            "recd_clock_guard_paused",
            "1 while the clock guard pauses erasing, else 0.",
            float(reason is not None),
        ),
        _labelled(
            "recd_clock_guard_paused_reason",
            "1 for the reason the clock guard pauses erasing (jump: the wall clock jumped ahead of"
            " the monotonic clock; behind-audit: it is behind the last audit entry; start-gap: at"
            " start it was far ahead of the last audit entry and the newest recording), else 0.",
            "reason",
            ((r, float(r == reason)) for r in reasons),
        ),
    ]


def _request_counts(requests: Mapping[str, int]) -> list[tuple[str, float]]:
    """Every known state in lifecycle order, then any other the snapshot names."""
    others = sorted(state for state in requests if state not in REQUEST_STATES)
    return [(state, float(requests.get(state, 0))) for state in (*REQUEST_STATES, *others)]


def state_families(snapshot: Snapshot, *, per_licence: bool) -> list[Metric]:
    """The state gauges for one snapshot; raises ``ValueError`` on a naive datetime."""
    return [
        *_licence_families(snapshot.licences, per_licence),
        _gauge("recd_held_recordings", "Present recordings kept by a legal hold.", snapshot.held),
        _gauge(
            "recd_overdue_recordings",
            "Present recordings, not held, past their deadline by more than a grace; must stay 0.",
            snapshot.overdue,
        ),
        _deadline_family(snapshot.next_deadline),
        *_source_families(snapshot.sources),
        *_clock_guard_families(snapshot.clock_guard),
        _gauge(
            "recd_audit_write_failed",
            "1 while the audit log cannot be written (erasing paused, retried with backoff), "
            "else 0.",
            float(snapshot.audit_write_failed),
        ),
        _gauge(
            "recd_audit_log_bytes",
            "Bytes of the live audit log; past audit.rotate_size it is closed into a segment.",
            snapshot.audit_log_bytes,
        ),
        _gauge(
            "recd_audit_segments",
            "Closed audit log segments beside the live log (audit.log.<first>-<last>).",
            snapshot.audit_segments,
        ),
        _gauge(
            "recd_audit_log_problem",
            "1 while the audit log does not verify or does not hold the entry the catalogue "
            "reflects (erasing paused until `recctl audit acknowledge`), else 0.",
            float(snapshot.audit_log_problem),
        ),
        _gauge("recd_holds_active", "Legal holds in force.", snapshot.holds_active),
        _labelled(
            "recd_requests",
            "Early-deletion requests per state (every state, 0 when none is in it).",
            "state",
            _request_counts(snapshot.requests),
        ),
        _gauge(
            "recd_dry_run",
            "1 when the daemon runs in dry-run mode and erases nothing, else 0.",
            float(snapshot.mode == "dry-run"),
        ),
    ]


class StateCollector:
    """The scrape-time collector over ``snapshot()``; never fails a scrape."""

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        *,
        per_licence: bool,
        errors: Counter,
        overflows: Counter,
    ) -> None:
        self._snapshot = snapshot
        self.per_licence = per_licence
        self._errors = errors
        self._overflows = overflows

    def describe(self) -> list[Metric]:
        """The families without calling ``snapshot``: lets the registry check for clashes and
        lets ``/metrics?name[]=...`` find this collector."""
        return state_families(_EMPTY, per_licence=self.per_licence)

    def collect(self) -> list[Metric]:
        """Every state family from a fresh snapshot, or none when the snapshot fails."""
        try:
            snapshot = self._snapshot()
            families = state_families(snapshot, per_licence=self.per_licence)
        except Exception as exc:  # a scrape must never fail: report, count, expose events only
            logger.warning("metrics: state left out of this scrape: %s", _one_line(exc))
            logger.debug("metrics: snapshot failure", exc_info=True)
            self._errors.inc()
            return []
        for source in snapshot.sources:  # every source's overflow counter exists from 0
            self._overflows.labels(source.name)
        return families


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _parse_listen(listen: str) -> tuple[str, int]:
    if listen.startswith("["):
        host, bracket, port = listen[1:].partition("]:")
    else:
        host, bracket, port = listen.rpartition(":")
    if not (bracket and host and port.isascii() and port.isdigit() and int(port) <= 65535):
        raise StateError(
            f'metrics.listen {listen}: cannot listen: expected "host:port",'
            ' such as "127.0.0.1:9464" or "[::1]:9464"'
        )
    return host, int(port)


class Metrics:
    """recd's Prometheus metrics on a private registry, and the HTTP endpoint that serves them.

    Usage::

        metrics = Metrics(lambda: daemon.snapshot, per_licence=config.metrics.per_licence)
        metrics.serve("127.0.0.1:9464")
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

    def serve(self, listen: str, *, limits: Limits = HTTP_LIMITS) -> None:
        """Serve the registry over HTTP on ``listen`` ("127.0.0.1:9464", "[::1]:0") within
        ``limits`` (``recd.daemon.serving``); raises ``StateError`` with a one-line message when it
        cannot listen."""
        if self._running is not None:
            raise RuntimeError(f"metrics already served on {self.address}")
        host, port = _parse_listen(listen)
        listener = _listen(listen, host, port)
        endpoint = WsgiEndpoint("metrics", make_wsgi_app(self.registry))
        self._running = BoundedServer(
            listener, endpoint, limits, workers=HTTP_WORKERS, thread_name="recd-metrics",
            count=lambda reason: self.connection_refused("metrics", reason),
        )  # fmt: skip
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


def _listen(listen: str, host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port``, or ``StateError`` naming ``listen``."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise StateError(f"metrics.listen {listen}: cannot listen: {os_reason(exc)}") from None
    sock = socket.socket(family, kind | socket.SOCK_CLOEXEC, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise StateError(f"metrics.listen {listen}: cannot listen: {os_reason(exc)}") from None
    return sock


__all__ = [
    "LicenceTotals",
    "Metrics",
    "Snapshot",
    "SourceState",
    "StateCollector",
    "state_families",
]
