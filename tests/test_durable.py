"""recd.durable.write_atomically on a real directory: whole file or nothing, exact mode."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from recd.durable import write_atomically


def test_writes_the_data_with_the_mode_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "cert.json"
    target.write_bytes(b"old")
    old_umask = os.umask(0o077)  # the mode is set, not left to the umask
    try:
        write_atomically(target, b"new content", 0o640)
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"new content"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cert.json"]


def test_a_failed_rename_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()  # a directory: the rename over it fails
    (target / "inside").write_text("x")
    with pytest.raises(OSError):
        write_atomically(target, b"data", 0o600)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    assert (target / "inside").read_text() == "x"


def test_a_missing_directory_is_the_system_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomically(tmp_path / "absent" / "file", b"data", 0o600)
