"""Catastrophic regex (issue 13, point 13).

A source pattern with nested quantifiers, ``(a+)+$``, against one long hostile name held the
daemon's loop for seconds per match (``recctl status`` 9.7 s, an erasure 6.7 s late). Patterns
are now compiled for RE2, which matches in time linear in the name; what RE2 cannot take
(backreferences, lookaround) is refused at load. Names that are not valid UTF-8 (lone
surrogates from ``os.fsdecode``) are matched with U+FFFD in their place and never raise.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recd.config.load import load
from recd.config.patterns import LinearPattern
from recd.core.classify import ClassifyRule, classify, matchable, path_fields
from recd.core.model import Provenance
from recd.daemon.main import main
from recd.errors import ConfigInvalid
from tests.e2e.helpers import write_estate, write_recording

MTIME = datetime(2024, 3, 1, tzinfo=UTC)
#: Python's re needs about 2 s for (a+)+$ on 24 a's and four times that per two more.
CATASTROPHIC = [
    r"(a+)+$",
    r"(a|a)*$",
    r"(a|aa)+$",
    r"(a*)*b",
    r"(\w+\d*)+$",
    r"^(([a-z])+.)+[A-Z]([a-z])+$",
]
HOSTILE = "a" * 4000 + "!"


def rule(pattern: str, **given: object) -> ClassifyRule:
    return ClassifyRule(timezone=UTC, pattern=LinearPattern(pattern), **given)  # type: ignore[arg-type]


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_a_catastrophic_pattern_matches_a_hostile_name_in_linear_time(pattern: str) -> None:
    r = rule(f"(?P<call_id>{pattern})")
    start = time.perf_counter()
    for _ in range(10):
        path_fields(r, HOSTILE)
    assert time.perf_counter() - start < 0.5  # RE2: about 3 us a match; re: never ends


@pytest.mark.parametrize("length", [255, 4000, 40_000])
def test_a_hostile_path_of_any_length_is_matched_at_once(length: int) -> None:
    segments = "/".join("a" * 250 for _ in range(length // 251 + 1))[:length]
    start = time.perf_counter()
    assert path_fields(rule(r"^(?P<licence>(a+)+)$"), segments + "!") == {}
    assert time.perf_counter() - start < 0.5


PATTERN_PROBLEM = "not supported by RE2, the linear-time engine recd matches names with"
REFUSED = {
    r"(?P<caller>\d+)_\1": f"{PATTERN_PROBLEM} (invalid escape sequence: \\1); backreferences "
    "are not supported; match the repeated text with its own group or character class",
    r"(?P<caller>\d+)_(?P=caller)": f"{PATTERN_PROBLEM} (invalid perl operator: (?P); "
    "backreferences are not supported; match the repeated text with its own group or "
    "character class",
    r"(?P<licence>.+)(?=/)": f"{PATTERN_PROBLEM} (invalid perl operator: (?=); lookahead and "
    "lookbehind are not supported; match the characters themselves, such as [^_/]+ for a "
    "field up to the next _ or /",
    r"^(?!tmp/)(?P<licence>[^/]+)/": f"{PATTERN_PROBLEM} (invalid perl operator: (?!); "
    "lookahead and lookbehind are not supported; match the characters themselves, such as "
    "[^_/]+ for a field up to the next _ or /",
    r"(?<=/)(?P<call_id>\d+)\.wav": f"{PATTERN_PROBLEM} (invalid perl operator: (?<=); "
    "lookahead and lookbehind are not supported; match the characters themselves, such as "
    "[^_/]+ for a field up to the next _ or /",
    r"(?<!x)(?P<call_id>\d+)": f"{PATTERN_PROBLEM} (invalid perl operator: (?<!); lookahead "
    "and lookbehind are not supported; match the characters themselves, such as [^_/]+ for a "
    "field up to the next _ or /",
    r"(?P<call_id>\d+)\.wav\Z": f"{PATTERN_PROBLEM} (invalid escape sequence: \\Z); use $ (or "
    "\\z) for the end of the name",
    r"(?x) (?P<call_id> \d+ )": f"{PATTERN_PROBLEM} (invalid perl operator: (?x); verbose "
    "mode (?x) is not supported; write the pattern without spaces and comments",
    r"(?P<call_id>\d{1001})": f"{PATTERN_PROBLEM} (invalid repetition size: {{1001}}); see "
    "https://github.com/google/re2/wiki/Syntax for what RE2 takes",
}


@pytest.mark.parametrize("pattern", sorted(REFUSED))
def test_a_pattern_re2_cannot_take_is_refused_at_load(tmp_path: Path, pattern: str) -> None:
    config = write_estate(tmp_path)
    text = config.read_text().replace(
        "pattern = '^(?P<licence>[A-Z0-9-]+)/[^/]+\\.wav$'", f"pattern = '{pattern}'"
    )
    config.write_text(text)
    with pytest.raises(ConfigInvalid) as excinfo:
        load(config)
    assert [str(p) for p in excinfo.value.problems] == [
        f"{config}: source[0].pattern: {REFUSED[pattern]}"
    ]


def test_check_config_names_the_refused_pattern_in_one_line_and_exits_78(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_estate(tmp_path)
    text = config.read_text().replace("[^/]+\\.wav$'", "(?=[^/]+\\.wav$)'")
    config.write_text(text)
    assert main(["check-config", "--config", str(config)]) == 78
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"recd: {config}: source[0].pattern: {PATTERN_PROBLEM} (invalid perl")


SURROGATE_NAMES = [
    "AC\udcffME/call.wav",  # an undecodable byte (0xff) in the licence segment
    "ACME/\udcc3\udca9t\udce9.wav",  # Latin-1 bytes in the file name
    "\udcff/x.wav",
    "ACME/\ud800.wav",  # a lone high surrogate, which os.fsdecode never makes
]


@pytest.mark.parametrize("relpath", SURROGATE_NAMES)
def test_a_name_that_is_not_utf8_never_raises(relpath: str) -> None:
    r = rule(r"^(?P<licence>[^/]+)/(?P<call_id>[^/]+)\.wav$")
    fields = path_fields(r, relpath)
    assert fields["call_id"] == matchable(relpath).split("/")[1].removesuffix(".wav")
    result = classify(r, relpath, fields=fields, tags=None, metadata=None, mtime=MTIME)
    assert result.licence == (None if "\ufffd" in fields["licence"] else fields["licence"])


def test_an_undecodable_licence_segment_is_unclassified_not_another_licence() -> None:
    r = rule(r"^(?P<licence>[^/]+)/")
    relpath = os.fsdecode(b"AC\xffME/call.wav")
    fields = path_fields(r, relpath)
    assert fields == {"licence": "AC\ufffdME"}
    result = classify(r, relpath, fields=fields, tags=None, metadata=None, mtime=MTIME)
    assert result.licence is None and "licence" not in result.provenance
    # The tags then decide, as for any path that gives no licence.
    tagged = classify(
        r, relpath, fields=fields, tags={"licence": "ACME"}, metadata=None, mtime=MTIME
    )
    assert (tagged.licence, tagged.provenance["licence"]) == ("ACME", Provenance.TAGS)


def test_surrogates_match_as_one_replacement_character_each() -> None:
    r = rule(r"^(?P<caller>[^_]{3})_")
    assert path_fields(r, os.fsdecode(b"\xff\xfe\xfd_x.wav")) == {"caller": "\ufffd" * 3}
    assert path_fields(r, os.fsdecode(b"\xff\xfe_x.wav")) == {}


@pytest.mark.parametrize("where", ["licence file", "source"])
def test_a_licence_id_holding_the_replacement_character_is_refused(
    tmp_path: Path, where: str
) -> None:
    config = write_estate(tmp_path, listen=None)  # keys appended below go to [[source]]
    if where == "source":
        config.write_text(config.read_text() + 'licence = "AC\ufffdME"\n')
        expected = f"{config}: source[0].licence: "
    else:
        licence = tmp_path / "licences.d" / "acme.toml"
        licence.write_text('id = "AC\ufffdME"\nname = "Acme"\nretention = "30d"\n')
        expected = f"{licence}: id: "
    with pytest.raises(ConfigInvalid) as excinfo:
        load(config)
    assert [str(p) for p in excinfo.value.problems] == [
        f'{expected}must not contain U+FFFD (the replacement character), got "AC\ufffdME"'
    ]


def test_once_with_a_catastrophic_pattern_and_hostile_names_finishes_and_erases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole path, scan to erase: hostile names are indexed, a due recording is erased."""
    config = write_estate(tmp_path)
    config.write_text(config.read_text().replace("[^/]+\\.wav$'", "(?:(a+)+$|[^/]+\\.wav$)'"))
    due = write_recording(tmp_path, "L1/due.wav", age_days=40)
    hostile = tmp_path / "recordings" / "L1" / ("a" * 250)
    for depth in range(8):
        (hostile / ("a" * 250 if depth else "")).mkdir(parents=True, exist_ok=True)
        hostile = hostile / ("a" * 250)
    hostile.parent.joinpath("a" * 250 + "!").write_bytes(b"x")
    start = time.perf_counter()
    assert main(["--once", "--config", str(config)]) == 0
    assert time.perf_counter() - start < 30
    assert not due.exists()
    assert capsys.readouterr().out == (
        "(unclassified): 1 recording, 0 due, 0 erased\nL1: 1 recording, 1 due, 1 erased\n"
    )
