"""The operator's guides, docs/install.md and docs/multihost.md: what they tell an operator to
type or paste is real. In each, every ``recd`` and ``recctl`` command line shown parses with the
real parsers, every ``section.key`` named is one recd.toml(5) documents, every file of the
source tree named exists, every unit drop-in
shown passes ``systemd-analyze verify`` on the shipped unit, and the links resolve. install.md's
table of installed paths is also the agreed package layout (issue 16). Each check is a function
of the text, so ``test_the_checks_can_fail`` shows each one failing on a bad line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from recd.cli import main as recctl
from recd.daemon import main as recd_main
from recd.errors import UsageError
from tests import tools
from tests.packaging.helpers import LAYOUT

ROOT = Path(__file__).resolve().parents[1]
#: Every guide the generic checks read, with a command each must show (so the walk is seen to
#: find them) and the fewest unit drop-ins it shows.
GUIDES = {
    "install.md": (("recctl audit verify", "recd check-config"), 4),  # ReadWritePaths, root, ...
    "multihost.md": (("recctl audit verify --url", "recctl audit export"), 2),  # PGPASSFILE, After=
}

#: What the .deb installs, as agreed for issue 16 (packaging/debian builds to it; the RPM has the
#: units in /usr/lib/systemd/system). The guide's table must list exactly these.
#: Files of packaging/ the agreed layout names; the guide may name them before packaging/ exists.
AGREED_PACKAGING = {
    "packaging/sysusers.d/recd.conf", "packaging/rpm/recd.spec", "packaging/debian/",
    "packaging/completion/", "packaging/monitoring/recd-alerts.yml",
    "packaging/monitoring/recd-alerts.test.yml", "packaging/monitoring/recd-dashboard.json",
    "packaging/tools/sysd-container.sh",
}  # fmt: skip

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_SPAN = re.compile(r"`([^`\n]+)`")


def blocks(text: str, language: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(text) if lang == language]


def spans(text: str) -> list[str]:
    """Inline code spans of the prose (fenced blocks left out)."""
    return _SPAN.findall(_FENCE.sub("", text))


def table_paths(text: str) -> set[str]:
    """The paths in the first column of the table under "What the package installs"."""
    section = text.split("## 2. What the package installs", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {path for row in rows for path in _SPAN.findall(row.split("|")[1])}


def command_lines(text: str) -> list[str]:
    """Every ``recd ...`` or ``recctl ...`` command: in shell blocks (split at ``&&``, ``;`` and
    ``|``, comments cut) and in inline code spans."""
    found = []
    pieces = [line.split(" #")[0] for body in blocks(text, "sh") for line in body.splitlines()]
    for piece in pieces + spans(text):
        for part in re.split(r"&&|;|\|", piece):
            if re.match(r"\s*(recd|recctl) ", part):
                found.append(part.strip())
    return found


def unparsable(commands: list[str]) -> list[str]:
    """The commands the real parsers refuse, each with the reason."""
    parsers = {"recd": recd_main.build_parser(), "recctl": recctl.build_parser()}
    refused = []
    for command in commands:
        program, *args = shlex.split(command)
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):
                parsers[program].parse_args(args)
        except (SystemExit, UsageError, argparse.ArgumentError) as exc:
            refused.append(f"{command}: {stderr.getvalue().strip() or exc}")
    return refused


def documented_keys() -> set[str]:
    """``section.key`` for every key recd.toml(5) documents under a ``.SS [section]``."""
    found = set()
    section = ""
    for line in (ROOT / "docs" / "recd.toml.5").read_text(encoding="ascii").splitlines():
        if match := re.fullmatch(r"\.SS \[(\w+)\]", line):
            section = match[1]
        elif line.startswith(".SS"):
            section = ""
        elif section and (match := re.match(r"\\fB(\w+)\\fR \(", line)):
            found.add(f"{section}.{match[1]}")
    return found


def audit_actions() -> set[str]:
    """The audit actions recctl(8) lists under AUDIT LOG (``erase.done``...), which look like
    keys: each is the ``.B`` line after a ``.TP`` there."""
    text = (ROOT / "docs" / "recctl.8").read_text(encoding="ascii")
    section = text.split("\n.SH AUDIT LOG\n", 1)[1].split("\n.SH ", 1)[0]
    return set(re.findall(r"^\.TP\n\.B ([a-z_]+\.[a-z_.]+)$", section, re.MULTILINE))


def undocumented_keys(text: str) -> set[str]:
    tables = "daemon|catalogue|metrics|retention|erase|audit|holds|safety"
    named = {m[0] for m in re.finditer(rf"\b(?:{tables})\.[a-z_]+\b", text)}
    not_keys = {"audit.log"} | audit_actions()  # the file; erase.done and the like
    return named - documented_keys() - not_keys


def missing_tree_paths(text: str) -> set[str]:
    """Paths of the source tree the guide names that do not exist (a packaging/ path the
    layout agrees on may be named while packaging/ is still to be merged)."""
    named = set(re.findall(r"(?<![\w/.$-])((?:systemd|etc|docs|packaging)/[\w./*-]*\w/?)", text))
    missing = set()
    for path in named:
        exists = any(ROOT.glob(path))
        agreed = path in AGREED_PACKAGING and not (ROOT / "packaging").exists()
        if not (exists or agreed):
            missing.add(path)
    return missing


def anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def broken_links(text: str) -> list[str]:
    anchors = {anchor(h) for h in re.findall(r"^#{2,3} (.+)$", text, re.MULTILINE)}
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith("#"):
            if target[1:] not in anchors:
                broken.append(target)
        elif not ((ROOT / "docs") / target.split("#")[0]).exists():
            broken.append(target)
    return broken


def verify_drop_ins(drop_ins: list[str], tmp_path: Path) -> str:
    """``systemd-analyze verify`` of the shipped units with each drop-in added to recd.service;
    what it says (empty when all is clean)."""
    recd = Path(sys.executable).parent / "recd"
    said = []
    for number, body in enumerate(drop_ins):
        unit_dir = tmp_path / str(number)
        (unit_dir / "recd.service.d").mkdir(parents=True)
        for unit in sorted((ROOT / "systemd").glob("recd*.*")):
            (unit_dir / unit.name).write_text(unit.read_text().replace("/usr/bin/recd", str(recd)))
        (unit_dir / "recd.service.d" / "override.conf").write_text(body)
        units = sorted(str(path) for path in unit_dir.glob("recd*.*") if path.is_file())
        result = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", *units],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        if result.returncode or result.stdout or result.stderr:
            said.append(f"drop-in {number}:\n{body}{result.stdout}{result.stderr}")
    return "\n".join(said)


def guide(name: str = "install.md") -> str:
    return (ROOT / "docs" / name).read_text(encoding="utf-8")


# --- the checks ---------------------------------------------------------------------------------


def test_the_table_of_installed_paths_is_the_agreed_layout() -> None:
    listed = table_paths(guide())
    assert listed == LAYOUT, (
        f"docs/install.md section 2 lacks {sorted(LAYOUT - listed)}, "
        f"lists beyond the layout {sorted(listed - LAYOUT)}"
    )
    for unit in (ROOT / "systemd").glob("recd*.*"):
        assert f"/lib/systemd/system/{unit.name}" in listed
    for page in (ROOT / "docs").glob("*.[58]"):
        assert f"/usr/share/man/man{page.suffix[1]}/{page.name}.gz" in listed


@pytest.mark.parametrize("name", GUIDES)
def test_every_recd_and_recctl_command_parses(name: str) -> None:
    commands = command_lines(guide(name))
    for shown in GUIDES[name][0]:  # the walk found them
        assert any(c.startswith(shown) for c in commands), f"docs/{name}: no {shown}"
    assert not unparsable(commands), f"docs/{name}: " + "\n".join(unparsable(commands))


@pytest.mark.parametrize("name", GUIDES)
def test_every_configuration_key_named_is_documented(name: str) -> None:
    assert {"daemon.rescan", "erase.on_ineffective", "catalogue.url"} <= documented_keys()
    assert not undocumented_keys(guide(name)), f"docs/{name} names keys recd.toml(5) lacks"


@pytest.mark.parametrize("name", GUIDES)
def test_every_file_of_the_tree_named_exists(name: str) -> None:
    missing = missing_tree_paths(guide(name))
    assert not missing, f"docs/{name} names {sorted(missing)}, which the tree lacks"


@pytest.mark.parametrize("name", GUIDES)
def test_links_and_anchors_resolve(name: str) -> None:
    broken = broken_links(guide(name))
    assert not broken, f"docs/{name}: broken links {broken}"


@pytest.mark.tools("systemd-analyze")
@pytest.mark.parametrize("name", GUIDES)
def test_every_drop_in_verifies_on_the_shipped_unit(name: str, tmp_path: Path) -> None:
    drop_ins = blocks(guide(name), "ini")
    assert len(drop_ins) >= GUIDES[name][1]
    said = verify_drop_ins(drop_ins, tmp_path)
    assert said == "", f"docs/{name}: systemd-analyze verify complains:\n{said}"


#: Unit settings the guide says the shipped recd.service has (sections 3 and 4).
_SETTING = re.compile(
    r"^(User|Group|SupplementaryGroups|AmbientCapabilities|CapabilityBoundingSet|ProtectSystem"
    r"|NoNewPrivileges)=(.*)$"
)


def unit_claims_not_in(text: str, unit: str) -> list[str]:
    """Settings the guide's sections 3 and 4 name in prose (not in drop-ins) that ``unit``
    lacks; a span ending in "=" claims the setting is there with any value."""
    prose = text.split("## 3. ", 1)[1].split("## 5. ", 1)[0]
    lines = {line.strip() for line in unit.splitlines()}
    keys = {line.split("=", 1)[0] for line in lines if "=" in line}
    missing = []
    for span in spans(prose):
        found = _SETTING.match(span)
        if found is None:
            continue
        key, value = found.groups()
        if (value and span not in lines) or (not value and key not in keys):
            missing.append(span)
    return missing


def test_the_guide_describes_the_shipped_unit() -> None:
    unit = (ROOT / "systemd" / "recd.service").read_text(encoding="utf-8")
    assert "`User=recd`" in guide()
    assert unit_claims_not_in(guide(), unit) == []


def test_the_readme_points_to_the_guide() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    production = readme.split("## Production", 1)[1].split("\n## ", 1)[0]
    assert "docs/install.md" in production and "make deb" in production
    assert "make demo" in readme and "make test" in readme


def test_the_checks_can_fail(tmp_path: Path) -> None:
    bad = (
        "## 2. What the package installs\n\n| `/usr/bin/recd` | x |\n\n"
        "```sh\nrecctl frobnicate --now\nrecd check-config --colour\n```\n"
        "Set `daemon.rescna` and `catalogue.urls` in [x](#no-such-section) and [y](no-such.md); "
        "see `systemd/recd-twice.service` and `packaging/rpm/other.spec`.\n"
    )
    assert table_paths(bad) == {"/usr/bin/recd"}
    assert len(unparsable(command_lines(bad))) == 2
    assert undocumented_keys(bad) == {"daemon.rescna", "catalogue.urls"}
    assert {"erase.intent", "erase.done"} <= audit_actions()
    missing = missing_tree_paths(bad)
    assert "systemd/recd-twice.service" in missing
    assert ("packaging/rpm/other.spec" in missing) or (ROOT / "packaging/rpm/other.spec").exists()
    assert broken_links(bad) == ["#no-such-section", "no-such.md"]
    claims = "## 3. x\n`User=recd`, `ProtectSystem=strict`, `NoNewPrivileges=`\n## 5. y\n"
    assert unit_claims_not_in(claims, "[Service]\nUser=root\nNoNewPrivileges=yes\n") == [
        "User=recd",
        "ProtectSystem=strict",
    ]
    if tools.which("systemd-analyze"):
        said = verify_drop_ins(["[Service]\nReadWritePath=/srv\n"], tmp_path)
        assert "ReadWritePath" in said
