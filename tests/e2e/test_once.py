"""`recd` as a subprocess: --once, check-config, exit codes and one-line errors."""

from __future__ import annotations

from pathlib import Path

from recd import __version__
from tests.e2e.helpers import recctl, recd, write_estate, write_recording


def test_once_erases_due_recordings_and_audit_verifies(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    old = write_recording(tmp_path, "L1/old.wav", age_days=31)
    new = write_recording(tmp_path, "L1/new.wav", age_days=2)
    result = recd("--once", "--config", str(config))
    assert (result.returncode, result.stdout) == (0, "L1: 2 recordings, 1 due, 1 erased\n")
    assert not old.exists() and new.exists()
    check = recctl("audit", "verify", "--file", str(tmp_path / "state" / "audit.log"))
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith(f"{tmp_path / 'state' / 'audit.log'}: 3 entries, chain intact")


def test_check_config_reports_every_problem_and_exits_78(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    config.write_text(config.read_text().replace('settle = "0s"', 'settle = "soon"\nsettel = 1'))
    result = recd("check-config", "--config", str(config))
    assert result.returncode == 78
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"recd: {config}: erase.") for line in lines)
    assert result.stdout == ""


def test_check_config_ok(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    result = recd("check-config", "--config", str(config))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"{config}: ok (1 source, 1 licence, mode enforce)\n"


def test_once_with_invalid_config_exits_78_and_touches_nothing(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    old = write_recording(tmp_path, "L1/old.wav", age_days=31)
    config.write_text(config.read_text() + "\n[bogus]\n")
    result = recd("--once", "--config", str(config))
    assert result.returncode == 78
    assert result.stderr == f"recd: {config}: bogus: unknown key\n"
    assert old.exists()
    assert not (tmp_path / "state").exists()


def test_version() -> None:
    result = recd("--version")
    assert (result.returncode, result.stdout) == (0, f"recd {__version__}\n")


def test_state_dir_that_cannot_be_created_is_one_line_exit_1(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    (tmp_path / "blocker").write_text("a file, not a directory")
    config.write_text(
        config.read_text().replace(f'"{tmp_path}/state"', f'"{tmp_path}/blocker/state"')
    )
    result = recd("--once", "--config", str(config))
    assert result.returncode == 1
    assert result.stderr == (
        f"recd: {tmp_path}/blocker/state: cannot create the state directory: Not a directory\n"
    )
