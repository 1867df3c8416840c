"""The shipped systemd units: they pass `systemd-analyze verify` with no complaint, and what
systemd 252 was found to do with them holds (static checks; no systemd is started)."""

from __future__ import annotations

import re
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


#: SPEC 10a: `systemd-analyze security` rates the shipped daemon unit 1.5 or better.
MAX_EXPOSURE = 1.5


def exposure(unit: Path) -> float:
    """The overall exposure ``systemd-analyze security --offline=yes`` gives the unit file (no
    systemd needs to run; the file is read as it is)."""
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert found is not None, f"{unit.name}: no exposure in: {result.stdout}{result.stderr}"
    return float(found[1])


@pytest.mark.tools("systemd-analyze")
@pytest.mark.parametrize("name", ["recd.service", "recd-once.service"])
def test_the_shipped_units_are_rated_at_most_1_5_by_systemd_analyze_security(name: str) -> None:
    rating = exposure(UNITS / name)
    assert rating <= MAX_EXPOSURE, f"{name}: systemd-analyze security rates it {rating}"


@pytest.mark.tools("systemd-analyze")
def test_the_rating_reads_the_unit_so_the_root_unit_of_old_rates_worse(tmp_path: Path) -> None:
    """The check above can fail: the same daemon unit without its hardening (as it was before
    issue 16, running as root) is rated far above the limit."""
    bare = tmp_path / "recd.service"
    lines = (UNITS / "recd.service").read_text().split("\n# Hardening", 1)[0]
    bare.write_text(lines + "\n[Install]\nWantedBy=multi-user.target\n")
    assert exposure(bare) > 9


@pytest.mark.parametrize("name", ["recd.service", "recd-once.service"])
def test_the_units_run_as_recd_with_cap_lease_alone_and_a_read_only_system(name: str) -> None:
    unit = SERVICES[name]
    assert unit["Service.User"] == ["recd"]
    assert unit["Service.Group"] == ["recd"]
    # Leases on files recd does not own (the writer check), and nothing more.
    assert unit["Service.AmbientCapabilities"] == ["CAP_LEASE"]
    assert unit["Service.CapabilityBoundingSet"] == ["CAP_LEASE"]
    assert unit["Service.NoNewPrivileges"] == ["yes"]
    assert unit["Service.ProtectSystem"] == ["strict"]
    # Sites add their roots with a drop-in (`recd check-config` prints it), none is shipped.
    assert "Service.ReadWritePaths" not in unit
    assert unit["Service.StateDirectory"] == ["recd"]
    # ProcSubset=pid would hide /proc/fs/ext4 (the data-journalling probe of the eraser); a
    # capability inside a user namespace (PrivateUsers=) is no CAP_LEASE for the host's files.
    assert "Service.ProcSubset" not in unit
    assert "Service.PrivateUsers" not in unit
    # S3 endpoints are remote: no IP allow list.
    assert "Service.IPAddressDeny" not in unit
    assert unit["Service.MemoryDenyWriteExecute"] == ["yes"]
    assert unit["Service.SystemCallFilter"][0] == "@system-service"


def test_the_daemon_may_hand_its_admin_socket_to_the_admin_group() -> None:
    """recd chowns the admin socket to daemon.admin_group (recd-admin): it must be a member and
    its system call filter must let chown through, or every start fails with EPERM."""
    unit = SERVICES["recd.service"]
    assert unit["Service.SupplementaryGroups"] == ["recd-admin"]
    assert unit["Service.SystemCallFilter"][-1] == "@chown"
    assert unit["Service.RuntimeDirectory"] == ["recd"]
