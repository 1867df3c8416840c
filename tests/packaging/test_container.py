"""The systemd e2e harness's own parts that need neither root nor a container: which Debian
mirror the rootfs comes from, and that the cached rootfs is built once, whole, under a lock
(a stand-in ``debootstrap`` on PATH, a real process, plays the slow build)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.packaging import container
from tests.packaging.container import FALLBACK_MIRROR, base_rootfs, debian_mirror

# Makes the two files base_rootfs checks for, counts its runs, and can fail.
FAKE_DEBOOTSTRAP = """#!/bin/sh
echo run >>"{calls}"
[ -f "{fail}" ] && {{ echo "E: Failed getting release file" >&2; exit 1; }}
sleep 0.5
mkdir -p "$4/usr/lib/systemd" "$4/usr/bin"
touch "$4/usr/lib/systemd/systemd" "$4/usr/bin/python3"
"""


def test_the_mirror_is_the_one_apt_uses_for_the_suite(tmp_path: Path) -> None:
    listed = tmp_path / "sources.list.d"
    listed.mkdir()
    (tmp_path / "sources.list").write_text(
        "# deb http://old.example/debian bookworm main\n"
        "deb [arch=amd64] http://security.example/debian-security bookworm-security main\n"
    )
    (listed / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
    )
    (listed / "other.sources.disabled-by-farm").write_text(
        "Types: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\n"
    )
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list").write_text("deb http://one-line.example/debian bookworm main\n")
    assert debian_mirror(tmp_path) == "http://one-line.example/debian"


def test_without_a_bookworm_entry_the_mirror_is_deb_debian_org(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb http://example/debian trixie main\n")
    assert debian_mirror(tmp_path) == FALLBACK_MIRROR == "http://deb.debian.org/debian"


@pytest.fixture
def fake_debootstrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``debootstrap`` first on PATH; the cache in ``tmp_path``/cache; returns the file
    that gets one line per run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    script = bin_dir / "debootstrap"
    script.write_text(FAKE_DEBOOTSTRAP.format(calls=calls, fail=tmp_path / "fail"))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(container, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(container, "ROOTFS_OVERRIDE", None)
    return calls


def test_two_runs_at_once_build_the_rootfs_once(fake_debootstrap: Path) -> None:
    final = container.rootfs_path()
    final.parent.mkdir(parents=True)
    stale = final.parent / f".{final.name}.tmp-killed"  # left by a build that was killed
    stale.mkdir()
    got: list[Path] = []
    runs = [threading.Thread(target=lambda: got.append(base_rootfs())) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert got == [final, final]
    assert fake_debootstrap.read_text() == "run\n"
    assert sorted(p.name for p in final.parent.iterdir()) == [f"{final.name}", f"{final.name}.lock"]
    assert base_rootfs() == final and fake_debootstrap.read_text() == "run\n"  # cached


def test_a_failed_build_leaves_nothing_and_says_why(fake_debootstrap: Path, tmp_path: Path) -> None:
    (tmp_path / "fail").touch()
    with pytest.raises(RuntimeError, match=r"debootstrap bookworm from \S+ failed:\nE: Failed"):
        base_rootfs()
    final = container.rootfs_path()
    assert [p.name for p in final.parent.iterdir()] == [f"{final.name}.lock"]


def test_a_new_include_list_is_a_new_rootfs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(container, "ROOTFS_OVERRIDE", None)
    before = container.rootfs_path()
    monkeypatch.setattr(container, "INCLUDE", (*container.INCLUDE, "strace"))
    assert container.rootfs_path() != before
    assert before.parent == Path("/var/cache/recd-tests")
    monkeypatch.setattr(container, "ROOTFS_OVERRIDE", "/srv/my-rootfs")
    assert container.rootfs_path() == Path("/srv/my-rootfs")
