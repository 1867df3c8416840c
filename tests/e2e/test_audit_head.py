"""`recctl audit head` and `audit verify --expect` on a log real `recd --once` runs wrote: a cut
or rewritten tail leaves a chain that verifies on its own, and only the head kept from before
shows it (SPEC section 8)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from recd.core.audit import GENESIS, AuditDraft, AuditEntry, from_line, seal, to_line
from recd.core.times import parse_time
from tests.e2e.helpers import audit_entries, recctl, recd, write_estate, write_recording

RUNS = 3


def run_recd(base: Path, runs: int = RUNS, first: int = 0) -> Path:
    """``runs`` real ``recd --once`` runs (numbered from ``first``), each erasing two due
    recordings; the audit log."""
    config = write_estate(base)
    for run in range(first, first + runs):
        for name in ("a", "b"):
            write_recording(base, f"L1/{run}-{name}.wav", age_days=31)
        result = recd("--once", "--config", str(config))
        assert (result.returncode, result.stdout) == (0, "L1: 2 recordings, 2 due, 2 erased\n")
    return base / "state" / "audit.log"


def head(log: Path) -> str:
    """The head, SEQ:HASH, as an operator copies it from `recctl audit head`; checked against
    its --json form and the log itself."""
    text = recctl("audit", "head", "--file", str(log))
    as_json = recctl("audit", "head", "--file", str(log), "--json")
    assert (text.returncode, text.stderr, as_json.returncode) == (0, "", 0)
    entries = audit_entries(log.parent.parent)
    last = entries[-1]
    anchor = f"{last['seq']}:{last['hash']}"
    assert text.stdout == f"{log}: {len(entries)} entries, chain intact; head {anchor}\n"
    assert json.loads(as_json.stdout) == {
        "entries": len(entries),
        "seq": last["seq"],
        "hash": last["hash"],
    }
    return text.stdout.split()[-1]


def cut_to(log: Path, seq: int) -> None:
    """Truncate the log in place at the end of entry ``seq``'s line, as an intruder would."""
    data = log.read_bytes()
    end = 0
    for _ in range(seq):
        end = data.index(b"\n", end) + 1
    os.truncate(log, end)


def verify(log: Path, *options: str) -> tuple[int, str, str]:
    done = recctl("audit", "verify", "--file", str(log), *options)
    return done.returncode, done.stdout, done.stderr


def test_a_cut_tail_is_found_only_with_expect(tmp_path: Path) -> None:
    log = run_recd(tmp_path, runs=1)
    early = head(log)  # kept after the first run
    log = run_recd(tmp_path, runs=RUNS - 1, first=1)
    anchor = head(log)
    seq = int(anchor.split(":")[0])
    erased = [e for e in audit_entries(tmp_path) if e["action"] == "erase.done"]
    kept = erased[-1]["seq"] - 1  # the evidence of the last erasure goes
    assert kept < seq
    cut_to(log, kept)

    code, out, err = verify(log)
    assert (code, err) == (0, "")
    assert out.startswith(f"{log}: {kept} entries, chain intact, last hash ")
    assert verify(log, "--expect", anchor) == (
        1,
        "",
        f"recctl: {log}: the log ends at seq {kept}, before the expected entry {seq}: "
        "its tail was cut\n",
    )
    early_seq = early.split(":")[0]
    assert verify(log, "--expect", early) == (
        0,
        f"{out.rstrip()}; entry {early_seq} as expected\n",
        "",
    )


def reseal_from(entries: list[AuditEntry], seq: int, location: str) -> list[AuditEntry]:
    """``entries`` with entry ``seq`` saying it erased ``location``, it and every later entry
    sealed again: each hash valid, the chain whole, the content not what recd wrote."""
    forged = entries[: seq - 1]
    for entry in entries[seq - 1 :]:
        details = dict(entry.details)
        if entry.seq == seq:
            assert details["location"] != location
            details["location"] = location
        draft = AuditDraft(entry.action, entry.subject, details, entry.actor)
        prev = forged[-1].hash if forged else GENESIS
        forged.append(seal(draft, seq=entry.seq, prev=prev, time=parse_time(entry.time)))
    return forged


def test_a_rewritten_tail_is_found_only_with_expect(tmp_path: Path) -> None:
    log = run_recd(tmp_path)
    anchor = head(log)
    seq, expected = anchor.split(":")
    entries = [from_line(line) for line in log.read_bytes().splitlines(keepends=True)]
    erased = [e for e in entries if e.action == "erase.done"]
    assert erased[-2].seq < int(seq)
    forged = reseal_from(entries, erased[-2].seq, str(tmp_path / "recordings/L1/other.wav"))
    log.write_bytes(b"".join(to_line(entry) for entry in forged))

    code, out, err = verify(log)
    assert (code, err) == (0, "")
    assert out == f"{log}: {len(entries)} entries, chain intact, last hash {forged[-1].hash}\n"
    assert head(log) != anchor
    assert verify(log, "--expect", anchor) == (
        1,
        "",
        f"recctl: {log}: entry {seq} has hash {forged[-1].hash}, not the expected {expected}: "
        "the log was rewritten at or before it\n",
    )
