"""The RPM (packaging/rpm/recd.spec, built by packaging/build-rpm as `make rpm` does): its
layout, dependencies, conffile and scriptlets, read back with rpm and rpm2cpio | cpio.

The build is real (rpmbuild, a venv from Debian's /usr/bin/python3, pip fetching recd's
dependencies) and runs once for the module; it takes about 45 s."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import recd
from tests.tools import need

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "packaging" / "rpm" / "recd.spec"
#: The python the test builds with (RHEL 9's default, /usr/bin/python3.11, is not Debian's).
PYTHON = "/usr/bin/python3"
VENV = "/usr/lib/recd"

#: The operator's guides, in /usr/share/doc/recd.
GUIDES = ("README.md", "install.md", "admin-guide.md", "s3.md", "multihost.md")
#: Every path the package holds outside the venv, as the agreed layout says (RPM paths: units in
#: /usr/lib/systemd/system, %license under /usr/share/licenses, zsh's site-functions).
LAYOUT = {
    "/etc/recd",
    "/etc/recd/licences.d",
    "/etc/recd/recd.toml",
    "/usr/bin/recctl",
    "/usr/bin/recd",
    "/usr/lib/systemd/system/recd-once.service",
    "/usr/lib/systemd/system/recd-once.timer",
    "/usr/lib/systemd/system/recd.service",
    "/usr/lib/sysusers.d/recd.conf",
    "/usr/share/bash-completion/completions/recctl",
    "/usr/share/bash-completion/completions/recd",
    "/usr/share/doc/recd",
    *(f"/usr/share/doc/recd/{guide}" for guide in GUIDES),
    "/usr/share/doc/recd/examples",
    "/usr/share/doc/recd/examples/licences.d",
    "/usr/share/doc/recd/examples/licences.d/example.toml",
    "/usr/share/doc/recd/examples/patterns",
    *(f"/usr/share/doc/recd/examples/patterns/{p.name}" for p in (ROOT / "etc/patterns").iterdir()),
    "/usr/share/licenses/recd",
    "/usr/share/licenses/recd/LICENSE",
    "/usr/share/man/man5/recd.toml.5.gz",
    "/usr/share/man/man8/recctl.8.gz",
    "/usr/share/man/man8/recd.8.gz",
    "/usr/share/recd",
    "/usr/share/recd/recd-alerts.test.yml",
    "/usr/share/recd/recd-alerts.yml",
    "/usr/share/recd/recd-dashboard.json",
    "/usr/share/zsh/site-functions/_recctl",
    "/usr/share/zsh/site-functions/_recd",
}


@dataclass(frozen=True)
class Built:
    rpm: Path
    topdir: Path  # rpmbuild's _topdir: its BUILD and BUILDROOT paths must appear in no file
    tree: Path  # the payload, extracted with rpm2cpio | cpio


def run(*argv: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, check=False, cwd=cwd
    )
    assert result.returncode == 0, f"{argv}: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    need("rpmbuild", "rpm", "rpm2cpio", "cpio")
    base = tmp_path_factory.mktemp("rpm")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECD_")}
    env |= {"RPM_TOPDIR": str(base / "top"), "RPM_DIST": str(base / "dist"), "RPM_PYTHON": PYTHON}
    result = subprocess.run(
        [ROOT / "packaging" / "build-rpm"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, "\n".join(result.stderr.splitlines()[-20:])
    rpm = Path(result.stdout.strip())
    tree = base / "tree"
    tree.mkdir()
    payload = subprocess.run(["rpm2cpio", rpm], capture_output=True, check=True).stdout
    subprocess.run(["cpio", "-idm", "--quiet"], input=payload, cwd=tree, check=True)
    yield Built(rpm, base / "top", tree)


def test_the_spec_version_is_recds_version() -> None:
    pattern = r"^%\{!\?recd_version:%global recd_version (\S+)\}$"
    default = re.search(pattern, SPEC.read_text(), re.MULTILINE)
    assert default is not None, "recd.spec: no default recd_version"
    assert default[1] == recd.__version__, "bump recd_version in packaging/rpm/recd.spec"


def test_the_package_is_named_as_make_rpm_promises(built: Built) -> None:
    arch = run("rpm", "-qp", "--qf", "%{ARCH}", built.rpm)
    assert arch == platform.machine()
    assert built.rpm.name == f"recd-{recd.__version__}-1.{arch}.rpm"
    assert built.rpm.parent.name == "dist"


def test_the_layout_is_exactly_the_agreed_one(built: Built) -> None:
    listed = set(run("rpm", "-qlp", built.rpm).splitlines())
    outside = {path for path in listed if path != VENV and not path.startswith(f"{VENV}/")}
    assert outside == LAYOUT
    site = f"{VENV}/lib/python3.11/site-packages"
    venv = {
        f"{VENV}/pyvenv.cfg", f"{VENV}/bin/python3", f"{VENV}/bin/recd", f"{VENV}/bin/recctl",
        f"{site}/recd/__init__.py", f"{site}/recd/__pycache__/__init__.cpython-311.pyc",
        f"{site}/boto3/__init__.py", f"{site}/watchdog/__init__.py", f"{site}/re2/__init__.py",
    }  # fmt: skip
    assert venv <= listed
    assert not {p for p in listed if re.match(rf"{site}/(pip|setuptools)[/-]", p)}


def test_it_requires_the_system_python_and_systemd_only(built: Built) -> None:
    requires = set(run("rpm", "-qp", "--requires", built.rpm).splitlines())
    # rpmlib(...) features are rpm's own; /bin/sh and systemd run the scriptlets.
    assert {r for r in requires if not r.startswith("rpmlib(")} == {PYTHON, "/bin/sh", "systemd"}
    provides = run("rpm", "-qp", "--provides", built.rpm).split("\n")
    assert not [p for p in provides if "python" in p or ".so" in p]  # nothing of the venv's


def test_the_configuration_is_a_conffile_kept_on_upgrade(built: Built) -> None:
    assert run("rpm", "-qcp", built.rpm).splitlines() == ["/etc/recd/recd.toml"]
    flags = run("rpm", "-qp", "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]", built.rpm)
    assert "/etc/recd/recd.toml cn\n" in flags  # %config(noreplace)
    shipped = built.tree / "etc/recd/recd.toml"
    assert shipped.read_bytes() == (ROOT / "etc/recd.toml").read_bytes()


def test_no_file_names_the_build_machines_paths(built: Built) -> None:
    build_path = str(built.topdir).encode()
    named = []
    for path in built.tree.rglob("*"):
        if path.is_symlink():
            if build_path in os.readlink(path).encode():
                named.append(path)
        elif path.is_file() and build_path in path.read_bytes():
            named.append(path)
    assert not named, f"files naming {build_path!r}"


def test_the_units_are_the_repositorys_byte_for_byte(built: Built) -> None:
    units = built.tree / "usr/lib/systemd/system"
    assert sorted(p.name for p in units.iterdir()) == sorted(
        p.name for p in (ROOT / "systemd").iterdir()
    )
    for unit in units.iterdir():
        assert unit.read_bytes() == (ROOT / "systemd" / unit.name).read_bytes(), unit.name


def test_the_venv_runs_recd_from_the_system_python(built: Built) -> None:
    venv = built.tree / VENV.lstrip("/")
    link = venv / "bin/python3"
    while not os.readlink(link).startswith("/"):  # python3 -> python3.11 -> /usr/bin/python3.11
        link = link.parent / os.readlink(link)
    assert os.readlink(link) == PYTHON
    for command in ("recd", "recctl"):
        assert os.readlink(built.tree / "usr/bin" / command) == f"../lib/recd/bin/{command}"
        script = (venv / "bin" / command).read_text()
        assert script.startswith(f"#!{VENV}/bin/python3\n"), script.splitlines()[0]
    # The extracted venv finds its own site-packages: recd and every dependency are inside.
    python = venv / "bin/python3"
    assert run(python, venv / "bin/recd", "--version").strip() == f"recd {recd.__version__}"
    imports = "import boto3, cryptography, mutagen, prometheus_client, re2, watchdog"
    run(python, "-I", "-c", imports)


def test_the_scriptlets_create_the_user_and_manage_the_units(built: Built) -> None:
    scripts = run("rpm", "-qp", "--scripts", built.rpm)
    post, _, rest = scripts.partition("preuninstall scriptlet")
    assert "systemd-sysusers /usr/lib/sysusers.d/recd.conf" in post
    assert "preset recd.service recd-once.timer" in post
    assert "disable --now recd.service recd-once.service recd-once.timer" in rest
    assert "try-restart recd.service" in rest
