"""The man pages in docs/: they render cleanly and cannot silently fall out of step with the code.

Rendering runs groff (and man and lexgrog, from man-db) when installed and fails on any warning.
The rest reads the roff source, so it runs everywhere: every long option the argparse parsers
accept is documented as an option and shown in the SYNOPSIS, and every option documented exists;
exit statuses, the --once summary wording and the version match the code; every configuration
key the shipped example files use is documented in recd.toml(5), every key documented there is
one the loader accepts, and the example patterns are those in etc/patterns/; the stand-alone
audit log verifier printed in recctl(8) agrees with ``recctl audit verify``. No page, README or
shipped example calls a feature missing ("not in this release" and the like) unless the code
really lacks it, and recd(8) names everything of the catalogue that a rescan does not rebuild.
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import re
import sqlite3
import subprocess
import sys
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recd import __version__
from recd.cli import main as recctl
from recd.config.load import load
from recd.core.audit import GENESIS, AuditDraft, seal, to_line
from recd.core.classify import DEFAULT_TAG_NAMES
from recd.core.model import Mode
from recd.core.requeststate import RequestState
from recd.core.safety import ClockPause
from recd.daemon import main as recd_main
from recd.daemon.collector import LicenceTotals, S3Totals, Snapshot, SourceState
from recd.daemon.metrics import Metrics
from recd.daemon.once import summary_lines
from recd.errors import ConfigInvalid, ExitCode
from recd.service.sweep import LicenceTally, SweepReport
from tests import tools
from tests.config.helpers import uncommented

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = ("recd.8", "recd.toml.5", "recctl.8")
#: Line lengths to render at: a standard terminal and a narrow one.
WIDTHS = ("78n", "58n")


# --- reading roff -------------------------------------------------------------------------------

_ESCAPE = re.compile(r"\\(\(..|\[[^\]]*\]|f(?:\(..|\[[^\]]*\]|.)|.)")
_SPECIAL = {
    "(aq": "'",
    "(ga": "`",
    "(ha": "^",
    "(ti": "~",
    "(dq": '"',
    "(lq": '"',
    "(rq": '"',
    "(em": "--",
    "(bu": "*",
    "[u2026]": "...",
    "e": "\\",
    "-": "-",
    " ": " ",
    "&": "",
    "%": "",
}


def plain(roff: str) -> str:
    """``roff`` text with escapes resolved and font changes dropped."""

    def replace(match: re.Match[str]) -> str:
        code = match[1]
        if code.startswith("f"):
            return ""
        return _SPECIAL.get(code, match[0])

    return _ESCAPE.sub(replace, roff)


@dataclass(frozen=True)
class Line:
    section: str  # the .SH title
    subsection: str  # the .SS title ("" before the first one of a section)
    macro: str  # "" for a text line, else the request name, e.g. "TP"
    text: str  # the line as plain text, without the request name


@dataclass(frozen=True)
class Tag:
    section: str
    subsection: str
    text: str


def _unquote(text: str) -> str:
    return text.strip().strip('"')


def lines(name: str) -> list[Line]:
    """The page's lines (comments left out) with the section each is in."""
    found: list[Line] = []
    section = subsection = ""
    for raw in (DOCS / name).read_text(encoding="ascii").splitlines():
        if raw.startswith(('.\\"', "'\\\"")):
            continue
        macro, text = "", raw
        if raw.startswith("."):
            macro, _, text = raw[1:].partition(" ")
        text = plain(text)
        if macro == "SH":
            section, subsection = _unquote(text), ""
        elif macro == "SS":
            subsection = _unquote(text)
        found.append(Line(section, subsection, macro, text))
    return found


def tags(name: str) -> list[Tag]:
    """The tag of every ``.TP`` and ``.TQ`` paragraph of the page."""
    found: list[Tag] = []
    page = lines(name)
    for line, following in itertools.pairwise(page):
        if line.macro in ("TP", "TQ"):
            found.append(Tag(following.section, following.subsection, following.text.strip()))
    return found


def section_text(name: str, section: str) -> str:
    return "\n".join(line.text for line in lines(name) if line.section == section)


def page_text(name: str) -> str:
    return "\n".join(line.text for line in lines(name))


# --- rendering ----------------------------------------------------------------------------------


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, env=env, timeout=60)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", PAGES)
def test_groff_renders_without_warnings(name: str, width: str) -> None:
    groff = tools.need("groff")
    result = _run([groff, "-man", "-Tutf8", "-ww", "-z", f"-rLL={width}", str(DOCS / name)])
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"groff warnings for docs/{name}:\n{result.stderr}"


@pytest.mark.parametrize("name", PAGES)
def test_man_renders_without_warnings(name: str) -> None:
    man = tools.need("man")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C.UTF-8",
        "MANWIDTH": "80",
        "MANPAGER": "cat",
        "PAGER": "cat",
    }
    result = _run([man, "--warnings", "-l", str(DOCS / name)], env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"man warnings for docs/{name}:\n{result.stderr}"
    assert "NAME" in result.stdout


@pytest.mark.parametrize("name", PAGES)
def test_whatis_entry_parses(name: str) -> None:
    """mandb builds whatis/apropos from the NAME section; lexgrog is its parser."""
    lexgrog = tools.need("lexgrog")
    result = _run([lexgrog, str(DOCS / name)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert " - " in result.stdout


@pytest.mark.parametrize("name", PAGES)
def test_page_is_ascii_with_header_and_version(name: str) -> None:
    source = (DOCS / name).read_bytes()
    assert source.isascii(), "write non-ASCII characters as roff escapes, such as \\(em"
    th = next(line for line in source.decode().splitlines() if line.startswith(".TH "))
    fields = re.findall(r'"[^"]*"|\S+', th)
    title, section = name.rsplit(".", 1)
    assert fields[1:3] == [title.upper(), section]
    assert _unquote(fields[4]) == f"recd {__version__}", "update .TH when the version changes"
    sections = [line.text for line in lines(name) if line.macro == "SH"]
    assert sections[:2] == ["NAME", "SYNOPSIS"]
    assert "SEE ALSO" in sections


# --- options ------------------------------------------------------------------------------------


def long_options(
    parser: argparse.ArgumentParser, command: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], str]]:
    """(command path, option) for every long option of ``parser`` and its subcommands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from long_options(sub, (*command, name))
        for option in action.option_strings:
            if option.startswith("--"):
                yield command, option


def commands(parser: argparse.ArgumentParser) -> set[tuple[str, ...]]:
    return {command for command, _ in long_options(parser) if command}


PARSERS = {"recd.8": recd_main.build_parser, "recctl.8": recctl.build_parser}


@pytest.mark.parametrize("name", PARSERS)
def test_every_option_is_documented(name: str) -> None:
    parser = PARSERS[name]()
    options = {option for _, option in long_options(parser)}
    assert {"--help", "--version"} <= options  # the walk found the parser's options
    documented = {
        option for tag in tags(name) for option in re.findall(r"--[a-z][a-z-]*", tag.text)
    }
    missing = options - documented
    assert not missing, f"docs/{name}: no .TP entry for {sorted(missing)}"
    invented = documented - options
    assert not invented, f"docs/{name}: documents options the parser lacks: {sorted(invented)}"


@pytest.mark.parametrize("name", PARSERS)
def test_synopsis_shows_every_command_and_option(name: str) -> None:
    parser = PARSERS[name]()
    synopsis = section_text(name, "SYNOPSIS")
    words = " ".join(synopsis.split())
    for command in commands(parser):
        assert " ".join(command) in words, f"docs/{name}: SYNOPSIS lacks {' '.join(command)}"
    for _, option in long_options(parser):
        if option != "--help":
            assert re.search(rf"{option}\b", words), f"docs/{name}: SYNOPSIS lacks {option}"


EXIT_CODES = {
    "recd.8": {
        ExitCode.OK,
        ExitCode.FAILED,
        ExitCode.USAGE,
        ExitCode.NOT_ALLOWED,
        ExitCode.PARTIAL,
        ExitCode.UNAVAILABLE,  # recd --once on a shared catalogue it cannot use
        ExitCode.IOERR,
        ExitCode.CONFIG,
    },
    "recctl.8": set(ExitCode) - {ExitCode.CONFIG, ExitCode.IOERR},  # 74: recd --once only
}


@pytest.mark.parametrize("name", EXIT_CODES)
def test_exit_statuses_are_the_codes(name: str) -> None:
    documented = {tag.text for tag in tags(name) if tag.section == "EXIT STATUS"}
    assert documented == {str(int(code)) for code in EXIT_CODES[name]}


def test_recctl_epilog_codes_are_documented() -> None:
    listed = {int(n) for n in re.findall(r"(\d+) [a-z]", recctl.EPILOG)}
    assert listed == {int(code) for code in EXIT_CODES["recctl.8"]}


def test_once_summary_wording_is_documented() -> None:
    """The fixed words of ``recd --once``'s lines, as summary_lines prints them, are in OUTPUT."""
    now = datetime(2026, 11, 23, tzinfo=UTC)
    report = SweepReport(now, dry_run=False)
    report.licences["L"] = LicenceTally(
        recordings=3, due=3, erased=1, failed=1, kept=Counter({"has 2 hard links": 1}), breaker=True
    )
    dry = SweepReport(now, dry_run=True)
    dry.licences["L"] = LicenceTally(recordings=1, due=1, would_erase=1)
    printed = "\n".join(
        summary_lines(report) + summary_lines(dry) + summary_lines(SweepReport(now, False))
    )
    output = " ".join(section_text("recd.8", "OUTPUT").split())
    for words in (
        " recordings,",
        " due,",
        " erased",
        " failed",
        " kept (",
        "BREAKER TRIPPED",
        " would be erased (dry-run)",
        "no recordings",
        "(unclassified)",
    ):
        if words != "(unclassified)":
            assert words in printed, f"summary_lines no longer prints {words!r}; update the test"
        assert words in output, f"docs/recd.8 OUTPUT lacks {words!r}"


# --- metrics ------------------------------------------------------------------------------------

_METRIC_TAG = re.compile(r"(recd_\w+) \((gauge|counter|histogram)(?:; ([\w, ]+))?\)")


def exposed_metrics(*, per_licence: bool) -> dict[str, tuple[str, frozenset[str]]]:
    """name as scraped -> (type as scraped, label names), from a registry whose every family
    has samples (a source, a breaker, a request state, a paused clock guard)."""
    now = datetime(2026, 11, 23, tzinfo=UTC)
    snapshot = Snapshot(
        licences=(LicenceTotals("L", 1, 10, True), LicenceTotals(None, 1, 10, False)),
        held=0,
        overdue=0,
        next_deadline=now,
        sources=(
            SourceState("pbx", "directory", now, 1.0, False, scan_interval=21600),
            SourceState("bucket", "s3", now, 1.0, False, S3Totals(1, 2, 0, 10), scan_interval=300),
        ),
        clock_guard=ClockPause.JUMP,
        holds_active=0,
        requests={RequestState.RECEIVED: 1},
        mode=Mode.ENFORCE,
    )
    metrics = Metrics(lambda: snapshot, per_licence=per_licence)
    metrics.erased("retention", "done", 1, 0.5)
    metrics.indexed(0.1)
    metrics.watch_overflow("pbx")
    metrics.index_error("pbx")
    metrics.object_error("bucket", "SlowDown")
    found: dict[str, tuple[str, frozenset[str]]] = {}
    for family in metrics.registry.collect():
        name = {"counter": f"{family.name}_total", "info": f"{family.name}_info"}.get(
            family.type, family.name
        )
        kind = "gauge" if family.type == "info" else family.type
        labels = {label for sample in family.samples for label in sample.labels} - {"le"}
        found[name] = (kind, frozenset(labels))
    return found


def documented_metrics() -> dict[str, tuple[str, frozenset[str]]]:
    found = {}
    for tag in tags("recd.8"):
        if tag.section != "METRICS":
            continue
        match = _METRIC_TAG.fullmatch(tag.text)
        assert match, f"docs/recd.8 METRICS: tag not of the form NAME (TYPE[; LABELS]): {tag.text}"
        labels = frozenset(part.strip() for part in (match[3] or "").split(",") if part.strip())
        found[match[1]] = (match[2], labels)
    return found


def test_every_metric_is_documented_with_its_type_and_labels() -> None:
    documented = documented_metrics()
    licence_labelled = exposed_metrics(per_licence=True)
    totals = exposed_metrics(per_licence=False)
    assert "recd_overdue_recordings" in licence_labelled  # the walk found the families
    for name, (kind, labels) in licence_labelled.items():
        assert name in documented, f"docs/recd.8 METRICS lacks {name}"
        assert documented[name] == (kind, labels), f"docs/recd.8 METRICS: {name}"
    for name, (kind, labels) in totals.items():
        assert name in documented, f"docs/recd.8 METRICS lacks {name} (per_licence = false)"
        assert documented[name][0] == kind, f"docs/recd.8 METRICS: {name}"
        assert labels <= documented[name][1], f"docs/recd.8 METRICS: {name}"
    invented = documented.keys() - licence_labelled.keys() - totals.keys()
    assert not invented, f"docs/recd.8 documents metrics recd lacks: {sorted(invented)}"


def test_metric_label_schemes_are_documented() -> None:
    """Only the licence families change with per_licence, and the page says which."""
    licence_labelled = exposed_metrics(per_licence=True)
    totals = exposed_metrics(per_licence=False)
    changed = {
        name
        for name in licence_labelled.keys() | totals.keys()
        if licence_labelled.get(name) != totals.get(name)
    }
    text = " ".join(section_text("recd.8", "METRICS").split())
    assert "per_licence = false" in text
    for name in changed:
        assert name in text
    assert changed == {"recd_recordings", "recd_recording_bytes", "recd_breaker_tripped",
                       "recd_breakers_tripped"}  # fmt: skip


# --- recd.toml(5) -------------------------------------------------------------------------------

#: .SS title in recd.toml.5 -> (which file, the table path of its keys).
TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "[daemon]": ("recd", ("daemon",)),
    "[catalogue]": ("recd", ("catalogue",)),
    "[metrics]": ("recd", ("metrics",)),
    "[retention]": ("recd", ("retention",)),
    "[erase]": ("recd", ("erase",)),
    "[audit]": ("recd", ("audit",)),
    "[holds]": ("recd", ("holds",)),
    "[safety]": ("recd", ("safety",)),
    "[[source]]": ("recd", ("source",)),
    "[source.tag_names]": ("recd", ("source", "tag_names")),
    "Licence keys": ("licence", ()),
    "[[agent]]": ("licence", ("agent",)),
}
Key = tuple[str, tuple[str, ...], str]  # (file, table path, key)


def documented_keys() -> set[Key]:
    found: set[Key] = set()
    for tag in tags("recd.toml.5"):
        if tag.subsection in TABLES:
            kind, table = TABLES[tag.subsection]
            found.add((kind, table, tag.text.split()[0]))
    return found


def _keys(data: dict[str, object], kind: str, table: tuple[str, ...] = ()) -> Iterator[Key]:
    for name, value in data.items():
        items = value if isinstance(value, list) else [value]
        if items and all(isinstance(item, dict) for item in items):
            if table:
                yield kind, table, name  # a sub-table is a key of its parent
            for item in items:
                assert isinstance(item, dict)
                yield from _keys(item, kind, (*table, name))
        else:
            yield kind, table, name


def example_keys() -> set[Key]:
    """Every key the shipped examples use, commented-out examples included."""
    found = set(_keys(tomllib.loads(uncommented(ROOT / "etc/recd.toml")), "recd"))
    for pattern in sorted((ROOT / "etc/patterns").glob("*.toml")):
        found |= set(_keys(tomllib.loads(pattern.read_text(encoding="utf-8")), "recd"))
    licence = ROOT / "etc/licences.d/example.toml"
    found |= set(_keys(tomllib.loads(uncommented(licence)), "licence"))
    found |= {("recd", ("source", "tag_names"), field) for field in DEFAULT_TAG_NAMES}
    return found


def test_example_config_with_its_commented_examples_is_valid(tmp_path: Path) -> None:
    """So the keys ``example_keys`` collects are keys the loader knows."""
    config = tmp_path / "recd.toml"
    (tmp_path / "licences.d").mkdir()
    config.write_text(uncommented(ROOT / "etc/recd.toml"), encoding="utf-8")
    loaded = load(config)
    assert {source.type for source in loaded.sources} == {"directory", "s3"}


def test_every_example_key_is_documented() -> None:
    documented = documented_keys()
    assert {TABLES[t] for t in TABLES} == {(kind, table) for kind, table, _ in documented}
    missing = example_keys() - documented
    assert not missing, f"docs/recd.toml.5 does not document {sorted(missing)}"


def _unknown(tmp_path: Path, kind: str, table: tuple[str, ...], key: str) -> list[str]:
    """The "unknown" problems the loader reports for ``key`` set in ``table``."""
    body = {
        (): "",
        ("source",): "[[source]]\n",
        ("source", "tag_names"): "[[source]]\n[source.tag_names]\n",
        ("agent",): "[[agent]]\n",
    }.get(table, f"[{'.'.join(table)}]\n") + f"{key} = {{}}\n"
    config = tmp_path / kind / "recd.toml"
    (config.parent / "licences.d").mkdir(parents=True, exist_ok=True)
    if kind == "recd":
        config.write_text(body, encoding="utf-8")
    else:
        config.write_text("", encoding="utf-8")
        (config.parent / "licences.d" / "x.toml").write_text(body, encoding="utf-8")
    try:
        load(config)
    except ConfigInvalid as exc:
        return [
            str(p)
            for p in exc.problems
            if p.message.startswith("unknown") and re.split(r"[.\]]", p.key)[-1] == key
        ]
    return []


def test_every_documented_key_is_accepted(tmp_path: Path) -> None:
    keys = documented_keys()
    for kind, table in set(TABLES.values()):
        assert _unknown(tmp_path, kind, table, "no_such_key"), "the control key must be unknown"
    refused = [p for kind, table, key in sorted(keys) for p in _unknown(tmp_path, kind, table, key)]
    assert not refused, "docs/recd.toml.5 documents keys the loader refuses:\n" + "\n".join(refused)


def test_example_patterns_are_shown_as_shipped() -> None:
    text = page_text("recd.toml.5")
    patterns = sorted((ROOT / "etc/patterns").glob("*.toml"))
    assert patterns
    for path in patterns:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        sources = data["source"]
        assert isinstance(sources, list)
        for source in sources:
            for key in ("pattern", "started_format", "path"):
                value = str(source[key])
                assert value in text, f"docs/recd.toml.5 does not show {path.name}'s {key}"


def test_source_root_refusals_are_documented() -> None:
    text = section_text("recd.toml.5", "SOURCE ROOTS")
    for directory in ("/etc", "/usr", "/boot", "/proc", "/run", "/var/lib", "/home", "/tmp"):
        assert re.search(rf"{re.escape(directory)}\b", text), directory


# --- recctl(8) ----------------------------------------------------------------------------------


def _verifier_script() -> str:
    """The Python program printed in recctl(8) under VERIFYING A COPY."""
    page = lines("recctl.8")
    block: list[str] = []
    inside = False
    for line in page:
        if line.section != "VERIFYING A COPY":
            continue
        if line.macro == "EX":
            inside, block = True, []
        elif line.macro == "EE":
            if block and block[0].startswith("import hashlib"):
                return "\n".join(block) + "\n"
            inside = False
        elif inside:
            block.append(line.text)
    raise AssertionError("docs/recctl.8: no Python verifier under VERIFYING A COPY")


def _write_log(path: Path) -> None:
    prev = GENESIS
    time = datetime(2026, 11, 23, 13, 43, 9, tzinfo=UTC)
    drafts = [
        AuditDraft("config.loaded", "/etc/recd/recd.toml", {"mode": "enforce"}),
        AuditDraft("erase.done", "8a47373e7a113408a3a4", {"location": "/srv/rec/Zoë 1.wav"}),
        AuditDraft("breaker.tripped", "ACME", {"due": 1200, "recordings": 2000}),
    ]
    with path.open("wb") as file:
        for seq, draft in enumerate(drafts, start=1):
            entry = seal(draft, seq=seq, prev=prev, time=time)
            file.write(to_line(entry))
            prev = entry.hash


def test_printed_verifier_agrees_with_recctl(tmp_path: Path) -> None:
    script = tmp_path / "verify.py"
    script.write_text(_verifier_script(), encoding="utf-8")
    log = tmp_path / "audit.log"
    _write_log(log)
    out = io.StringIO()
    with redirect_stdout(out):
        assert recctl.main(["audit", "verify", "--file", str(log)]) == ExitCode.OK
    last_hash = out.getvalue().split()[-1]
    result = _run([sys.executable, str(script), str(log)])
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"3 entries, last hash {last_hash}\n"

    tampered = tmp_path / "tampered.log"
    tampered.write_bytes(log.read_bytes().replace(b'"due":1200', b'"due":12'))
    assert _run([sys.executable, str(script), str(tampered)]).returncode != 0
    torn = tmp_path / "torn.log"
    torn.write_bytes(log.read_bytes()[:-1])
    assert _run([sys.executable, str(script), str(torn)]).returncode != 0


def test_audit_actions_recd_writes_are_documented() -> None:
    """Every action ``AuditDraft(...)`` is given in recd/ appears as an entry in AUDIT LOG."""
    written = set()
    for path in (ROOT / "recd").rglob("*.py"):
        written |= set(re.findall(r'AuditDraft\(\s*"([a-z_.]+)"', path.read_text(encoding="utf-8")))
    assert "erase.done" in written
    documented = {tag.text for tag in tags("recctl.8") if tag.section == "AUDIT LOG"}
    assert written <= documented, f"docs/recctl.8 lacks {sorted(written - documented)}"


# --- the docs do not call a shipped feature absent ----------------------------------------------

#: Every file an operator reads: the man pages (comments included), the Markdown docs, the
#: README and the shipped configuration examples.
PROSE = (
    sorted(DOCS.glob("*.[58]"))
    + sorted(DOCS.glob("*.md"))
    + [ROOT / "README.md"]
    + sorted((ROOT / "etc").rglob("*.toml"))
)

#: Words that say a feature is missing from this build. A file may use them only about a
#: feature in ABSENT, whose marker shows it really is missing.
_ABSENT_WORDS = re.compile(
    r"\bin this (?:release|version|build)\b"  # "not in this release", "(0 in this release)"
    r"|\bnot (?:yet )?implemented\b|\bunimplemented\b"
    r"|\bno effect yet\b|\bnothing uses (?:it|them) yet\b"
    r"|\b(?:still|yet) to come\b|\bcoming soon\b"
    r"|\b(?:a|the) (?:later|future|next|coming) (?:release|version)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
#: Requests whose arguments groff sets without a space between them.
_ALTERNATING = {"BR", "RB", "BI", "IB", "IR", "RI"}


def said(raw: str) -> tuple[str, str]:
    """(request name, the words as groff sets them) for one roff source line; a comment gives
    its text, so that what is said to maintainers is checked too."""
    if raw.startswith(('.\\"', "'\\\"")):
        return '\\"', plain(raw[3:])
    if not raw.startswith((".", "'")):
        return "", plain(raw)
    macro, _, rest = raw[1:].partition(" ")
    args = [_unquote(arg) for arg in re.findall(r'"[^"]*"|\S+', rest)]
    return macro, plain(("" if macro in _ALTERNATING else " ").join(args))


def prose(path: Path) -> str:
    """The words of ``path`` on one line, roff requests, escapes and comment markers removed,
    so that a phrase split across source lines is found."""
    text = path.read_text(encoding="utf-8").splitlines()
    if path.suffix in (".5", ".8"):
        words = [said(raw)[1] for raw in text]
    else:
        words = [re.sub(r"^\s*#+", "", raw) if path.suffix == ".toml" else raw for raw in text]
    return " ".join(" ".join(words).split())


@dataclass(frozen=True)
class Absent:
    """A feature the docs may call missing: a sentence that does must match ``sentence``, and
    ``still_absent`` must show that the code still lacks it."""

    feature: str
    sentence: re.Pattern[str]
    still_absent: Callable[[], bool]


#: Nothing today: the last, a catalogue on PostgreSQL, shipped with issue 18.
ABSENT: tuple[Absent, ...] = ()


def absence_claims(text: str) -> Iterator[tuple[str, Absent | None]]:
    """Each sentence of ``text`` that calls something missing, with the ABSENT entry that
    allows it (None when none does)."""
    for match in _ABSENT_WORDS.finditer(text):
        ends = [m.end() for m in _SENTENCE_END.finditer(text, 0, match.start())]
        start = ends[-1] if ends else 0
        end = _SENTENCE_END.search(text, match.end())
        sentence = text[start : end.end() if end else len(text)].strip()
        yield sentence, next((a for a in ABSENT if a.sentence.search(sentence)), None)


@pytest.mark.parametrize("path", PROSE, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_shipped_feature_is_called_absent(path: Path) -> None:
    """recd.8 said held recordings, requests and certificates were "not in this release", and
    recd.toml.5 that verification and [[agent]] had "no effect in this release", long after
    they shipped. Such words are allowed only about what ABSENT lists, while its marker shows
    the code still lacks it."""
    name = path.relative_to(ROOT)
    for sentence, allowed in absence_claims(prose(path)):
        assert allowed is not None, (
            f"{name} calls something missing: {sentence!r}. If it has shipped, say what it "
            "does; if it really is missing, add it to ABSENT with a marker in the code"
        )
        assert allowed.still_absent(), (
            f"{name} says {allowed.feature} is missing, but the code has it: {sentence!r}"
        )


def test_absence_checks_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """The words recd.8 and recd.toml.5 used are caught, one sentence at a time; one an ABSENT
    entry allows is matched to it; and "This release writes ..." is not a claim of absence."""
    teleporter = Absent("a teleporter", re.compile("teleporter"), lambda: True)
    monkeypatch.setattr(sys.modules[__name__], "ABSENT", (teleporter,))
    claims = absence_claims(
        "Present recordings kept by a legal hold (0 in this release). Deletion certificates "
        "belong to early-deletion requests, which are not in this release, so it stays empty. "
        "No effect in this release. Not in this release: a teleporter."
    )
    assert [allowed for _, allowed in claims] == [None, None, None, teleporter]
    assert not list(absence_claims("This release writes these actions: erase.done, ..."))


# --- what only the catalogue keeps --------------------------------------------------------------

#: What a rescan of the sources does not rebuild if catalog.db is lost, by table or by
#: "recordings.column", with the words recd(8) uses for it under "Backing up the state".
#: What a lost catalogue loses: recd(8) must name each in "Backing up the state".
CATALOGUE_ONLY = {
    "intents": "Erase intents",
    "s3_legal_holds": "Which S3 object legal holds recd turned on",
    "recordings.erased_at": "Recordings erased or missing before the loss",
}
#: What recd rebuilds from the audit log when the catalogue is lost (issue 14): recd(8) says so.
FROM_THE_LOG = {
    **dict.fromkeys(
        ("holds", "recordings.held", "recordings.not_before"),
        "Legal holds, their releases and the grace after them",
    ),
    **dict.fromkeys(
        ("requests", "request_items"),
        "Early-deletion requests in every state, with their approvals, runs, the outcome for "
        "each recording and their certificates",
    ),
    "breakers": "Mass-deletion breakers, tripped or released",
}
#: What a scan of the sources and the configuration rebuild (``meta``: recd's note of the
#: audit entry the catalogue reflects, written at every start).
REBUILT = {"recordings", "totals", "policies", "scans", "meta", "dir_stamps"} | {
    f"recordings.{column}"
    for column in ("id", "source", "location", "dir", "dev", "ino", "size", "mtime_ns", "licence",
                   "started", "deadline", "fields", "state", "first_seen", "indexed_at",
                   "skip_reason", "ctime_ns", "btime_ns")
}  # fmt: skip


def catalogue_schema(tmp_path: Path) -> set[str]:
    """Every table of a new catalogue, and every column of recordings as "recordings.column"."""
    from recd.adapters.sqlite.catalogue import SqliteCatalogue

    path = tmp_path / "catalog.db"
    SqliteCatalogue(path).close()  # creates it with every migration
    with closing(sqlite3.connect(path)) as db:
        names = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = {name for (name,) in names if not name.startswith("sqlite_")}
        columns = {f"recordings.{row[1]}" for row in db.execute("PRAGMA table_info(recordings)")}
    return tables | columns


def page_words(name: str) -> dict[tuple[str, str], str]:
    """(section, subsection) -> its words on one line, as groff sets them."""
    found: dict[tuple[str, str], list[str]] = {}
    section = subsection = ""
    for raw in (DOCS / name).read_text(encoding="ascii").splitlines():
        macro, text = said(raw)
        if macro == "SH":
            section, subsection = text, ""
        elif macro == "SS":
            subsection = text
        elif macro != '\\"':
            found.setdefault((section, subsection), []).append(text)
    return {key: " ".join(" ".join(texts).split()) for key, texts in found.items()}


def test_what_only_the_catalogue_keeps_is_documented(tmp_path: Path) -> None:
    """recd(8) said that losing catalog.db lost no recording, while legal holds, requests and
    breakers lived only there. Every table of the catalogue, and every column of recordings,
    must be rebuilt by a scan or named in recd(8) as lost with it: a new one fails here until
    it is classified. FILES must say so and point to the backup."""
    schema = catalogue_schema(tmp_path)
    assert {"holds", "requests", "recordings.not_before"} <= schema  # the walk found them
    assert CATALOGUE_ONLY.keys() | FROM_THE_LOG.keys() | REBUILT <= schema, "names what it lacks"
    unclassified = schema - REBUILT - CATALOGUE_ONLY.keys() - FROM_THE_LOG.keys()
    assert not unclassified, (
        f"add {sorted(unclassified)} to CATALOGUE_ONLY, FROM_THE_LOG or REBUILT"
    )
    words = page_words("recd.8")
    backup = words.get(("DESCRIPTION", "Backing up the state"), "")
    assert backup, "docs/recd.8: no 'Backing up the state' under DESCRIPTION"
    for item, named in sorted(CATALOGUE_ONLY.items()):
        assert named in backup, f"docs/recd.8 'Backing up the state' does not say {item} is lost"
    for item, named in sorted(FROM_THE_LOG.items()):
        assert named in backup, f"docs/recd.8 'Backing up the state': {item} is rebuilt, say so"
    entry = re.search(
        r"/var/lib/recd/catalog\.db (.*?) /var/lib/recd/audit\.log", words["FILES", ""]
    )
    assert entry, "docs/recd.8 FILES: no catalog.db entry before audit.log"
    for needed in ("only in the catalogue", "Backing up the state", "recctl backup"):
        assert needed in entry[1], f"docs/recd.8 FILES, catalog.db: {needed!r} missing"
    assert "recctl backup" in backup and "never with cp(1)" in entry[1]
