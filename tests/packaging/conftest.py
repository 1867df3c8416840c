"""The packaging tests' shared fixtures: ``built_deb``, the .deb built once per test session;
and, for a failing test that used a systemd container, that container's ``systemctl status``
and journal in the report."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from tests.packaging.container import Container
from tests.packaging.helpers import PREBUILT, build_deb


@pytest.fixture(scope="session")
def built_deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The path of recd's .deb: ``RECD_TEST_DEB`` when set, else one built from this tree with
    packaging/build-deb (once per session, in a temporary directory; dist/ is left alone)."""
    if PREBUILT is not None:
        deb = Path(PREBUILT)
        assert deb.is_file(), f"RECD_TEST_DEB={PREBUILT}: no such file; unset it or build one"
        return deb
    return build_deb(tmp_path_factory.mktemp("deb"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure, add each container's ``systemctl status`` and journal to the report."""
    report = yield
    if report.failed and report.when in ("setup", "call"):
        values = getattr(item, "funcargs", {}).values()
        for box in {id(v): v for v in values if isinstance(v, Container)}.values():
            report.sections.append((f"systemd in {box.state}", box.diagnostics()))
    return report
