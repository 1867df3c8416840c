"""The recctl tests' shared fixtures: ``log_path``, a real audit log file holding
``helpers.LINES`` (four sealed entries)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import LINES


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "audit.log"
    path.write_bytes(b"".join(LINES))
    return path
