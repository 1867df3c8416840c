"""External tools the tests use when present, and what a missing one does.

A fresh Debian 12 has none of ``ffmpeg``, ``mkfs.btrfs``, ``mkfs.xfs``, ``xfs_io``, ``promtool``,
``prometheus`` or PostgreSQL's ``initdb``: a test that needs one skips, and its reason names the
tool and the Debian package that brings it (``mkfs.xfs missing: apt-get install xfsprogs``), so
``make test`` passes on a new machine and ``pytest -ra`` says what to install for the whole suite.

CI must run every such test: ``.ci/run`` installs the tools and sets ``RECD_TEST_REQUIRE_TOOLS=1``,
under which a missing tool fails the test instead. The variable is read when this module is
imported, before ``tests/conftest.py``'s ``clean_env`` hides every ``RECD_*`` variable from tests.

Use ``need("mkfs.xfs")`` in a test or helper, or mark a test ``@pytest.mark.tools("ffmpeg")``.
"""

from __future__ import annotations

import os
import shutil
import socket
from typing import NoReturn

import pytest

#: Set (to 1) by .ci/run: a test that needs a missing tool fails instead of skipping.
REQUIRE_ENV = "RECD_TEST_REQUIRE_TOOLS"
REQUIRED = os.environ.get(REQUIRE_ENV, "") not in ("", "0")

#: The Debian package that brings each tool, for the skip reason.
PACKAGES = {
    "bash": "bash",
    "chattr": "e2fsprogs",
    "cpio": "cpio",
    "debootstrap": "debootstrap",
    "dh": "debhelper",
    "dpkg-buildpackage": "dpkg-dev",
    "dpkg-deb": "dpkg",
    "fakeroot": "fakeroot",
    "ffmpeg": "ffmpeg",
    "groff": "groff-base",
    "groupadd": "passwd",
    "initdb": "postgresql",
    "lexgrog": "man-db",
    "losetup": "mount",
    "man": "man-db",
    "mkfs.btrfs": "btrfs-progs",
    "mkfs.ext2": "e2fsprogs",
    "mkfs.ext3": "e2fsprogs",
    "mkfs.ext4": "e2fsprogs",
    "mkfs.xfs": "xfsprogs",
    "mount": "mount",
    "prometheus": "prometheus",
    "nsenter": "util-linux",
    "pg_ctl": "postgresql",
    "postgres": "postgresql",
    "promtool": "prometheus",
    "rpm": "rpm",
    "rpm2cpio": "rpm",
    "rpmbuild": "rpm",
    "systemd-analyze": "systemd",
    "systemd-nspawn": "systemd-container",
    "tune2fs": "e2fsprogs",
    "umount": "mount",
    "unshare": "util-linux",
    "useradd": "passwd",
    "userdel": "passwd",
    "groupdel": "passwd",
    "xfs_io": "xfsprogs",
    "zsh": "zsh",
}

#: Root's tools live in sbin, which an ordinary user's PATH often lacks.
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def which(tool: str) -> str | None:
    """The tool's path: on PATH, else in an sbin directory; None when absent."""
    found = shutil.which(tool)
    if found is None:
        found = shutil.which(tool, path=os.pathsep.join(_SBIN))
    return found


def missing(tool: str) -> str:
    """Why a test cannot run without ``tool``: ``"mkfs.xfs missing: apt-get install xfsprogs"``."""
    reason = f"{tool} missing: apt-get install {PACKAGES[tool]}"
    if tool in ("promtool", "prometheus"):  # Debian's package would also start a server
        reason += f" (or take usr/bin/{tool} out of its .deb, as .ci/run does)"
    if PACKAGES[tool] == "postgresql":  # Debian keeps the server's binaries off PATH
        reason += " (looked in /usr/lib/postgresql/*/bin and on PATH)"
    return reason


def unavailable(reason: str) -> NoReturn:
    """Skip the running test for ``reason``; fail it instead where CI requires every tool."""
    if REQUIRED:
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set: CI runs every test)", pytrace=False)
    pytest.skip(reason)


def need(*tools: str) -> str:
    """The path of the first tool, once every one of ``tools`` is known present; otherwise
    skip (or, under ``RECD_TEST_REQUIRE_TOOLS``, fail) the running test, naming the package."""
    paths = [which(tool) for tool in tools]
    for tool, path in zip(tools, paths, strict=True):
        if path is None:
            unavailable(missing(tool))
    assert paths[0] is not None
    return paths[0]


def optional(tool: str) -> str | None:
    """The tool's path, or None when a test can do without it (it then checks less); under
    ``RECD_TEST_REQUIRE_TOOLS`` a missing tool fails the test, as CI must check everything."""
    path = which(tool)
    if path is None and REQUIRED:
        unavailable(missing(tool))
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close); the
    one helper for every test, e2e run and benchmark that needs a port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
