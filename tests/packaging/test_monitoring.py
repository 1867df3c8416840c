"""The monitoring that ships (packaging/monitoring/): the alert rules, their promtool unit
tests, and the Grafana dashboard, whose every query runs against a real Prometheus scraping a
real recd (tests/packaging/promserver.py).

promtool and prometheus come from Debian's ``prometheus`` package; installing it would start a
server, so .ci/run takes the two binaries out of the .deb into /usr/local/bin instead.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import tools
from tests.e2e.helpers import running, wait_until, write_estate, write_recording
from tests.fakes import NotifyListener
from tests.packaging.promserver import Prometheus

MONITORING = Path(__file__).resolve().parents[2] / "packaging" / "monitoring"
RULES = MONITORING / "recd-alerts.yml"
RULE_TESTS = MONITORING / "recd-alerts.test.yml"

#: What an operator paged at 3 a.m. is told to run: every alert names at least one.
COMMAND = re.compile(r"`(recctl|journalctl|systemctl|recd|sysctl|df|curl|timedatectl) [^`]*`")
SEVERITIES = {"critical", "warning", "info"}


def alert_rules() -> list[dict[str, Any]]:
    """The rules of recd-alerts.yml's one group, ``recd``."""
    doc = yaml.safe_load(RULES.read_text())
    assert [g["name"] for g in doc["groups"]] == ["recd"]
    rules: list[dict[str, Any]] = doc["groups"][0]["rules"]
    return rules


def promtool(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    path = tools.need("promtool")
    return subprocess.run(
        [path, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=300
    )


def test_rules_pass_promtool_check() -> None:
    done = promtool("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout


def test_rules_pass_their_unit_tests() -> None:
    done = promtool("test", "rules", RULE_TESTS.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_severity_a_summary_and_a_command_to_run() -> None:
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)), f"alert names repeat: {names}"
    for rule in rules:
        name = rule["alert"]
        assert name.startswith("Recd"), name
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert set(rule["annotations"]) == {"summary", "description"}, name
        assert "\n" not in rule["annotations"]["summary"], f"{name}: a one-line summary"
        assert COMMAND.search(rule["annotations"]["description"]), (
            f"{name}: the description names no command to run (recctl, journalctl, ...)"
        )
        assert 'job="recd"' in rule["expr"], f'{name}: every expression selects job="recd"'


def test_every_alert_is_unit_tested_firing() -> None:
    """Each alert has a promtool test expecting it to fire (its silence on the other series is
    in the same exp_alerts list), and that test fails when the alert never fires."""
    tests = yaml.safe_load(RULE_TESTS.read_text())
    fired = {
        case["alertname"]
        for group in tests["tests"]
        for case in group["alert_rule_test"]
        if case.get("exp_alerts")
    }
    names = {r["alert"] for r in alert_rules()}
    assert fired == names, f"untested: {sorted(names - fired)}; unknown: {sorted(fired - names)}"


def test_the_unit_tests_fail_when_an_alert_never_fires(tmp_path: Path) -> None:
    """Every alert's expression replaced by one that never fires: promtool test fails, for
    every alert, so no test expectation is vacuous."""
    doc = yaml.safe_load(RULES.read_text())
    for rule in doc["groups"][0]["rules"]:
        rule["expr"] = "vector(0) > 1"
    (tmp_path / RULES.name).write_text(yaml.safe_dump(doc))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    done = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    failed = set(re.findall(r"alertname: (\w+), time:", done.stdout + done.stderr))
    assert failed == {r["alert"] for r in alert_rules()}


def test_rules_file_says_how_to_use_it() -> None:
    head = RULES.read_text().split("groups:")[0]
    for needed in ("rule_files: [/usr/share/recd/recd-alerts.yml]", "job_name: recd", "promtool"):
        assert needed in head, needed


# --- the dashboard, and every query against a real Prometheus scraping a real recd ---------------

DASHBOARD = MONITORING / "recd-dashboard.json"
#: What Grafana puts in place of the dashboard's variables, for a query Prometheus can run.
VARIABLES = {
    "$__rate_interval": "1m",
    "$__range": "5m",
    "$job": "recd",
    "$instance": ".*",
    "$licence": ".*",
}
#: Labelled counters and S3 gauges with no sample until their event (or an S3 source): the
#: scrape carries their HELP and TYPE, which Prometheus keeps as the target's metadata.
EVENT_ONLY = {
    "recd_index_errors_total",
    "recd_s3_erase_errors_total",
    "recd_s3_objects",
    "recd_s3_versions",
    "recd_s3_delete_markers",
    "recd_s3_bytes",
}
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{")


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panel_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr with the variables substituted) of every target of every panel."""
    queries = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            assert "$" not in expr, f"{panel['title']}: unknown variable in {target['expr']}"
            queries.append((panel["title"], expr))
    return queries


def metric_names(expr: str) -> set[str]:
    names = set(SELECTOR.findall(expr))
    assert names, f"no metric selector in {expr}"
    return names


def test_dashboard_shape() -> None:
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    assert {"job", "licence"} <= set(variables)
    assert variables["job"]["current"]["value"] == "recd"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert panel["targets"], f"{panel['title']}: no query"
        assert panel["description"], f"{panel['title']}: no description"
        for target in panel["targets"]:
            assert 'job="$job"' in target["expr"], f"{panel['title']}: {target['expr']}"
    titles = " ".join(p["title"] for p in board["panels"]).lower()
    for wanted in ("overdue", "erasures", "erased bytes", "deletion lag", "indexing lag",
                   "sources", "breakers", "clock guard", "errors", "by licence"):  # fmt: skip
        assert wanted in titles, wanted


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[list[str]]:
    """Two recd daemons (per_licence true and false) that indexed a small estate and erased
    its due recording; yields their metrics addresses; stopped after."""
    addresses = []
    with contextlib.ExitStack() as stack:
        for per_licence in (True, False):
            base = tmp_path / f"recd-{str(per_licence).lower()}"
            port = tools.free_port()
            config = write_estate(base, listen=f"127.0.0.1:{port}", per_licence=per_licence)
            write_recording(base, "L1/old.wav", age_days=40)  # due: erased at the first sweep
            write_recording(base, "L1/new.wav", age_days=1)
            write_recording(base, "L2/other.wav", age_days=1)
            write_recording(base, "no-licence.wav", age_days=1)  # unclassified
            listener = NotifyListener(str(base / "notify"))
            stack.callback(listener.close)
            stack.enter_context(running(config, base, listener))
            assert not (base / "recordings/L1/old.wav").exists()
            addresses.append(f"127.0.0.1:{port}")
        yield addresses


@pytest.mark.tools("prometheus")  # checked before the estate's daemons start
def test_every_dashboard_and_rule_query_runs_on_metrics_recd_exports(
    tmp_path: Path, estate: list[str]
) -> None:
    """Prometheus scrapes both daemons every second and loads recd-alerts.yml: every rule
    evaluates healthy, and every panel's and rule's expression parses, runs and selects only
    metrics the scrapes carry."""
    server = Prometheus(tmp_path / "prometheus", estate, [RULES])
    try:
        server.start()
        wait_until("both recd targets up", lambda: len(server.query(UP)) == 2)
        wait_until("both erasures scraped", lambda: bool(server.query(ERASED)))
        wait_until("every rule evaluated", lambda: all(evaluated(r) for r in rules_of(server)))
        rules = rules_of(server)
        assert [(r["name"], r["health"], r.get("lastError", "")) for r in rules] == [
            (r["alert"], "ok", "") for r in alert_rules()
        ]
        sampled = set(server.api("/api/v1/label/__name__/values"))
        described = set(server.api("/api/v1/metadata"))
        queries = panel_queries(dashboard()) + [(r["name"], r["query"]) for r in rules]
        for title, expr in queries:
            server.query(expr)  # parses and runs, or raises with Prometheus's error
            for name in metric_names(expr):
                if name in EVENT_ONLY:
                    family = name.removesuffix("_total")
                    assert name in described or family in described, f"{title}: {name}"
                else:
                    assert name in sampled, f"{title}: {expr} queries {name}, not scraped"
    finally:
        server.stop()


UP = 'up{job="recd"} == 1'
ERASED = 'sum(recd_deletions_total{job="recd",result="done"}) >= 2'


def evaluated(rule: dict[str, Any]) -> bool:
    """Prometheus reports a rule never evaluated as last evaluated in year 1."""
    return bool(rule["lastEvaluation"] > "2000")


def rules_of(server: Prometheus) -> list[dict[str, Any]]:
    groups = server.api("/api/v1/rules")["groups"]
    assert [g["name"] for g in groups] == ["recd"]
    rules: list[dict[str, Any]] = groups[0]["rules"]
    return rules
