"""The shipped systemd units pass `systemd-analyze verify` with no complaint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[1] / "systemd"


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
