"""Fixtures of the audit log tests: ``path``, where a test's audit.log lives (in its own
temporary directory, so segments beside it are the test's alone).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit.log"
