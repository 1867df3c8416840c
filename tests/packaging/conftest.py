"""Fixtures for the packaging tests; a failing test that used a systemd container prints that
container's ``systemctl status`` and journal."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

from tests.packaging.container import Container

# TEMPORARY (until i16-deb's built_deb lands): a prebuilt .deb named by RECD_TEST_DEB.
_PREBUILT = os.environ.get("RECD_TEST_DEB") or None


@pytest.fixture(scope="session")
def built_deb() -> Path:
    if _PREBUILT is None:
        pytest.skip("no .deb yet: set RECD_TEST_DEB")
    return Path(_PREBUILT)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure, add each container's ``systemctl status`` and journal to the report."""
    report = yield
    if report.failed and report.when in ("setup", "call"):
        boxes = {
            id(v): v for v in getattr(item, "funcargs", {}).values() if isinstance(v, Container)
        }
        for box in boxes.values():
            report.sections.append((f"systemd in {box.state}", box.diagnostics()))
    return report
