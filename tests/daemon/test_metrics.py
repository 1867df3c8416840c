"""recd.daemon.metrics: state gauges from a snapshot at scrape time, event instruments, the HTTP
endpoint.

Every test builds its own private registry; the endpoint is scraped over real loopback HTTP.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, generate_latest
from prometheus_client.registry import Collector

from recd import __version__
from recd.config.types import Listen
from recd.core.model import Mode
from recd.core.requeststate import RequestState
from recd.core.safety import ClockPause
from recd.daemon.collector import LicenceTotals, S3Totals, Snapshot, SourceState, StateCollector
from recd.daemon.metrics import Metrics
from recd.errors import StateError
from tests import tools

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T0_UNIX = 1772366400.0

BASE = Snapshot(
    licences=(
        LicenceTotals("acme", recordings=3, bytes=3000, breaker=False),
        LicenceTotals(None, recordings=2, bytes=200, breaker=False),
        LicenceTotals("zeta", recordings=5, bytes=50, breaker=True),
    ),
    held=4,
    overdue=1,
    next_deadline=T0,
    sources=(
        SourceState("pbx", "directory", last_scan=T0, scan_seconds=2.5, degraded=True),
        SourceState(
            "bucket",
            "s3",
            last_scan=None,
            scan_seconds=None,
            degraded=False,
            objects=S3Totals(objects=7, versions=12, delete_markers=2, bytes=4096),
        ),
    ),
    clock_guard=None,
    holds_active=6,
    requests={RequestState.RECEIVED: 2, RequestState.PARTIAL: 1},
    mode=Mode.ENFORCE,
    audit_log_bytes=12345,
    audit_segments=3,
)


def snap(**changes: object) -> Snapshot:
    return dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    m = Metrics(lambda: BASE)
    yield m
    m.close()


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def address(m: Metrics) -> tuple[str, int] | None:
    return m.address  # read through a call so that mypy does not narrow it across serve/close


def state_only(*, per_licence: bool) -> CollectorRegistry:
    """A registry with the state collector alone, for exact exposition text."""
    registry = CollectorRegistry()
    errors = Counter("errors", "Snapshot errors.", registry=None)
    overflows = Counter("overflows", "Overflows.", ["source"], registry=None)
    collector = StateCollector(
        lambda: BASE, per_licence=per_licence, errors=errors, overflows=overflows
    )
    registry.register(collector)
    return registry


def scrape(m: Metrics) -> str:
    assert m.address is not None
    host, port = m.address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text: str = response.read().decode()
    return text


# state gauges -------------------------------------------------------------------------------


def test_per_licence_state_gauges(metrics: Metrics) -> None:
    expected = {
        ("recd_recordings", ("acme",)): 3.0,
        ("recd_recordings", ("zeta",)): 5.0,
        ("recd_recording_bytes", ("acme",)): 3000.0,
        ("recd_recording_bytes", ("zeta",)): 50.0,
        ("recd_breaker_tripped", ("acme",)): 0.0,
        ("recd_breaker_tripped", ("zeta",)): 1.0,
        ("recd_breaker_tripped", ("(unclassified)",)): 0.0,
    }
    for (name, (licence,)), want in expected.items():
        assert value(metrics, name, licence=licence) == want, (name, licence)
    assert value(metrics, "recd_recordings", licence="(unclassified)") is None
    assert value(metrics, "recd_recordings") is None
    assert value(metrics, "recd_breakers_tripped") is None
    assert value(metrics, "recd_unclassified_recordings") == 2.0
    assert value(metrics, "recd_unclassified_bytes") == 200.0


def test_without_licence_labels_totals_cover_classified_licences() -> None:
    m = Metrics(lambda: BASE, per_licence=False)
    assert value(m, "recd_recordings") == 8.0
    assert value(m, "recd_recording_bytes") == 3050.0
    assert value(m, "recd_breakers_tripped") == 1.0
    assert value(m, "recd_unclassified_recordings") == 2.0
    assert value(m, "recd_unclassified_bytes") == 200.0
    assert value(m, "recd_recordings", licence="acme") is None
    assert value(m, "recd_breaker_tripped", licence="zeta") is None
    assert "licence=" not in generate_latest(m.registry).decode()


def test_breaker_count_includes_unclassified_without_licence_labels() -> None:
    tripped = (LicenceTotals(None, 1, 1, breaker=True), LicenceTotals("zeta", 1, 1, breaker=True))
    m = Metrics(lambda: snap(licences=tripped), per_licence=False)
    assert value(m, "recd_breakers_tripped") == 2.0


def test_repeated_licence_is_merged_into_one_series(metrics: Metrics) -> None:
    repeated = (
        LicenceTotals("acme", 1, 10, breaker=False),
        LicenceTotals("acme", 2, 20, breaker=True),
        LicenceTotals(None, 1, 5, breaker=False),
        LicenceTotals(None, 1, 5, breaker=False),
    )
    m = Metrics(lambda: snap(licences=repeated))
    assert value(m, "recd_recordings", licence="acme") == 3.0
    assert value(m, "recd_recording_bytes", licence="acme") == 30.0
    assert value(m, "recd_breaker_tripped", licence="acme") == 1.0
    assert value(m, "recd_unclassified_recordings") == 2.0
    assert generate_latest(m.registry).decode().count('recd_recordings{licence="acme"}') == 1


def test_no_unclassified_recordings_reads_zero_and_has_no_unclassified_breaker() -> None:
    m = Metrics(lambda: snap(licences=(LicenceTotals("acme", 1, 10, breaker=False),)))
    assert value(m, "recd_unclassified_recordings") == 0.0
    assert value(m, "recd_unclassified_bytes") == 0.0
    assert value(m, "recd_breaker_tripped", licence="(unclassified)") is None


def test_counts_deadline_holds_requests_and_mode(metrics: Metrics) -> None:
    assert value(metrics, "recd_held_recordings") == 4.0
    assert value(metrics, "recd_overdue_recordings") == 1.0
    assert value(metrics, "recd_next_deadline_timestamp_seconds") == T0_UNIX
    assert value(metrics, "recd_holds_active") == 6.0
    assert value(metrics, "recd_requests", state="received") == 2.0
    assert value(metrics, "recd_requests", state="partial") == 1.0
    assert value(metrics, "recd_requests", state="verified") == 0.0
    assert value(metrics, "recd_dry_run") == 0.0


def test_dry_run_mode() -> None:
    assert value(Metrics(lambda: snap(mode=Mode.DRY_RUN)), "recd_dry_run") == 1.0


def test_no_next_deadline_has_no_sample_but_keeps_the_family() -> None:
    m = Metrics(lambda: snap(next_deadline=None, requests={}))
    assert value(m, "recd_next_deadline_timestamp_seconds") is None
    lines = generate_latest(m.registry).decode().splitlines()
    assert "# TYPE recd_next_deadline_timestamp_seconds gauge" in lines
    assert not [line for line in lines if line.startswith("recd_next_deadline_timestamp_seconds")]


def test_every_request_state_is_exported_0_included(metrics: Metrics) -> None:
    """An alert on `recd_requests{state="received"}` sees 0, not "no data", when no request
    waits; states in their lifecycle order, any other the catalogue names after them."""
    metrics.serve(Listen("127.0.0.1", 0))
    assert [line for line in scrape(metrics).splitlines() if line.startswith("recd_requests")] == [
        'recd_requests{state="received"} 2.0',
        'recd_requests{state="verified"} 0.0',
        'recd_requests{state="rejected"} 0.0',
        'recd_requests{state="executing"} 0.0',
        'recd_requests{state="completed"} 0.0',
        'recd_requests{state="partial"} 1.0',
    ]

    def requests(m: Metrics) -> list[str]:
        text = generate_latest(m.registry).decode()
        return [line for line in text.splitlines() if line.startswith("recd_requests{")]

    none = requests(Metrics(lambda: snap(requests={})))
    assert len(none) == 6 and all(line.endswith("} 0.0") for line in none)
    one = requests(Metrics(lambda: snap(requests={RequestState.VERIFIED: 1})))
    assert len(one) == 6 and one[1] == 'recd_requests{state="verified"} 1.0'


def test_sources(metrics: Metrics) -> None:
    assert value(metrics, "recd_source_info", source="pbx", type="directory") == 1.0
    assert value(metrics, "recd_source_info", source="bucket", type="s3") == 1.0
    assert value(metrics, "recd_source_last_scan_timestamp_seconds", source="pbx") == T0_UNIX
    assert value(metrics, "recd_source_last_scan_duration_seconds", source="pbx") == 2.5
    assert value(metrics, "recd_source_watch_degraded", source="pbx") == 1.0
    # never scanned: no scan samples rather than a made-up 0
    assert value(metrics, "recd_source_last_scan_timestamp_seconds", source="bucket") is None
    assert value(metrics, "recd_source_last_scan_duration_seconds", source="bucket") is None
    assert value(metrics, "recd_source_watch_degraded", source="bucket") == 0.0


@pytest.mark.parametrize(
    ("guard", "paused", "reasons"),
    [
        (None, 0.0, {"jump": 0.0, "behind-audit": 0.0, "start-gap": 0.0}),
        (ClockPause.JUMP, 1.0, {"jump": 1.0, "behind-audit": 0.0, "start-gap": 0.0}),
        (ClockPause.BEHIND_AUDIT, 1.0, {"jump": 0.0, "behind-audit": 1.0, "start-gap": 0.0}),
        (ClockPause.START_GAP, 1.0, {"jump": 0.0, "behind-audit": 0.0, "start-gap": 1.0}),
    ],
)
def test_clock_guard(guard: ClockPause | None, paused: float, reasons: dict[str, float]) -> None:
    m = Metrics(lambda: snap(clock_guard=guard))
    assert value(m, "recd_clock_guard_paused") == paused
    for reason, want in reasons.items():
        assert value(m, "recd_clock_guard_paused_reason", reason=reason) == want
    text = generate_latest(m.registry).decode()
    assert text.count("recd_clock_guard_paused_reason{") == len(reasons)


def test_snapshot_is_read_at_every_scrape() -> None:
    current = [BASE]
    calls: list[None] = []

    def snapshot() -> Snapshot:
        calls.append(None)
        return current[0]

    m = Metrics(snapshot)
    assert calls == []  # building the registry does not read the state
    assert value(m, "recd_held_recordings") == 4.0
    current[0] = snap(held=9)
    assert value(m, "recd_held_recordings") == 9.0
    assert len(calls) == 2


def test_state_exposition_word_for_word() -> None:
    assert generate_latest(state_only(per_licence=True)).decode() == EXPOSITION


def test_licence_families_without_labels_word_for_word() -> None:
    text = generate_latest(state_only(per_licence=False)).decode()
    head = "\n".join(text.splitlines()[:15]) + "\n"
    assert head == (
        "# HELP recd_recordings Present recordings of every licence"
        " (unclassified: recd_unclassified_recordings).\n"
        "# TYPE recd_recordings gauge\n"
        "recd_recordings 8.0\n"
        "# HELP recd_recording_bytes Bytes of present recordings of every licence.\n"
        "# TYPE recd_recording_bytes gauge\n"
        "recd_recording_bytes 3050.0\n"
        "# HELP recd_breakers_tripped Licences whose mass-deletion breaker stops erasing"
        " (unclassified counts as one).\n"
        "# TYPE recd_breakers_tripped gauge\n"
        "recd_breakers_tripped 1.0\n"
        "# HELP recd_unclassified_recordings Present recordings of no licence.\n"
        "# TYPE recd_unclassified_recordings gauge\n"
        "recd_unclassified_recordings 2.0\n"
        "# HELP recd_unclassified_bytes Bytes of present unclassified recordings.\n"
        "# TYPE recd_unclassified_bytes gauge\n"
        "recd_unclassified_bytes 200.0\n"
    )


EXPOSITION = """\
# HELP recd_recordings Present recordings per licence (unclassified: recd_unclassified_recordings).
# TYPE recd_recordings gauge
recd_recordings{licence="acme"} 3.0
recd_recordings{licence="zeta"} 5.0
# HELP recd_recording_bytes Bytes of present recordings per licence.
# TYPE recd_recording_bytes gauge
recd_recording_bytes{licence="acme"} 3000.0
recd_recording_bytes{licence="zeta"} 50.0
# HELP recd_breaker_tripped 1 while the mass-deletion breaker stops erasing the licence's \
recordings, else 0.
# TYPE recd_breaker_tripped gauge
recd_breaker_tripped{licence="acme"} 0.0
recd_breaker_tripped{licence="zeta"} 1.0
recd_breaker_tripped{licence="(unclassified)"} 0.0
# HELP recd_unclassified_recordings Present recordings of no licence.
# TYPE recd_unclassified_recordings gauge
recd_unclassified_recordings 2.0
# HELP recd_unclassified_bytes Bytes of present unclassified recordings.
# TYPE recd_unclassified_bytes gauge
recd_unclassified_bytes 200.0
# HELP recd_held_recordings Present recordings kept by a legal hold.
# TYPE recd_held_recordings gauge
recd_held_recordings 4.0
# HELP recd_overdue_recordings Present recordings, not held, past their deadline by more than \
a grace; must stay 0.
# TYPE recd_overdue_recordings gauge
recd_overdue_recordings 1.0
# HELP recd_next_deadline_timestamp_seconds Unix time of the earliest deadline of a present \
recording; no sample when there is none.
# TYPE recd_next_deadline_timestamp_seconds gauge
recd_next_deadline_timestamp_seconds 1.7723664e+09
# HELP recd_source_info Configured sources and their type; always 1.
# TYPE recd_source_info gauge
recd_source_info{source="pbx",type="directory"} 1.0
recd_source_info{source="bucket",type="s3"} 1.0
# HELP recd_source_last_scan_timestamp_seconds Unix time at which the last full scan of the \
source ended; no sample before the first.
# TYPE recd_source_last_scan_timestamp_seconds gauge
recd_source_last_scan_timestamp_seconds{source="pbx"} 1.7723664e+09
# HELP recd_source_last_scan_duration_seconds Duration of the last full scan of the source.
# TYPE recd_source_last_scan_duration_seconds gauge
recd_source_last_scan_duration_seconds{source="pbx"} 2.5
# HELP recd_source_watch_degraded 1 while the source is rescanned periodically instead of \
watched (inotify limit), else 0.
# TYPE recd_source_watch_degraded gauge
recd_source_watch_degraded{source="pbx"} 1.0
recd_source_watch_degraded{source="bucket"} 0.0
# HELP recd_s3_objects S3 keys holding at least one data version (recordings), at the last poll.
# TYPE recd_s3_objects gauge
recd_s3_objects{source="bucket"} 7.0
# HELP recd_s3_versions Data versions of those keys (delete markers apart), at the last poll.
# TYPE recd_s3_versions gauge
recd_s3_versions{source="bucket"} 12.0
# HELP recd_s3_delete_markers Delete markers under the source's prefix, at the last poll.
# TYPE recd_s3_delete_markers gauge
recd_s3_delete_markers{source="bucket"} 2.0
# HELP recd_s3_bytes Bytes of every data version of those keys, at the last poll.
# TYPE recd_s3_bytes gauge
recd_s3_bytes{source="bucket"} 4096.0
# HELP recd_clock_guard_paused 1 while the clock guard pauses erasing, else 0.
# TYPE recd_clock_guard_paused gauge
recd_clock_guard_paused 0.0
# HELP recd_clock_guard_paused_reason 1 for the reason the clock guard pauses erasing (jump: \
the wall clock jumped ahead of the monotonic clock; behind-audit: it is behind the last audit \
entry; start-gap: at start it was far ahead of the last audit entry and the newest recording), \
else 0.
# TYPE recd_clock_guard_paused_reason gauge
recd_clock_guard_paused_reason{reason="jump"} 0.0
recd_clock_guard_paused_reason{reason="behind-audit"} 0.0
recd_clock_guard_paused_reason{reason="start-gap"} 0.0
# HELP recd_audit_write_failed 1 while the audit log cannot be written (erasing paused, retried \
with backoff), else 0.
# TYPE recd_audit_write_failed gauge
recd_audit_write_failed 0.0
# HELP recd_audit_log_bytes Bytes of the live audit log; past audit.rotate_size it is closed \
into a segment.
# TYPE recd_audit_log_bytes gauge
recd_audit_log_bytes 12345.0
# HELP recd_audit_segments Closed audit log segments beside the live log \
(audit.log.<first>-<last>).
# TYPE recd_audit_segments gauge
recd_audit_segments 3.0
# HELP recd_audit_log_problem 1 while the audit log does not verify or does not hold the entry \
the catalogue reflects (erasing paused until `recctl audit acknowledge`), else 0.
# TYPE recd_audit_log_problem gauge
recd_audit_log_problem 0.0
# HELP recd_holds_active Legal holds in force.
# TYPE recd_holds_active gauge
recd_holds_active 6.0
# HELP recd_requests Early-deletion requests per state (every state, 0 when none is in it).
# TYPE recd_requests gauge
recd_requests{state="received"} 2.0
recd_requests{state="verified"} 0.0
recd_requests{state="rejected"} 0.0
recd_requests{state="executing"} 0.0
recd_requests{state="completed"} 0.0
recd_requests{state="partial"} 1.0
# HELP recd_dry_run 1 when the daemon runs in dry-run mode and erases nothing, else 0.
# TYPE recd_dry_run gauge
recd_dry_run 0.0
"""


def test_s3_erase_errors_are_counted_by_source_and_code(metrics: Metrics) -> None:
    assert value(metrics, "recd_s3_erase_errors_total", source="bucket", code="SlowDown") is None
    metrics.object_error("bucket", "SlowDown")
    metrics.object_error("bucket", "SlowDown")
    metrics.object_error("bucket", "AccessDenied")
    assert value(metrics, "recd_s3_erase_errors_total", source="bucket", code="SlowDown") == 2
    assert value(metrics, "recd_s3_erase_errors_total", source="bucket", code="AccessDenied") == 1


# a failing snapshot ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "logged"),
    [
        (RuntimeError("catalogue closed"), "RuntimeError: catalogue closed"),
        (OSError("disk\nfull"), "OSError: disk full"),
        (RuntimeError(), "RuntimeError"),
    ],
)
def test_failing_snapshot_leaves_state_out_and_counts(
    error: Exception, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    def snapshot() -> Snapshot:
        raise error

    caplog.set_level(logging.DEBUG, logger="recd.daemon.collector")
    m = Metrics(snapshot)
    text = generate_latest(m.registry).decode()
    assert "recd_snapshot_errors_total 1.0" in text  # counted in the very scrape that failed
    assert "recd_held_recordings" not in text
    assert f'recd_build_info{{version="{__version__}"}} 1.0' in text
    assert 'recd_deletions_total{reason="retention",result="done"} 0.0' in text
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"metrics: state left out of this scrape: {logged}"]
    assert value(m, "recd_snapshot_errors_total") == 2.0


def test_naive_datetime_is_a_snapshot_error(caplog: pytest.LogCaptureFixture) -> None:
    m = Metrics(lambda: snap(next_deadline=datetime(2026, 3, 1, 12, 0)))
    assert value(m, "recd_snapshot_errors_total") == 1.0  # one scrape, state left out
    assert [r.getMessage() for r in caplog.records] == [
        "metrics: state left out of this scrape:"
        " ValueError: naive datetime 2026-03-01T12:00:00 (expected UTC aware)"
    ]


# event instruments ----------------------------------------------------------------------------


def test_every_deletion_series_starts_at_zero(metrics: Metrics) -> None:
    for reason in ("retention", "request"):
        for result in ("done", "failed", "skipped", "dry-run"):
            assert value(metrics, "recd_deletions_total", reason=reason, result=result) == 0.0
    assert value(metrics, "recd_erased_bytes_total") == 0.0
    assert value(metrics, "recd_deletion_lag_seconds_count") == 0.0


def test_erased_done_counts_bytes_and_lag(metrics: Metrics) -> None:
    metrics.erased("retention", "done", 1000, 0.3)
    metrics.erased("request", "done", 24, None)
    assert value(metrics, "recd_deletions_total", reason="retention", result="done") == 1.0
    assert value(metrics, "recd_deletions_total", reason="request", result="done") == 1.0
    assert value(metrics, "recd_erased_bytes_total") == 1024.0
    assert value(metrics, "recd_deletion_lag_seconds_count") == 1.0
    assert value(metrics, "recd_deletion_lag_seconds_sum") == 0.3
    assert value(metrics, "recd_deletion_lag_seconds_bucket", le="0.25") == 0.0
    assert value(metrics, "recd_deletion_lag_seconds_bucket", le="0.5") == 1.0
    assert value(metrics, "recd_deletion_lag_seconds_bucket", le="3600.0") == 1.0


@pytest.mark.parametrize("result", ["failed", "skipped", "dry-run"])
def test_erased_without_erasing_counts_only_the_attempt(metrics: Metrics, result: str) -> None:
    metrics.erased("retention", result, 1000, 5.0)
    assert value(metrics, "recd_deletions_total", reason="retention", result=result) == 1.0
    assert value(metrics, "recd_erased_bytes_total") == 0.0
    assert value(metrics, "recd_deletion_lag_seconds_count") == 0.0


def test_negative_deletion_lag_is_observed_as_zero(metrics: Metrics) -> None:
    metrics.erased("request", "done", 1, -30.0)
    assert value(metrics, "recd_deletion_lag_seconds_sum") == 0.0
    assert value(metrics, "recd_deletion_lag_seconds_bucket", le="0.1") == 1.0


def test_unknown_reason_or_result_is_refused(metrics: Metrics) -> None:
    with pytest.raises(ValueError) as reason:
        metrics.erased("request:R1", "done", 1, 0.0)
    assert str(reason.value) == (
        "unknown deletion reason 'request:R1' (expected one of ('retention', 'request'))"
    )
    with pytest.raises(ValueError) as result:
        metrics.erased("retention", "erased", 1, 0.0)
    assert str(result.value) == (
        "unknown deletion result 'erased'"
        " (expected one of ('done', 'failed', 'skipped', 'dry-run'))"
    )
    assert value(metrics, "recd_deletions_total", reason="request:R1", result="done") is None


def test_indexed(metrics: Metrics) -> None:
    metrics.indexed(0.2)
    metrics.indexed(-1.0)  # a file closed "in the future" (clock skew) counts as no lag
    assert value(metrics, "recd_indexing_lag_seconds_count") == 2.0
    assert value(metrics, "recd_indexing_lag_seconds_sum") == 0.2
    assert value(metrics, "recd_indexing_lag_seconds_bucket", le="0.05") == 1.0
    assert value(metrics, "recd_indexing_lag_seconds_bucket", le="0.25") == 2.0
    assert value(metrics, "recd_indexing_lag_seconds_bucket", le="60.0") == 2.0


def test_watch_overflows_per_source_start_at_zero(metrics: Metrics) -> None:
    metrics.watch_overflow("pbx")
    metrics.watch_overflow("pbx")
    assert value(metrics, "recd_watch_overflows_total", source="pbx") == 2.0
    assert value(metrics, "recd_watch_overflows_total", source="bucket") == 0.0


def test_build_info(metrics: Metrics) -> None:
    assert value(metrics, "recd_build_info", version=__version__) == 1.0


# registry -------------------------------------------------------------------------------------


def test_registry_is_private_unless_passed() -> None:
    own = Metrics(lambda: BASE)
    assert own.registry is not REGISTRY
    assert REGISTRY.get_sample_value("recd_build_info", {"version": __version__}) is None
    registry = CollectorRegistry()
    passed = Metrics(lambda: BASE, registry=registry)
    assert passed.registry is registry
    assert registry.get_sample_value("recd_held_recordings") == 4.0


def test_state_names_are_described_without_reading_the_snapshot() -> None:
    def snapshot() -> Snapshot:
        raise AssertionError("read at registration")

    registry = CollectorRegistry(auto_describe=True)
    Metrics(snapshot, registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Metrics(snapshot, registry=registry)


def test_name_filter_reaches_the_state_collector() -> None:
    # Prometheus' /metrics?name[]=... asks the registry by name, which works only for
    # collectors that describe themselves.
    m = Metrics(lambda: BASE)
    restricted: Collector = m.registry.restricted_registry(["recd_held_recordings"])
    assert generate_latest(restricted).decode() == (
        "# HELP recd_held_recordings Present recordings kept by a legal hold.\n"
        "# TYPE recd_held_recordings gauge\n"
        "recd_held_recordings 4.0\n"
    )


# HTTP endpoint --------------------------------------------------------------------------------


def test_scrape_over_http(metrics: Metrics) -> None:
    assert address(metrics) is None
    metrics.serve(Listen("127.0.0.1", 0))
    assert metrics.address is not None
    host, port = metrics.address
    assert host == "127.0.0.1"
    assert port > 0
    metrics.erased("retention", "done", 10, 1.0)
    lines = scrape(metrics).splitlines()
    assert 'recd_recordings{licence="acme"} 3.0' in lines
    assert 'recd_deletions_total{reason="retention",result="done"} 1.0' in lines
    assert f'recd_build_info{{version="{__version__}"}} 1.0' in lines


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this host")
def test_scrape_over_ipv6_loopback(metrics: Metrics) -> None:
    metrics.serve(Listen("::1", 0))
    assert metrics.address is not None
    host, port = metrics.address
    assert host == "::1"
    with urllib.request.urlopen(f"http://[::1]:{port}/metrics", timeout=10) as response:
        assert b"recd_held_recordings 4.0\n" in response.read()


def test_address_in_use(metrics: Metrics) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StateError) as exc:
            metrics.serve(Listen("127.0.0.1", port))
    assert (
        str(exc.value) == f"metrics.listen 127.0.0.1:{port}: cannot listen: Address already in use"
    )
    assert metrics.address is None


def test_address_not_on_this_host(metrics: Metrics) -> None:
    with pytest.raises(StateError) as exc:
        metrics.serve(Listen("192.0.2.1", 9464))  # TEST-NET-1: never a local address
    assert str(exc.value) == (
        "metrics.listen 192.0.2.1:9464: cannot listen: Cannot assign requested address"
    )


def test_serve_twice_is_a_bug(metrics: Metrics) -> None:
    metrics.serve(Listen("127.0.0.1", 0))
    with pytest.raises(RuntimeError) as exc:
        metrics.serve(Listen("127.0.0.1", 0))
    assert str(exc.value) == f"metrics already served on {metrics.address}"


def test_close_stops_the_server_and_its_thread_and_is_idempotent() -> None:
    before = set(threading.enumerate())
    m = Metrics(lambda: BASE)
    m.close()  # never served: nothing to do
    m.serve(Listen("127.0.0.1", 0))
    assert m.address is not None
    host, port = m.address
    # one thread serves the connections, one worker computes the scrapes
    assert sorted(t.name for t in set(threading.enumerate()) - before) == [
        "recd-metrics",
        "recd-metrics-worker",
    ]
    m.close()
    assert address(m) is None
    assert not set(threading.enumerate()) - before
    with pytest.raises(OSError), socket.create_connection((host, port), timeout=5):
        pass
    m.close()
    m.serve(Listen(host, port))  # the port is free again for a restart
    m.close()


# promtool -------------------------------------------------------------------------------------


@pytest.mark.parametrize("per_licence", [True, False])
def test_promtool_accepts_a_real_scrape(per_licence: bool) -> None:
    promtool = tools.need("promtool")
    state = snap(clock_guard=ClockPause.BEHIND_AUDIT, mode=Mode.DRY_RUN)
    m = Metrics(lambda: state, per_licence=per_licence)
    try:
        m.serve(Listen("127.0.0.1", 0))
        m.erased("retention", "done", 10, 1.0)
        m.indexed(0.1)
        m.watch_overflow("pbx")
        text = scrape(m)
    finally:
        m.close()
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert (check.returncode, check.stdout, check.stderr) == (0, "", "")


def test_audit_outage_gauge_and_failed_appends_counter() -> None:
    m = Metrics(lambda: snap(audit_write_failed=True))
    assert value(m, "recd_audit_write_failed") == 1.0
    assert value(m, "recd_audit_write_errors_total") == 0.0
    m.audit_write_failed()
    m.audit_write_failed()
    assert value(m, "recd_audit_write_errors_total") == 2.0
    assert value(Metrics(snap), "recd_audit_write_failed") == 0.0


def test_audit_log_problem_gauge_and_rebuilds_counter() -> None:
    assert value(Metrics(lambda: snap(audit_log_problem=True)), "recd_audit_log_problem") == 1.0
    m = Metrics(snap)
    assert value(m, "recd_audit_log_problem") == 0.0
    for why in ("missing", "empty", "unmarked"):
        assert value(m, "recd_catalogue_rebuilds_total", why=why) == 0.0
    m.catalogue_rebuilt("behind")
    m.catalogue_rebuilt("behind")
    assert value(m, "recd_catalogue_rebuilds_total", why="behind") == 2.0
    with pytest.raises(ValueError, match="unknown rebuild reason 'lost'"):
        m.catalogue_rebuilt("lost")
