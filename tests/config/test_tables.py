"""recd.config.tables: a configuration file that cannot be read, is not UTF-8 or is not TOML is one
problem named with the file and why."""

from __future__ import annotations

from pathlib import Path

from tests.config.helpers import problems, write


def test_missing_file(tmp_path: Path) -> None:
    assert problems(tmp_path / "recd.toml") == [
        "TMP/recd.toml: cannot read: No such file or directory"
    ]


def test_directory_instead_of_file(tmp_path: Path) -> None:
    (tmp_path / "recd.toml").mkdir()
    assert problems(tmp_path / "recd.toml") == ["TMP/recd.toml: cannot read: Is a directory"]


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "recd.toml").write_bytes(b'[daemon]\nadmin_group = "\xff"\n')
    assert problems(tmp_path / "recd.toml") == [
        "TMP/recd.toml: not UTF-8 text (invalid start byte at offset 24)"
    ]


def test_toml_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path / "recd.toml", "[daemon]\nmode = enforce\n")
    assert problems(path) == ["TMP/recd.toml: invalid TOML: Invalid value (at line 2, column 8)"]
