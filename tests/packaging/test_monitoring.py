"""The monitoring that ships (packaging/monitoring/): the alert rules, their promtool unit
tests, and the Grafana dashboard, whose every query runs against a real Prometheus scraping a
real recd (tests/packaging/promserver.py).

promtool and prometheus come from Debian's ``prometheus`` package; installing it would start a
server, so .ci/run takes the two binaries out of the .deb into /usr/local/bin instead.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests import tools

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
