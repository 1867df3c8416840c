"""recd.config.licences: licences.d/*.toml, one licence per file: a missing, empty or non-directory
licences.d, every problem of a licence file word for word, a licence id defined twice, and the order
files are read in."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from recd.config.load import load
from tests.config.helpers import AGENT, HINT, KEY, KEY_TEXT, LICENCE, problems, write

FALLBACK = "(every licence's recordings would get retention.default)"


def test_licences_dir_that_is_a_file(tmp_path: Path) -> None:
    path = write(tmp_path / "recd.toml", "")
    (tmp_path / "licences.d").rmdir()
    write(tmp_path / "licences.d", "not a directory")
    assert problems(path) == [
        f"TMP/licences.d: the licences directory is not a directory {FALLBACK}"
    ]


def test_missing_licences_dir_is_an_error(tmp_path: Path) -> None:
    # It was "no licences": every licensed recording fell to retention.default and was erased.
    path = write(tmp_path / "recd.toml", "")
    (tmp_path / "licences.d").rmdir()
    assert problems(path) == [
        f"TMP/licences.d: the licences directory does not exist {FALLBACK}; "
        "create it, empty if there are none"
    ]


def test_empty_licences_dir_means_no_licences(tmp_path: Path) -> None:
    config = load(write(tmp_path / "recd.toml", ""))
    assert config.licences == {}


LICENCE_CASES = [
    (
        "",
        [
            "id: required key is missing",
            "name: required key is missing",
            "retention: required key is missing",
        ],
    ),
    ('id = ""\nname = "A"\nretention = "1d"', ["id: must not be empty"]),
    (
        'id = "ACME 1"\nname = "A"\nretention = "1d"',
        ['id: must not contain whitespace or "/", got "ACME 1"'],
    ),
    (
        'id = "a/b"\nname = "A"\nretention = "1d"',
        ['id: must not contain whitespace or "/", got "a/b"'],
    ),
    ('id = "A"\nname = 1\nretention = "1d"', ["name: expected a string, got integer"]),
    (
        'id = "A"\nname = "A"\nretention = "3mon"',
        [f'retention: unknown unit "mon" in "3mon" ({HINT})'],
    ),
    (
        LICENCE + 'verification = "three-person"',
        ['verification: "three-person" is not one of "two-person", "signature"'],
    ),
    (
        LICENCE + 'verification = "signature"',
        ['verification: "signature" needs at least one [[agent]] with a public_key'],
    ),
    (LICENCE + "retension = 1", ['retension: unknown key (did you mean "retention"?)']),
    (LICENCE + "agent = 1", ["agent: expected an array of tables ([[agent]]), got integer"]),
    (LICENCE + "agent = [1]", ["agent[0]: expected a table, got integer"]),
    (
        LICENCE + "[[agent]]\nphone = 1",
        [
            "agent[0].name: required key is missing",
            "agent[0].email: required key is missing",
            "agent[0].public_key: required key is missing",
            "agent[0].phone: unknown key",
        ],
    ),
    (
        LICENCE + AGENT.replace(KEY_TEXT, "rsa:AAAA"),
        [
            'agent[0].public_key: expected "ed25519:" and the base64 of the 32-byte public key, '
            'got "rsa:AAAA"'
        ],
    ),
    (
        LICENCE + AGENT.replace(KEY_TEXT, "ed25519:not base64!"),
        ['agent[0].public_key: not valid base64 after "ed25519:"'],
    ),
    (
        LICENCE + AGENT.replace(KEY_TEXT, "ed25519:" + base64.b64encode(KEY[:31]).decode()),
        ["agent[0].public_key: an Ed25519 public key is 32 bytes; this one is 31"],
    ),
    (
        LICENCE + 'verification = "signature"\n' + AGENT.replace(KEY_TEXT, "ed25519:"),
        ["agent[0].public_key: an Ed25519 public key is 32 bytes; this one is 0"],
    ),
    (LICENCE + "x = = 1", ["invalid TOML: Invalid value (at line 4, column 5)"]),
]


@pytest.mark.parametrize(("text", "expected"), LICENCE_CASES)
def test_licence_problem(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = write(tmp_path / "recd.toml", "")
    write(tmp_path / "licences.d" / "acme.toml", text)
    found = problems(path)
    assert all(line.startswith("TMP/licences.d/acme.toml: ") for line in found)
    assert [line.removeprefix("TMP/licences.d/acme.toml: ") for line in found] == expected


def test_same_licence_id_in_two_files(tmp_path: Path) -> None:
    path = write(tmp_path / "recd.toml", "")
    write(tmp_path / "licences.d" / "a.toml", LICENCE)
    write(tmp_path / "licences.d" / "b.toml", LICENCE.replace("Acme Ltd", "Acme again"))
    assert problems(path) == [
        'TMP/licences.d/b.toml: id: licence "ACME-1" is already defined in TMP/licences.d/a.toml'
    ]


def test_licence_files_are_toml_files_in_name_order_without_dot_files(tmp_path: Path) -> None:
    path = write(tmp_path / "recd.toml", "")
    write(tmp_path / "lic" / "b.toml", 'id = "B"\nname = "Bee"\nretention = "1y"')
    write(tmp_path / "lic" / "a.toml", 'id = "A"\nname = "Ay"\nretention = "30d"')
    write(tmp_path / "lic" / ".#a.toml", "garbage = [")
    write(tmp_path / "lic" / "a.toml.bak", "garbage = [")
    write(tmp_path / "lic" / "README", "garbage = [")
    (tmp_path / "lic" / "sub.d").mkdir()
    config = load(path, licences_dir=tmp_path / "lic")
    assert list(config.licences) == ["A", "B"]
    assert config.licences["B"].file == tmp_path / "lic" / "b.toml"
