"""Building and reading recd's .deb for the packaging tests (and the systemd end-to-end tests).

``build_deb(out)`` runs packaging/build-deb (what ``make deb`` runs) and returns the .deb's path;
it skips, naming the Debian package, when a build tool is missing (tests/tools.py). Setting
``RECD_TEST_DEB=/path/recd_X_amd64.deb`` makes the ``built_deb`` fixture (conftest.py) use that
package instead of building one. ``contents(deb)`` lists the package as ``dpkg-deb -c`` does.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests import tools

REPO = Path(__file__).resolve().parents[2]
BUILD_DEB = REPO / "packaging" / "build-deb"
SYSTEM_PYTHON = "/usr/bin/python3"

#: A prebuilt .deb to test instead of building one. Read at import, as tests/conftest.py's
#: clean_env hides every RECD_* variable from the tests themselves.
DEB_ENV = "RECD_TEST_DEB"
PREBUILT = os.environ.get(DEB_ENV) or None

#: Where the build puts recd's environment before dpkg-deb packs it: no packaged file may name it.
STAGING_MARK = b"/debian/recd/usr/lib/recd"


def need_build_tools() -> None:
    """Skip (or fail, in CI) the running test unless a .deb can be built here."""
    tools.need("dpkg-buildpackage", "dh", "dpkg-deb")
    if os.geteuid() != 0:
        tools.need("fakeroot")
    venv = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import ensurepip, venv"], capture_output=True, check=False
    )
    if venv.returncode:
        tools.unavailable(f"{SYSTEM_PYTHON} -m venv missing: apt-get install python3-venv")


def build_deb(out: Path, version: str | None = None) -> Path:
    """Build recd's .deb (``version``, else recd.__version__) with packaging/build-deb, staging
    under ``out``/work, and return the path of the .deb in ``out``."""
    need_build_tools()
    argv = [SYSTEM_PYTHON, str(BUILD_DEB), "--out", str(out), "--work", str(out / "work")]
    if version is not None:
        argv += ["--version", version]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECD_") and k != "DEB_VERSION"}
    result = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    assert result.returncode == 0, (
        f"packaging/build-deb failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    )
    deb = Path(result.stdout.splitlines()[-1])
    assert deb.parent == out.resolve() and deb.is_file(), result.stdout[-2000:]
    return deb


def field(deb: Path, name: str) -> str:
    """One field of the package's control file (``dpkg-deb -f``)."""
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


@dataclass(frozen=True)
class Entry:
    """One member of the package's data archive."""

    path: str  # absolute, as installed: "/etc/recd/recd.toml"; a directory has no trailing "/"
    mode: str  # "-rw-r--r--", "drwxr-xr-x", "lrwxrwxrwx"
    owner: str  # "root/root"
    target: str | None  # a symlink's target, resolved to an absolute path

    @property
    def kind(self) -> str:
        return self.mode[0]


def contents(deb: Path) -> dict[str, Entry]:
    """The package's members by installed path (``dpkg-deb -c``)."""
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    found = {}
    for line in listing.splitlines():
        mode, owner, _size, _date, _time, name = line.split(maxsplit=5)
        target = None
        if mode.startswith("l"):
            name, link = name.split(" -> ", 1)
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name[1:]), link))
        path = "/" + name.removeprefix("./").rstrip("/")
        found[path] = Entry(path, mode, owner, target)
    return found
