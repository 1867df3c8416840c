"""The audit log rotates as one chain (SPEC section 8, issue 14): a real daemon with a small
``audit.rotate_size`` erases and places holds over several segments; `recctl audit` checks the
state directory as one chain, finds a cut tail only with ``--expect`` and a removed segment as a
gap; a lost catalogue gets back a hold that is in the first segment."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from recd.core.model import recording_id
from tests.e2e.helpers import (
    kill_daemon,
    recctl,
    recd,
    scrape,
    start_daemon,
    stop_daemon,
    wait_swept,
    write_estate,
    write_recording,
)
from tests.fakes import NotifyListener
from tests.tools import free_port

DUE = 800  # erased recordings: a done entry each, an intent per 256: 3 segments and more


def configure(base: Path, compress: str, port: int) -> Path:
    config = write_estate(base, listen=f"127.0.0.1:{port}")
    with config.open("a") as f:
        f.write(f'\n[audit]\nrotate_size = "64KiB"\ncompress = "{compress}"\n')
    return config


def ctl(*args: str) -> str:
    done = recctl(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def place(sock: Path, relpath: str) -> str:
    rid = recording_id("pbx", relpath)
    return ctl("--socket", str(sock), "hold", "place", "--licence", "L1", "--case", "C-1",
               "--reason", "court order", "--recording", rid).strip()  # fmt: skip


def chain(state: Path) -> list[dict[str, Any]]:
    """Every entry of the state directory's chain, as `recctl audit ls --json` lists them."""
    return list(json.loads(ctl("audit", "ls", "--file", str(state), "--json")))


def segments(state: Path) -> list[str]:
    """The segments in the state directory, in chain order."""
    found = [n for n in os.listdir(state) if re.fullmatch(r"audit\.log\.\d+-\d+(\.gz)?", n)]
    return sorted(found, key=lambda name: int(name.split(".")[2].split("-")[0]))


def rotated_run(base: Path, listener: NotifyListener, compress: str) -> tuple[Path, str]:
    """A daemon places a hold, then (started again) erases DUE recordings and places three more
    holds while its log rotates; returns the config and the first hold."""
    port = free_port()
    config = configure(base, compress, port)
    write_recording(base, "L1/held.wav", age_days=5)
    sock = base / "recd.sock"
    proc = start_daemon(config, listener, base / "recd.log")
    try:
        listener.wait_for("READY=1", timeout=60)
        wait_swept(listener)
        first = place(sock, "L1/held.wav")
        stop_daemon(proc, listener)
        for i in range(DUE):
            write_recording(base, f"L1/due-{i:03}.wav", age_days=40)
        mark = len(listener.messages)
        proc = start_daemon(config, listener, base / "recd.log")
        listener.wait_for("READY=1", timeout=60)
        wait_swept(listener, since=mark)
        for i in range(3):
            write_recording(base, f"L1/new-{i}.wav", age_days=1)
            place(sock, "L1/held.wav")
        _, body = scrape(port)
        state = base / "state"
        assert f"recd_audit_segments {len(segments(state))}.0\n" in body
        assert f"recd_audit_log_bytes {(state / 'audit.log').stat().st_size}.0\n" in body
        stop_daemon(proc, listener)
    finally:
        kill_daemon(proc)
    return config, first


@pytest.mark.parametrize("compress", ["none", "gzip"])
def test_a_rotated_log_is_one_chain_and_the_rebuild_reads_every_segment(
    tmp_path: Path, listener: NotifyListener, compress: str
) -> None:
    config, hold = rotated_run(tmp_path, listener, compress)
    state = tmp_path / "state"
    found = segments(state)
    assert len(found) >= 3, found
    assert all(n.endswith(".gz") for n in found) == (compress == "gzip")
    entries = chain(state)
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    erased = {e["subject"] for e in entries if e["action"] == "erase.done"}
    assert len(erased) == DUE
    assert not any((tmp_path / "recordings/L1").glob("due-*"))
    log = (tmp_path / "recd.log").read_text()
    assert f"audit log rotated: entries 1-{found_last(found[0])} closed into " in log

    last = entries[-1]
    assert ctl("audit", "verify", "--file", str(state)) == (
        f"{state}: {last['seq']} entries (in {len(found) + 1} files), chain intact, "
        f"last hash {last['hash']}\n"
    )
    assert ctl("audit", "head", "--file", str(state)).endswith(
        f"chain intact; head {last['seq']}:{last['hash']}\n"
    )
    placed = next(e for e in entries if e["action"] == "hold.placed")  # in the first segment
    assert placed["seq"] <= found_last(found[0])
    anchor = f"{placed['seq']}:{placed['hash']}"
    assert ctl("audit", "verify", "--file", str(state), "--expect", anchor).endswith(
        f"; entry {placed['seq']} as expected\n"
    )

    # The catalogue is lost: the hold placed in the first segment still keeps its recording.
    (state / "catalog.db").unlink()
    due = time.time() - 40 * 86400  # due now, but for the hold
    os.utime(tmp_path / "recordings/L1/held.wav", (due, due))
    done = recd("--once", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "recordings/L1/held.wav").exists(), done.stderr
    rebuilt = [e["details"] for e in chain(state) if e["action"] == "catalogue.rebuilt"]
    assert [(d["holds"], d["active"]) for d in rebuilt] == [(4, 4)]
    assert hold.startswith("H-")


def found_last(name: str) -> int:
    return int(name.removesuffix(".gz").rsplit("-", 1)[1])


def test_a_cut_tail_is_found_only_with_expect_and_a_removed_segment_is_a_gap(
    tmp_path: Path, listener: NotifyListener
) -> None:
    rotated_run(tmp_path, listener, "none")
    state = tmp_path / "state"
    live = state / "audit.log"
    head = ctl("audit", "head", "--file", str(state)).split()[-1]
    seq = int(head.split(":")[0])
    lines = live.read_bytes().splitlines(keepends=True)
    assert len(lines) > 3
    live.write_bytes(b"".join(lines[:-3]))  # the last three entries go: valid in itself
    kept = seq - 3

    plain = recctl("audit", "verify", "--file", str(state))
    assert (plain.returncode, plain.stderr) == (0, "")
    assert plain.stdout.startswith(f"{state}: {kept} entries (in ")
    expected = recctl("audit", "verify", "--file", str(state), "--expect", head)
    assert (expected.returncode, expected.stdout, expected.stderr) == (
        1,
        "",
        f"recctl: {state}: the log ends at seq {kept}, before the expected entry {seq}: "
        "its tail was cut\n",
    )

    found = segments(state)
    assert len(found) >= 3, found
    middle = found[1]
    first, last = middle.split(".")[2].split("-")
    (state / middle).unlink()
    gone = recctl("audit", "verify", "--file", str(state))
    assert (gone.returncode, gone.stdout, gone.stderr) == (
        1,
        "",
        f"recctl: {state}: entries {first}-{last} are missing: no segment holds them "
        "(a segment removed?)\n",
    )
