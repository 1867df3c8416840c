"""Running recctl as another uid, from a clone anywhere.

A clone under a private directory (mode 0700, as ``/root`` and most homes are), and the virtual
environment in it, cannot be reached by another user. So a test that runs ``recctl`` as another
uid gives that uid what it needs: a copy of the ``recd`` package in a directory every user can
read, and a Python >= 3.11 every user can run. recctl needs only the standard library, so the
copy is run with ``python -S`` (no site-packages, which in a virtual environment may point back
into the private clone)::

    def test_x(foreign: Foreign) -> None:
        subprocess.run([*foreign.recctl, "status"], env=foreign.env, cwd="/", user=65534, ...)

The ``foreign`` fixture is made once per session and removed at its end.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import recd
from tests import tools

PACKAGE = Path(recd.__file__).resolve().parent


def reachable(path: Path, mode: int = stat.S_IXOTH) -> bool:
    """Whether a user with no group in common could reach ``path`` (each directory above it
    o+x) and has ``mode`` on it."""
    real = path.resolve()
    dirs = all(os.stat(p).st_mode & stat.S_IXOTH for p in real.parents)
    return dirs and bool(os.stat(real).st_mode & mode)


def foreign_python() -> str | None:
    """A Python >= 3.11 that every user can run: this one when they can reach it and its
    standard library, else the system's."""
    candidates = [sys.executable] if reachable(Path(sys.base_prefix) / "lib") else []
    candidates += ["/usr/bin/python3", "/usr/local/bin/python3"]
    for candidate in candidates:
        if not os.path.exists(candidate) or not reachable(Path(candidate)):
            continue
        version = subprocess.run(
            [candidate, "-S", "-c", "import sys; print(sys.version_info >= (3, 11))"],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        if version.stdout.strip() == "True":
            return candidate
    return None


def public_directory() -> Path | None:
    """A new directory, mode 0755, that every user can reach: in $TMPDIR when others can pass
    through it, else in /tmp or /var/tmp; None when there is no such place."""
    for parent in (tempfile.gettempdir(), "/tmp", "/var/tmp"):
        if os.path.isdir(parent) and reachable(Path(parent)):
            path = Path(tempfile.mkdtemp(prefix="recd-foreign-", dir=parent))
            path.chmod(0o755)
            return path
    return None


@dataclass(frozen=True, slots=True)
class Foreign:
    """How another uid runs recctl: ``[*recctl, ARGS...]`` with ``env``, from ``cwd="/"``."""

    python: str
    env: dict[str, str]  # PYTHONPATH: the directory that holds the copy of recd

    @property
    def recctl(self) -> list[str]:
        return [self.python, "-S", "-m", "recd.cli.main"]


@pytest.fixture(scope="session")
def foreign() -> Iterator[Foreign]:
    python = foreign_python()
    if python is None:
        tools.unavailable("no Python >= 3.11 that other users can run: apt-get install python3")
    base = public_directory()
    if base is None:
        tools.unavailable("no temporary directory that other users can reach")
    try:
        shutil.copytree(PACKAGE, base / "recd", ignore=shutil.ignore_patterns("__pycache__"))
        for path in (base, *base.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(base),
            "PYTHONDONTWRITEBYTECODE": "1",
            "LC_ALL": "C.UTF-8",
        }
        yield Foreign(python, env)
    finally:
        shutil.rmtree(base, ignore_errors=True)
