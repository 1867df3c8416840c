"""recd's .deb as built by packaging/build-deb (`make deb`): the layout of issue 16 with the right
owners and modes, the tree's own files shipped unchanged, one conffile, a dependency on the
system python3 only, a relocated environment that names no build path and runs, man pages that
render, and maintainer scripts that keep state on purge unless asked.

Installing it under a real systemd (start, upgrade, purge) is tests/e2e's job; here the package is
read with dpkg-deb and run from an unpacked copy.
"""

from __future__ import annotations

import gzip
import marshal
import re
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from recd import __version__
from tests import tools
from tests.packaging.helpers import (
    LAYOUT,
    REPO,
    STAGING_MARK,
    SYSTEM_PYTHON,
    Entry,
    contents,
    field,
)

pytestmark = pytest.mark.slow  # the session's first test builds the package (a minute or more)

PREFIX = "/usr/lib/recd"

#: Installed path -> the tree's file it is a copy of.
SHIPPED = {
    "/etc/recd/recd.toml": "etc/recd.toml",
    "/lib/systemd/system/recd.service": "systemd/recd.service",
    "/lib/systemd/system/recd-once.service": "systemd/recd-once.service",
    "/lib/systemd/system/recd-once.timer": "systemd/recd-once.timer",
    "/usr/lib/sysusers.d/recd.conf": "packaging/sysusers.d/recd.conf",
    "/usr/share/doc/recd/examples/licences.d/example.toml": "etc/licences.d/example.toml",
    "/usr/share/bash-completion/completions/recd": "packaging/completion/recd.bash",
    "/usr/share/bash-completion/completions/recctl": "packaging/completion/recctl.bash",
    "/usr/share/zsh/vendor-completions/_recd": "packaging/completion/_recd",
    "/usr/share/zsh/vendor-completions/_recctl": "packaging/completion/_recctl",
    "/usr/share/recd/recd-alerts.yml": "packaging/monitoring/recd-alerts.yml",
    "/usr/share/recd/recd-alerts.test.yml": "packaging/monitoring/recd-alerts.test.yml",
    "/usr/share/recd/recd-dashboard.json": "packaging/monitoring/recd-dashboard.json",
    **{
        f"/usr/share/doc/recd/examples/patterns/{p.name}": f"etc/patterns/{p.name}"
        for p in sorted((REPO / "etc/patterns").glob("*.toml"))
    },
}
MAN_PAGES = {
    "/usr/share/man/man8/recd.8.gz": "docs/recd.8",
    "/usr/share/man/man8/recctl.8.gz": "docs/recctl.8",
    "/usr/share/man/man5/recd.toml.5.gz": "docs/recd.toml.5",
}
PROGRAMS = (f"{PREFIX}/bin/recd", f"{PREFIX}/bin/recctl")
LINKS = {
    "/usr/bin/recd": f"{PREFIX}/bin/recd",
    "/usr/bin/recctl": f"{PREFIX}/bin/recctl",
    f"{PREFIX}/bin/python3": SYSTEM_PYTHON,
}
DIRS = ("/etc/recd/licences.d", "/usr/share/doc/recd/examples/patterns")


@pytest.fixture(scope="module")
def members(built_deb: Path) -> dict[str, Entry]:
    return contents(built_deb)


@pytest.fixture(scope="module")
def unpacked(built_deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's files and its DEBIAN/ control files, as ``dpkg-deb -R`` unpacks them."""
    root = tmp_path_factory.mktemp("unpacked") / "root"
    subprocess.run(["dpkg-deb", "-R", str(built_deb), str(root)], check=True)
    return root


def test_the_trees_files_are_shipped_unchanged(members: dict[str, Entry], unpacked: Path) -> None:
    for path, source in SHIPPED.items():
        assert members[path].mode == "-rw-r--r--", path
        assert (unpacked / path[1:]).read_bytes() == (REPO / source).read_bytes(), path


def test_layout_owners_and_modes(members: dict[str, Entry]) -> None:
    for path in PROGRAMS:
        assert members[path].mode == "-rwxr-xr-x", path
    for path, target in LINKS.items():
        assert (members[path].kind, members[path].target) == ("l", target), path
    for path in DIRS:
        assert members[path].mode == "drwxr-xr-x", path
    assert members["/usr/share/doc/recd/copyright"].mode == "-rw-r--r--"
    odd = {
        (e.path, e.mode, e.owner)
        for e in members.values()
        if e.owner != "root/root"
        or e.mode not in ("-rw-r--r--", "-rwxr-xr-x", "drwxr-xr-x", "lrwxrwxrwx")
        or (e.mode == "-rwxr-xr-x" and not e.path.startswith(f"{PREFIX}/bin/"))
    }
    assert not odd, "members not root-owned 0644, 0755 (programs only) or a directory"


def test_the_package_holds_what_the_install_guide_lists(members: dict[str, Entry]) -> None:
    """docs/install.md section 2 is the operator's list of what the package installs."""
    for path in LAYOUT:
        entry = members.get(path.rstrip("/"))
        assert entry is not None, f"{path}: listed in docs/install.md, not in the package"
        assert (entry.kind == "d") == path.endswith("/"), path
    assert any(p.endswith("/site-packages/boto3/__init__.py") for p in members), "no boto3"
    guides = {"README.md", "install.md", "admin-guide.md", "s3.md", "multihost.md"}
    shipped = {PurePosixPath(p).name.removesuffix(".gz") for p in members}
    assert guides <= shipped


def test_state_and_runtime_directories_are_left_to_systemd(members: dict[str, Entry]) -> None:
    """StateDirectory= and RuntimeDirectory= make them, owned by recd: dpkg must not own them,
    or an upgrade or a purge would touch the audit log."""
    assert not {path for path in members if path.startswith(("/var", "/run"))}


def test_conffiles_are_exactly_recd_toml(unpacked: Path) -> None:
    assert (unpacked / "DEBIAN/conffiles").read_text().split() == ["/etc/recd/recd.toml"]


def test_depends_on_the_system_python3_only(built_deb: Path) -> None:
    minor = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info.minor)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert (
        field(built_deb, "Depends") == f"python3 (>= 3.{minor}~), python3 (<< 3.{int(minor) + 1})"
    )
    assert not field(built_deb, "Pre-Depends") and not field(built_deb, "Recommends")
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert (field(built_deb, "Package"), field(built_deb, "Architecture")) == ("recd", arch)
    assert built_deb.name == f"recd_{field(built_deb, 'Version')}_{arch}.deb"


def test_no_file_names_the_build_path(unpacked: Path) -> None:
    named = [
        str(path.relative_to(unpacked))
        for path in unpacked.rglob("*")
        if path.is_file() and not path.is_symlink() and STAGING_MARK in path.read_bytes()
    ]
    assert not named, f"the staging path is left in {named[:20]}"


def test_environment_is_relocated(members: dict[str, Entry], unpacked: Path) -> None:
    """Console scripts run the packaged python3; pip, setuptools and the activate scripts, which
    would name the build path or change the environment, are gone; bytecode names /usr/lib/recd."""
    [lib] = [p for p in members if re.fullmatch(rf"{PREFIX}/lib/python3\.\d+", p)]
    site, tag = f"{lib}/site-packages", "cpython-3" + lib.rsplit(".", 1)[1]
    bin_dir = unpacked / PREFIX[1:] / "bin"
    for script in bin_dir.iterdir():
        if script.is_file() and not script.is_symlink():
            first = script.read_bytes().split(b"\n", 1)[0]
            assert first == f"#!{PREFIX}/bin/python3".encode(), script.name
    gone = ("activate", "pip", "pip3", "easy_install")
    assert not [name for name in gone if (bin_dir / name).exists()]
    assert not [p for p in members if p.startswith((f"{site}/pip/", f"{site}/setuptools/"))]
    cfg = (unpacked / PREFIX[1:] / "pyvenv.cfg").read_text()
    assert "home = /usr/bin" in cfg and "command" not in cfg
    pyc = unpacked / site[1:] / "recd/daemon/__pycache__" / f"main.{tag}.pyc"
    code = marshal.loads(pyc.read_bytes()[16:])
    assert code.co_filename == f"{site}/recd/daemon/main.py"


def _packaged(unpacked: Path, program: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``program`` of the unpacked package as the installed one runs: its interpreter is the
    environment's bin/python3, a link to /usr/bin/python3 (made to resolve in the copy too)."""
    system = unpacked / SYSTEM_PYTHON[1:]
    if not system.exists():
        system.symlink_to(SYSTEM_PYTHON)
    bin_dir = unpacked / PREFIX[1:] / "bin"
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    return subprocess.run(
        [str(bin_dir / "python3"), str(bin_dir / program), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def test_programs_run_from_an_unpacked_copy(built_deb: Path, unpacked: Path) -> None:
    version = field(built_deb, "Version")
    assert __version__ in version
    for program in ("recd", "recctl"):
        result = _packaged(unpacked, program, "--version")
        assert (result.returncode, result.stdout) == (0, f"{program} {__version__}\n"), result


def test_shipped_config_checks_with_no_source(unpacked: Path) -> None:
    config = unpacked / "etc/recd/recd.toml"
    result = _packaged(unpacked, "recd", "check-config", "--config", str(config))
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "no [[source]] is configured" in output
    assert f"{config}: ok (0 sources, 0 licences" in output


@pytest.mark.parametrize("path", sorted(MAN_PAGES))
def test_man_pages_are_the_docs_and_render(unpacked: Path, path: str) -> None:
    page = unpacked / path[1:]
    assert gzip.decompress(page.read_bytes()) == (REPO / MAN_PAGES[path]).read_bytes()
    man = tools.need("man")
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "MANWIDTH": "80", "MANPAGER": "cat"}
    result = subprocess.run(
        [man, "--warnings", "-l", str(page)], capture_output=True, text=True, check=False, env=env
    )
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert "NAME" in result.stdout


def test_postinst_makes_the_users_before_starting_recd(unpacked: Path) -> None:
    script = (unpacked / "DEBIAN/postinst").read_text()
    assert script.index("systemd-sysusers recd.conf") < script.index("deb-systemd-invoke")
    starts = [line for line in script.splitlines() if "deb-systemd-invoke" in line]
    assert starts == ["\t\tdeb-systemd-invoke $_dh_action 'recd.service' >/dev/null || true"]
    # The timer (which conflicts with the daemon) is enabled only if an operator enabled it.
    assert "deb-systemd-helper debian-installed 'recd-once.timer'" in script


def _purge(unpacked: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the package's own purge code (before debhelper's part, which touches systemd's
    state) with /etc/recd and /var/lib/recd moved under ``tmp_path``."""
    ours = (unpacked / "DEBIAN/postrm").read_text().split("# Automatically added by", 1)[0]
    tmp_path.mkdir()
    script = tmp_path / "postrm"
    script.write_text(
        ours.replace("/etc/recd", f"{tmp_path}/etc/recd").replace(
            "/var/lib/recd", f"{tmp_path}/var/lib/recd"
        )
    )
    for name in (
        "etc/recd/licences.d/acme.toml",
        "etc/recd/recd.toml.dpkg-old",
        "var/lib/recd/audit.log",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    return subprocess.run(
        ["sh", "-e", str(script), "purge"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", **env},
    )


def test_purge_keeps_the_state_unless_asked(unpacked: Path, tmp_path: Path) -> None:
    kept = _purge(unpacked, tmp_path / "kept")
    assert kept.returncode == 0, kept.stderr
    assert not (tmp_path / "kept/etc/recd").exists()
    assert (tmp_path / "kept/var/lib/recd/audit.log").exists()
    assert "kept" in kept.stderr and "RECD_PURGE_STATE=yes" in kept.stderr
    gone = _purge(unpacked, tmp_path / "gone", RECD_PURGE_STATE="yes")
    assert gone.returncode == 0, gone.stderr
    assert not (tmp_path / "gone/var/lib/recd").exists()
    assert not (tmp_path / "gone/etc/recd").exists()
