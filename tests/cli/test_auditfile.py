"""`recctl audit verify|head|ls` over a rotated log: a state directory (every segment, then the
live log, .gz read transparently), one segment, or the live log alone (SPEC section 8)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from recd.cli.auditfile import entries as _entries
from recd.cli.main import main
from recd.core.audit import AuditDraft, AuditEntry, seal, to_line
from recd.errors import ExitCode
from tests.cli.helpers import NOW, rotated


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["audit", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def names(state: Path) -> list[str]:
    return sorted(os.listdir(state))


@pytest.mark.parametrize("compress", ["none", "gzip"])
def test_a_directory_is_verified_as_one_chain(tmp_path, capsys, compress):
    written = rotated(tmp_path, compress=compress)
    suffix = ".gz" if compress == "gzip" else ""
    assert names(tmp_path) == [
        "audit.log", f"audit.log.1-56{suffix}", f"audit.log.114-170{suffix}",
        f"audit.log.57-113{suffix}",
    ]  # fmt: skip
    last = written[-1]
    assert run(capsys, "verify", "--file", str(tmp_path)) == (
        ExitCode.OK,
        f"{tmp_path}: {last.seq} entries (in 4 files), chain intact, last hash {last.hash}\n",
        "",
    )
    assert run(capsys, "head", "--file", str(tmp_path)) == (
        ExitCode.OK,
        f"{tmp_path}: {last.seq} entries (in 4 files), chain intact; head {last.seq}:{last.hash}\n",
        "",
    )
    code, out, _ = run(capsys, "head", "--file", str(tmp_path), "--json")
    assert json.loads(out) == {"entries": last.seq, "seq": last.seq, "hash": last.hash}
    old = written[20]  # in the first segment
    code, out, err = run(capsys, "verify", "--file", str(tmp_path), "--expect", f"21:{old.hash}")
    assert (code, err) == (ExitCode.OK, "")
    assert out.endswith("; entry 21 as expected\n")
    code, out, _ = run(capsys, "ls", "--file", str(tmp_path), "--json")
    assert [e["seq"] for e in json.loads(out)] == list(range(1, last.seq + 1))


def test_one_segment_verifies_on_its_own_and_says_so(tmp_path, capsys):
    written = rotated(tmp_path)
    segment = tmp_path / "audit.log.57-113"
    assert run(capsys, "verify", "--file", str(segment)) == (
        ExitCode.OK,
        f"{segment}: 57 entries (seq 57-113, continuing the chain of earlier segments: checked "
        f"from entry 57 on), chain intact, last hash {written[112].hash}\n",
        "",
    )
    first = tmp_path / "audit.log.1-56"
    assert run(capsys, "verify", "--file", str(first)) == (
        ExitCode.OK,
        f"{first}: 56 entries, chain intact, last hash {written[55].hash}\n",
        "",
    )
    live = tmp_path / "audit.log"
    assert run(capsys, "head", "--file", str(live))[0] == ExitCode.OK
    _, out, _ = run(capsys, "head", "--file", str(live))
    assert out == (
        f"{live}: 33 entries (seq 171-203, continuing the chain of earlier segments: checked "
        f"from entry 171 on), chain intact; head 203:{written[-1].hash}\n"
    )
    assert run(capsys, "verify", "--file", str(live), "--expect", f"21:{written[20].hash}") == (
        ExitCode.FAILED,
        "",
        f"recctl: {live}: entry 21 comes before seq 171, where this part of the chain begins: "
        "check the whole chain (give the state directory) to test it\n",
    )


def test_a_missing_segment_is_a_gap(tmp_path, capsys):
    rotated(tmp_path)
    (tmp_path / "audit.log.57-113").unlink()
    for command in ("verify", "head"):
        assert run(capsys, command, "--file", str(tmp_path)) == (
            ExitCode.FAILED,
            "",
            f"recctl: {tmp_path}: entries 57-113 are missing: no segment holds them "
            "(a segment removed?)\n",
        )


def test_a_missing_last_segment_is_a_gap_before_the_live_log(tmp_path, capsys):
    rotated(tmp_path)
    (tmp_path / "audit.log.114-170").unlink()
    assert run(capsys, "verify", "--file", str(tmp_path)) == (
        ExitCode.FAILED,
        "",
        f"recctl: {tmp_path / 'audit.log'}: entry 171 (line 1): entries 114-170 are missing: "
        "no segment holds them (a segment removed?)\n",
    )


def test_a_segment_replaced_by_another_chain_is_a_break(tmp_path, capsys):
    written = rotated(tmp_path)
    segment = tmp_path / "audit.log.57-113"
    forged: list[AuditEntry] = []
    for entry in written[56:113]:  # resealed with one detail changed: valid on its own
        details = dict(entry.details) | ({"n": -1} if entry.seq == 60 else {})
        draft = AuditDraft(entry.action, entry.subject, details, entry.actor)
        prev = forged[-1].hash if forged else entry.prev
        forged.append(seal(draft, seq=entry.seq, prev=prev, time=NOW))
    segment.write_bytes(b"".join(to_line(e) for e in forged))
    assert run(capsys, "verify", "--file", str(segment))[0] == ExitCode.OK  # valid on its own
    assert run(capsys, "verify", "--file", str(tmp_path)) == (
        ExitCode.FAILED,
        "",
        f"recctl: {tmp_path / 'audit.log.114-170'}: entry 114 (line 1): prev does not match "
        "the hash of entry 113, the last entry of audit.log.57-113 (the chain is broken "
        "between the two files)\n",
    )


def test_a_segment_whose_name_lies_is_reported(tmp_path, capsys):
    rotated(tmp_path, n=100)
    os.rename(tmp_path / "audit.log.1-56", tmp_path / "audit.log.1-55")
    assert run(capsys, "verify", "--file", str(tmp_path)) == (
        ExitCode.FAILED,
        "",
        f"recctl: {tmp_path / 'audit.log.1-55'}: holds entries 1-56, not 1-55 as its name says\n",
    )


def test_a_cut_gzip_segment_is_reported(tmp_path, capsys):
    rotated(tmp_path, n=100, compress="gzip")
    segment = tmp_path / "audit.log.1-56.gz"
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) // 2])
    code, out, err = run(capsys, "verify", "--file", str(tmp_path))
    assert (code, out) == (ExitCode.FAILED, "")
    assert err.startswith(f"recctl: {segment}: not a complete gzip file (")


def test_the_second_pass_stops_where_the_first_did(log_path):
    # The daemon may append between ls's two passes; the table was measured for the first.
    assert [entry.seq for _, entry in _entries(log_path, limit=2)] == [1, 2]
    assert [number for number, _ in _entries(log_path)] == [1, 2, 3, 4]
