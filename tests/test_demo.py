"""`make demo`'s estate and config stay valid, and recd does to it what the README says."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from demo.tree import generate
from recd.main import main


def test_demo_estate_runs_as_described(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = generate(tmp_path / "demo", datetime.now(UTC))
    assert main(["check-config", "--config", str(config)]) == 0
    assert capsys.readouterr().out.endswith("ok (2 sources, 3 licences, mode enforce)\n")
    assert main(["--once", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "(unclassified): 1 recording, 0 due, 0 erased"
    assert lines[1] == (
        "3CX-1234-5678: 7 recordings, 4 due, 3 erased, 1 kept (1 modified less than 2m ago)"
    )
    assert lines[2] == "TEN-0001: 4 recordings, 2 due, 2 erased"
    assert lines[3].startswith("TEN-0002: ")
    assert lines[3].endswith(" erased, 1 kept (1 modified less than 2m ago)")
    assert (tmp_path / "demo" / "recordings" / "tenants" / "stray-call.wav").exists()
