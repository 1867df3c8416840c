"""The test suite's own rules: a missing tool skips and names its package, except in CI; a
machine that cannot isolate a test says why."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import tools, userns

CI_RUN = Path(__file__).resolve().parents[1] / ".ci" / "run"


@pytest.fixture
def no_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A newcomer's machine where no tool is on PATH or in sbin."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(tools, "_SBIN", ())
    monkeypatch.setattr(tools, "REQUIRED", False)


def test_a_missing_tool_skips_the_test_naming_its_package(no_tools: None) -> None:
    with pytest.raises(
        pytest.skip.Exception, match=r"^mkfs\.xfs missing: apt-get install xfsprogs$"
    ):
        tools.need("mkfs.xfs")
    assert tools.optional("ffmpeg") is None  # the test goes on, checking less


def test_every_missing_tool_is_named_not_only_the_first(
    no_tools: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "losetup").write_text("#!/bin/sh\n")
    (tmp_path / "losetup").chmod(0o755)
    assert tools.need("losetup") == str(tmp_path / "losetup")
    with pytest.raises(pytest.skip.Exception, match=r"^mount missing: apt-get install mount$"):
        tools.need("losetup", "mount")


def test_promtools_reason_says_how_to_get_it_without_a_server(no_tools: None) -> None:
    assert tools.missing("promtool") == (
        "promtool missing: apt-get install prometheus (or take usr/bin/promtool out of its .deb,"
        " as .ci/run does)"
    )


def test_a_missing_tool_fails_the_test_where_ci_requires_every_tool(
    no_tools: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tools, "REQUIRED", True)
    reason = (
        r"^mkfs\.btrfs missing: apt-get install btrfs-progs "
        r"\(RECD_TEST_REQUIRE_TOOLS is set: CI runs every test\)$"
    )
    with pytest.raises(pytest.fail.Exception, match=reason):
        tools.need("mkfs.btrfs")
    with pytest.raises(pytest.fail.Exception, match=r"^ffmpeg missing"):
        tools.optional("ffmpeg")


def test_ci_requires_every_tool_and_installs_every_package() -> None:
    script = CI_RUN.read_text()
    assert re.search(rf"^export {tools.REQUIRE_ENV}=1$", script, re.MULTILINE)
    assert "make test" in script
    missing = {p for p in tools.PACKAGES.values() if not re.search(rf"\b{re.escape(p)}\b", script)}
    assert missing == set()


def test_a_machine_without_unshare_or_user_namespaces_says_why(
    no_tools: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = userns._unshare.__wrapped__  # not the cached answer for this machine
    assert probe() == (None, "unshare missing: apt-get install util-linux")
    monkeypatch.setattr(tools, "which", lambda tool: "/bin/false")  # unshare(1) refused
    assert probe() == (None, "no user namespaces here (): needs kernel user namespaces")
