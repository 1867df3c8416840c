"""The scrape-time half of recd's metrics: the state gauges, computed from a ``Snapshot``.

State (SPEC section 9) comes from one collector that calls ``snapshot()`` on every scrape and
caches nothing. The daemon's ``snapshot`` reads what its loop last published (sources, the
clock guard, the audit log's state) and asks the catalogue, through a read-only connection of
its own, for a few indexed aggregates (totals, overdue, next deadline, breakers, holds,
requests); it runs on the HTTP server's thread. If ``snapshot()`` raises, the scrape still
succeeds: it carries the event instruments only (``recd.daemon.metrics``), one warning line is
logged and ``recd_snapshot_errors_total`` goes up.

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
sources), ``state`` (request states) and the clock guard's ``reason`` (``ClockPause``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from recd.config.types import SourceType
from recd.core.model import Mode
from recd.core.requeststate import RequestState
from recd.core.safety import ClockPause
from recd.core.text import UNCLASSIFIED

logger = logging.getLogger(__name__)


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
    type: SourceType
    last_scan: datetime | None  # end of the last full scan, UTC aware; None before the first
    scan_seconds: float | None  # duration of that scan
    degraded: bool  # watching fell back to periodic scans (inotify watch limit)
    objects: S3Totals | None = None  # S3: what the last completed poll listed
    unwritable: bool = False  # recd cannot write the root: nothing is erased there
    scan_interval: float | None = None  # seconds between full scans: daemon.rescan, S3 poll
    served: bool = True  # this node serves it now (scans, indexes and erases there)


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
    clock_guard: ClockPause | None  # None, or why the clock guard pauses erasing
    holds_active: int
    requests: Mapping[RequestState, int]  # count per state (a state absent: 0)
    mode: Mode
    audit_write_failed: bool = False  # the audit log cannot be written: erasing is paused
    audit_log_bytes: int = 0  # size of the live audit.log
    audit_segments: int = 0  # closed audit log segments beside it
    audit_log_problem: bool = False  # the log does not verify or match: until acknowledged


_EMPTY = Snapshot((), 0, 0, None, (), None, 0, {}, Mode.ENFORCE)


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
    unwritable = GaugeMetricFamily(
        "recd_source_unwritable",
        "1 while recd cannot write the source's root (read-only, e.g. no ReadWritePaths= in the "
        "unit, or no permission): its recordings are indexed but none is erased; else 0.",
        labels=["source"],
    )
    interval = GaugeMetricFamily(
        "recd_source_scan_interval_seconds",
        "Configured time between full scans of the source (daemon.rescan for a directory, its "
        "poll for S3): the alert on a source not scanned compares with it.",
        labels=["source"],
    )
    served = GaugeMetricFamily(
        "recd_source_served",
        "1 while this node serves the source (scans, indexes and erases it), else 0: its nodes "
        "leave this node out, or another node serves it now (one node at a time).",
        labels=["source"],
    )
    for source in sources:
        info.add_metric([source.name, source.type], 1)
        served.add_metric([source.name], float(source.served))
        unwritable.add_metric([source.name], float(source.unwritable))
        if source.scan_interval is not None:
            interval.add_metric([source.name], source.scan_interval)
        if source.last_scan is not None:
            ended.add_metric([source.name], _unix(source.last_scan))
        if source.scan_seconds is not None:
            took.add_metric([source.name], source.scan_seconds)
        degraded.add_metric([source.name], float(source.degraded))
    return [info, ended, took, interval, degraded, unwritable, served, *_s3_families(sources)]


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


def _clock_guard_families(reason: ClockPause | None) -> list[Metric]:
    # Every reason is always exposed (1 or 0), so an alert can name the reason and the series
    # exist before the first pause.
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
            " start it was far ahead of the last audit entry and the newest recording;"
            " database-skew: it differs from the shared catalogue's database server's), else 0.",
            "reason",
            ((str(r), float(r is reason)) for r in ClockPause),
        ),
    ]


def _request_counts(requests: Mapping[RequestState, int]) -> list[tuple[str, float]]:
    """Every state in lifecycle order, 0 when no request is in it, so that an alert on one
    state sees 0 rather than no data."""
    return [(str(state), float(requests.get(state, 0))) for state in RequestState]


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
            float(snapshot.mode is Mode.DRY_RUN),
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
        self._said: str | None = None  # the failure last logged: said again only once changed

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
            said = _one_line(exc)
            level = logging.DEBUG if said == self._said else logging.WARNING
            logger.log(level, "metrics: state left out of this scrape: %s", said)
            logger.debug("metrics: snapshot failure", exc_info=True)
            self._said = said  # a database down for an hour: one line, not one per scrape
            self._errors.inc()
            return []
        if self._said is not None:
            logger.info("metrics: state back in scrapes")
            self._said = None
        for source in snapshot.sources:  # every source's overflow counter exists from 0
            self._overflows.labels(source.name)
        return families


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
