"""The state gauges (``recd.daemon.collector``): computed from a ``Snapshot`` at every scrape,
per licence or in totals, word for word; a failing snapshot leaves the state out and is
counted; the collector describes itself without reading the snapshot."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.registry import Collector

from recd import __version__
from recd.config.types import Listen
from recd.core.model import Mode
from recd.core.requeststate import RequestState
from recd.core.safety import ClockPause
from recd.daemon.collector import LicenceTotals, Snapshot, StateCollector
from recd.daemon.metrics import Metrics
from tests.daemon.helpers import BASE, scrape, snap, value

T0_UNIX = 1772366400.0


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
        (None, 0.0, {}),
        (ClockPause.JUMP, 1.0, {"jump": 1.0}),
        (ClockPause.BEHIND_AUDIT, 1.0, {"behind-audit": 1.0}),
        (ClockPause.START_GAP, 1.0, {"start-gap": 1.0}),
        (ClockPause.DATABASE_SKEW, 1.0, {"database-skew": 1.0}),
    ],
)
def test_clock_guard(guard: ClockPause | None, paused: float, reasons: dict[str, float]) -> None:
    m = Metrics(lambda: snap(clock_guard=guard))
    assert value(m, "recd_clock_guard_paused") == paused
    every = ["jump", "behind-audit", "start-gap", "database-skew"]  # each always exposed
    for reason in every:
        want = reasons.get(reason, 0.0)
        assert value(m, "recd_clock_guard_paused_reason", reason=reason) == want
    text = generate_latest(m.registry).decode()
    assert text.count("recd_clock_guard_paused_reason{") == len(every)


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
# HELP recd_source_scan_interval_seconds Configured time between full scans of the source \
(daemon.rescan for a directory, its poll for S3): the alert on a source not scanned compares \
with it.
# TYPE recd_source_scan_interval_seconds gauge
recd_source_scan_interval_seconds{source="pbx"} 21600.0
recd_source_scan_interval_seconds{source="bucket"} 300.0
# HELP recd_source_watch_degraded 1 while the source is rescanned periodically instead of \
watched (inotify limit), else 0.
# TYPE recd_source_watch_degraded gauge
recd_source_watch_degraded{source="pbx"} 1.0
recd_source_watch_degraded{source="bucket"} 0.0
# HELP recd_source_unwritable 1 while recd cannot write the source's root (read-only, e.g. no \
ReadWritePaths= in the unit, or no permission): its recordings are indexed but none is erased; \
else 0.
# TYPE recd_source_unwritable gauge
recd_source_unwritable{source="pbx"} 0.0
recd_source_unwritable{source="bucket"} 0.0
# HELP recd_source_served 1 while this node serves the source (scans, indexes and erases it), \
else 0: its nodes leave this node out, or another node serves it now (one node at a time).
# TYPE recd_source_served gauge
recd_source_served{source="pbx"} 1.0
recd_source_served{source="bucket"} 1.0
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
entry; start-gap: at start it was far ahead of the last audit entry and the newest recording; \
database-skew: it differs from the shared catalogue's database server's), else 0.
# TYPE recd_clock_guard_paused_reason gauge
recd_clock_guard_paused_reason{reason="jump"} 0.0
recd_clock_guard_paused_reason{reason="behind-audit"} 0.0
recd_clock_guard_paused_reason{reason="start-gap"} 0.0
recd_clock_guard_paused_reason{reason="database-skew"} 0.0
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


def test_a_failure_that_lasts_is_logged_once_and_its_end_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A shared catalogue's database down for an hour, scraped every 15 s: one warning (and
    the count of each scrape), one line when the state is back, a warning again if it fails
    again. ``journalctl -g 'metrics: state left out'`` (the shipped alert's advice) finds it."""
    failing = [True]

    def snapshot() -> Snapshot:
        if failing[0]:
            raise RuntimeError("catalogue database: cannot reach the database")
        return snap()

    caplog.set_level(logging.INFO, logger="recd.daemon.collector")
    m = Metrics(snapshot)
    for _ in range(3):
        generate_latest(m.registry)
    failing[0] = False
    generate_latest(m.registry)
    failing[0] = True
    generate_latest(m.registry)
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    left_out = "metrics: state left out of this scrape: RuntimeError: catalogue database: "
    assert said == [
        (logging.WARNING, left_out + "cannot reach the database"),
        (logging.INFO, "metrics: state back in scrapes"),
        (logging.WARNING, left_out + "cannot reach the database"),
    ]
    assert value(m, "recd_snapshot_errors_total") == 5.0  # 4 failed + the one value() made


def test_naive_datetime_is_a_snapshot_error(caplog: pytest.LogCaptureFixture) -> None:
    m = Metrics(lambda: snap(next_deadline=datetime(2026, 3, 1, 12, 0)))
    assert value(m, "recd_snapshot_errors_total") == 1.0  # one scrape, state left out
    assert [r.getMessage() for r in caplog.records] == [
        "metrics: state left out of this scrape:"
        " ValueError: naive datetime 2026-03-01T12:00:00 (expected UTC aware)"
    ]


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
