"""packaging/build-deb itself, without building: version mapping and missing-tool messages."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from tests.packaging.helpers import BUILD_DEB, SYSTEM_PYTHON


def _build_deb_module() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("build_deb", str(BUILD_DEB))
    spec = importlib.util.spec_from_loader("build_deb", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("version", "deb"),
    [
        ("0.1.0", "0.1.0"),
        ("1.0.0rc1", "1.0.0~rc1"),
        ("1.2.0.dev3", "1.2.0~dev3"),
        ("0.1.0+1", "0.1.0+1"),
    ],
)
def test_debian_version(version: str, deb: str) -> None:
    assert _build_deb_module().debian_version(version) == deb


def test_build_deb_names_the_missing_packages(tmp_path: Path) -> None:
    """With no build tool on PATH it stops before staging anything, naming what to install."""
    (tmp_path / "bin").mkdir()
    env = {"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path)}
    result = subprocess.run(
        [
            SYSTEM_PYTHON,
            str(BUILD_DEB),
            "--out",
            str(tmp_path / "out"),
            "--work",
            str(tmp_path / "w"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert result.returncode == 1
    missing = "debhelper, dpkg-dev" if os.geteuid() == 0 else "debhelper, dpkg-dev, fakeroot"
    assert result.stderr == (
        f"build-deb: cannot build the .deb without {missing}: "
        f"apt-get install {missing.replace(', ', ' ')}\n"
    )
    assert not (tmp_path / "w").exists()
    assert shutil.which("dpkg-buildpackage", path=env["PATH"]) is None
