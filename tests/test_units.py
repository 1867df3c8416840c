"""The shipped systemd units: they pass `systemd-analyze verify` with no complaint, and what
systemd 252 was found to do with them holds (static checks; no systemd is started)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[1] / "systemd"


def settings(unit: Path) -> dict[str, list[str]]:
    """``Section.Key`` -> every value given to it, in order (comments and blank lines left out;
    no unit here continues a line with a backslash)."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return out


def names(unit: dict[str, list[str]], key: str) -> set[str]:
    """The unit names a dependency key lists (each value may list several)."""
    return {name for value in unit.get(f"Unit.{key}", []) for name in value.split()}


SERVICES = {p.name: settings(p) for p in sorted(UNITS.glob("recd*.service"))}


@pytest.mark.tools("systemd-analyze")
def test_units_verify_cleanly(tmp_path: Path) -> None:
    recd = Path(sys.executable).parent / "recd"  # where this checkout installed it
    for unit in sorted(UNITS.glob("recd*.*")):
        text = unit.read_text().replace("/usr/bin/recd", str(recd))
        (tmp_path / unit.name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_an_invalid_config_is_exit_78_of_the_main_process_which_is_not_restarted() -> None:
    """Found under systemd 252: `ExecStartPre=recd check-config` exited 78, but
    RestartPreventExitStatus= does not cover ExecStartPre, so recd was restarted every
    RestartSec forever. recd checks its own configuration (exit 78, tests/daemon/test_main.py)."""
    assert set(SERVICES) == {"recd.service", "recd-once.service"}
    for name, unit in SERVICES.items():
        assert "Service.ExecStartPre" not in unit, (
            f"{name}: ExecStartPre= (its exit 78 escapes RestartPreventExitStatus=; recd checks)"
        )
    daemon = SERVICES["recd.service"]
    assert daemon["Service.Restart"] == ["on-failure"]
    assert "78" in daemon["Service.RestartPreventExitStatus"][0].split()


def test_services_that_conflict_are_ordered_so_one_stops_before_the_other_starts() -> None:
    """Found under systemd 252: without an ordering, starting recd-once while recd ran did not
    wait for recd to stop ("audit.log: in use by another recd process"). systemd orders a stop
    before a start only between ordered units; either direction will do."""
    pairs = 0
    for name, unit in SERVICES.items():
        for other in names(unit, "Conflicts") & set(SERVICES):
            pairs += 1
            theirs = SERVICES[other]
            ordered = other in names(unit, "After") | names(unit, "Before") or name in names(
                theirs, "After"
            ) | names(theirs, "Before")
            assert ordered, f"{name}: Conflicts={other} without After= or Before="
    assert pairs >= 1, "recd.service and recd-once.service no longer conflict"
    daemon, once = SERVICES["recd.service"], SERVICES["recd-once.service"]
    assert "recd-once.service" in names(daemon, "Conflicts")
    # One direction throughout: a Before= one way and a Before= back would be a cycle.
    assert "recd-once.service" in names(daemon, "After")
    assert "recd.service" not in names(once, "After")
