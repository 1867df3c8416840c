"""The export writer (``recd.cli.auditexport``), fed by any reader: OUT is the whole verified
chain or nothing; a failure at any point, a full disk included, leaves no temporary file, and a
file that appears at OUT meanwhile is never replaced without ``force``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from recd.cli.auditexport import export_chain
from recd.cli.auditfile import Checked, Sink, copy_chain
from recd.cli.main import main
from recd.errors import AuditCorrupt, RecdError
from tests.adapters.loopfs import Mounts
from tests.cli.helpers import LINES, rotated


def test_a_reader_that_fails_midway_leaves_nothing(log_path, tmp_path):
    out = tmp_path / "out" / "audit.jsonl"
    out.parent.mkdir()
    seen: list[str] = []

    def failing(sink: Sink) -> Checked:
        for line in LINES[:3]:
            sink(line)
        seen.extend(os.listdir(out.parent))  # the temporary file, holding the lines so far
        raise AuditCorrupt("source: entry 4 (line 4): hash does not match the entry's content")

    with pytest.raises(AuditCorrupt, match="entry 4"):
        export_chain(failing, out, force=False)
    assert len(seen) == 1
    assert seen[0].startswith(".audit.jsonl.")
    assert seen[0].endswith(".tmp")
    assert os.listdir(out.parent) == []


def test_a_file_that_appears_meanwhile_is_kept_unless_force(log_path, tmp_path):
    out = tmp_path / "out" / "audit.jsonl"
    out.parent.mkdir()

    def racing(sink: Sink) -> Checked:
        out.write_bytes(b"written by someone else meanwhile\n")
        return copy_chain(log_path, sink)

    with pytest.raises(RecdError) as refused:
        export_chain(racing, out, force=False)
    assert str(refused.value) == (
        f"--file: {out}: appeared while the export was written; nothing was written (give "
        "another name, or --force to replace it)"
    )
    assert out.read_bytes() == b"written by someone else meanwhile\n"
    assert os.listdir(out.parent) == ["audit.jsonl"]
    checked = export_chain(racing, out, force=True)
    assert (checked.result.entries, out.read_bytes()) == (4, b"".join(LINES))
    assert os.listdir(out.parent) == ["audit.jsonl"]


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    with Mounts(tmp_path) as m:
        yield m


@pytest.mark.root
def test_a_full_disk_leaves_nothing(tmp_path, mounts, capsys):
    state = tmp_path / "state"
    rotated(state)  # about 200 KB
    small = mounts.tmpfs(tmp_path / "small", size="64k").mountpoint
    out = small / "audit.jsonl"
    code = main(["audit", "export", "--from", str(state), "--file", str(out)])
    assert (code, *capsys.readouterr()) == (
        1,
        "",
        f"recctl: --file: {out}: cannot write: No space left on device\n",
    )
    assert os.listdir(small) == []
