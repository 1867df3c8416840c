"""``recd.daemon.metrics``: the event instruments (deletions, indexing, watch overflows, S3 and
audit write errors, rebuilds), the private registry, and promtool's word on a real scrape.

Every test builds its own private registry. The state gauges are tested in test_collector.py,
the HTTP endpoint in test_httpendpoint.py.
"""

from __future__ import annotations

import subprocess

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from recd import __version__
from recd.config.types import Listen
from recd.core.model import Mode
from recd.core.safety import ClockPause
from recd.daemon.metrics import Metrics
from tests import tools
from tests.daemon.helpers import BASE, scrape, snap, value


def test_s3_erase_errors_are_counted_by_source_and_code(metrics: Metrics) -> None:
    assert value(metrics, "recd_s3_erase_errors_total", source="bucket", code="SlowDown") is None
    metrics.object_error("bucket", "SlowDown")
    metrics.object_error("bucket", "SlowDown")
    metrics.object_error("bucket", "AccessDenied")
    assert value(metrics, "recd_s3_erase_errors_total", source="bucket", code="SlowDown") == 2
    assert value(metrics, "recd_s3_erase_errors_total", source="bucket", code="AccessDenied") == 1


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


def test_registry_is_private_unless_passed() -> None:
    own = Metrics(lambda: BASE)
    assert own.registry is not REGISTRY
    assert REGISTRY.get_sample_value("recd_build_info", {"version": __version__}) is None
    registry = CollectorRegistry()
    passed = Metrics(lambda: BASE, registry=registry)
    assert passed.registry is registry
    assert registry.get_sample_value("recd_held_recordings") == 4.0


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
