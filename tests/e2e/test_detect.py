"""An audit log that does not verify, or does not hold what the catalogue reflects, stops erasing
until an administrator acknowledges it (SPEC section 8, issue 14 point 2).

Each case builds a short history with `recd --once` (a log checked and marked at every start),
makes a recording due, damages the log the way the case says and starts the real daemon: the
due recording stays; the reason is in ``STATUS=``, the log, ``recctl status`` (text and JSON)
and ``recd_audit_log_problem``; the log itself says so (``audit.problem``). After
``recctl audit acknowledge`` (audited with the actor and what was found) the recording is erased.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recd.adapters.auditlog.log import FileAuditLog
from recd.config.types import AuditSettings
from recd.core.audit import AuditDraft, seal_line
from recd.core.times import parse_time
from tests.e2e.helpers import (
    audit_entries,
    backdate,
    kill_daemon,
    recctl,
    recd,
    scrape,
    start_daemon,
    stop_daemon,
    wait_swept,
    wait_until,
    write_estate,
    write_recording,
)
from tests.fakes import NotifyListener
from tests.tools import free_port

Damage = Callable[[Path], None]
AUDIT = AuditSettings(rotate_size=64 << 10)


def history(base: Path, port: int = 0) -> Path:
    """Config, a recording not yet due, three `recd --once` runs; returns the config."""
    config = write_estate(base, listen=f"127.0.0.1:{port}")
    write_recording(base, "L1/due.wav", age_days=5)
    for _ in range(3):
        done = recd("--once", "--config", str(config))
        assert done.returncode == 0, done.stderr
    backdate(base / "recordings/L1/due.wav", 40)  # due from now on
    return config


def log_lines(state: Path) -> list[bytes]:
    return (state / "audit.log").read_bytes().splitlines(keepends=True)


def rewrite(state: Path, lines: list[bytes]) -> None:
    (state / "audit.log").write_bytes(b"".join(lines))


def cut_last(state: Path) -> None:
    rewrite(state, log_lines(state)[:-1])


def reseal_last(state: Path) -> None:
    """The last entry changed and sealed again: the chain verifies, with another last hash."""
    lines = log_lines(state)
    last = json.loads(lines[-1])
    last["details"]["config"] = "/somewhere/else.toml"
    draft = AuditDraft(last["action"], last["subject"], last["details"], last["actor"])
    _, line = seal_line(draft, seq=last["seq"], prev=last["prev"], time=parse_time(last["time"]))
    rewrite(state, [*lines[:-1], line])


def delete(state: Path) -> None:
    (state / "audit.log").unlink()


def change_second(state: Path) -> None:
    lines = log_lines(state)
    lines[1] = lines[1].replace(b'"config.loaded"', b'"config.loadeD"')
    rewrite(state, lines)


def remove_second(state: Path) -> None:
    lines = log_lines(state)
    del lines[1]
    rewrite(state, lines)


def swap_second_and_third(state: Path) -> None:
    lines = log_lines(state)
    lines[1], lines[2] = lines[2], lines[1]
    rewrite(state, lines)


def damage_last(state: Path) -> None:
    lines = log_lines(state)
    lines[-1] = lines[-1].replace(b'"config.loaded"', b'"config.loadeD"')
    rewrite(state, lines)


CASES: dict[str, tuple[Damage, str, str]] = {
    # case: (damage, kind found, the start of the reason)
    "tail cut after the mark": (cut_last, "ahead", "the catalogue reflects audit entry"),
    "last entry sealed again": (reseal_last, "other-log", "the catalogue reflects audit entry"),
    "audit.log deleted": (delete, "cut", "{log} is empty, but recd checked it"),
    "entry changed in the middle": (change_second, "chain", "{log}: entry 2 does not verify"),
    "entry removed in the middle": (remove_second, "chain", "{log}: entry 2 does not verify"),
    "entries reordered": (swap_second_and_third, "chain", "{log}: entry 2 does not verify"),
    "last line damaged": (damage_last, "chain", "{log}: entry "),
}


def paused_status(listener: NotifyListener, timeout: float = 60.0) -> str:
    give_up = time.monotonic() + timeout
    while True:
        for message in listener.messages:
            for line in message.splitlines():
                if line.startswith("STATUS=erasing paused: "):
                    return line.removeprefix("STATUS=erasing paused: ")
        assert time.monotonic() < give_up, f"no pause within {timeout} s: {listener.messages}"
        listener.receive(max(0.01, give_up - time.monotonic()))


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_log_that_does_not_match_stops_erasing_until_acknowledged(
    tmp_path: Path, listener: NotifyListener, case: str
) -> None:
    damage, kind, reason = CASES[case]
    port = free_port()
    config = history(tmp_path, port)
    state = tmp_path / "state"
    damage(state)
    log = state / "audit.log"
    reason = reason.format(log=log)

    proc = start_daemon(config, listener, tmp_path / "recd.log")
    try:
        listener.wait_for("READY=1", timeout=60)
        paused = paused_status(listener)
        assert paused.startswith(reason), paused
        assert paused.endswith(
            "; check it with `recctl audit verify`, then run "
            "`recctl audit acknowledge --reason TEXT`"
        )
        sock = str(tmp_path / "recd.sock")
        status = json.loads(recctl("--socket", sock, "status", "--json").stdout)
        assert status["audit_check"] == {"paused": True, "problem": paused}
        text = recctl("--socket", sock, "status").stdout
        assert re.search(r"^audit log check: +erasing paused: ", text, re.MULTILINE), text
        assert "recd_audit_log_problem 1.0" in scrape(port)[1]
        assert (tmp_path / "recordings/L1/due.wav").exists(), "erased with the log in doubt"
        problems = [e for e in audit_entries(tmp_path) if e["action"] == "audit.problem"]
        assert [p["details"]["kind"] for p in problems] == [kind]
        assert "erasing paused: " + reason in (tmp_path / "recd.log").read_text()

        mark = len(listener.messages)
        done = recctl("--socket", sock, "audit", "acknowledge", "--reason", "checked the backup")
        assert done.returncode == 0, done.stderr
        assert re.fullmatch(
            r"audit log acknowledged \(entry \d+\): erasing resumes \(it was paused: .*\)\n",
            done.stdout,
        ), done.stdout
        wait_swept(listener, since=mark)
        wait_until(
            "the due recording erased once acknowledged",
            lambda: not (tmp_path / "recordings/L1/due.wav").exists(),
        )
        assert "recd_audit_log_problem 0.0" in scrape(port)[1]
        again = recctl("--socket", sock, "audit", "acknowledge", "--reason", "twice")
        assert (again.returncode, again.stderr) == (
            3, "recctl: the audit log verified and matches the catalogue: nothing to "
            "acknowledge\n",
        )  # fmt: skip
        stop_daemon(proc, listener)
    finally:
        kill_daemon(proc)
    [ack] = [e for e in audit_entries(tmp_path) if e["action"] == "audit.acknowledged"]
    assert (ack["details"]["kind"], ack["details"]["reason"]) == (kind, "checked the backup")
    assert ack["actor"] == pwd.getpwuid(os.getuid()).pw_name, "not the peer's user"
    # The next start finds nothing: the acknowledgement moved the checkpoint and the mark.
    done = recd("--once", "--config", str(config))
    assert done.returncode == 0, done.stderr


def test_once_refuses_with_exit_3_until_given_acknowledge_log(tmp_path: Path) -> None:
    config = history(tmp_path)
    change_second(tmp_path / "state")
    log = tmp_path / "state" / "audit.log"

    refused = recd("--once", "--config", str(config))

    assert refused.returncode == 3
    assert refused.stderr.splitlines()[-1] == (
        f"recd: erasing nothing: {log}: entry 2 does not verify (entry at byte "
        f"{len(log_lines(tmp_path / 'state')[0])}: hash does not match the entry's content): "
        "an entry was changed, removed or reordered; `recctl audit verify --file "
        f"{log}` shows it; check it with `recctl audit verify`, then run "
        "`recd --once --acknowledge-log REASON`"
    )
    assert (tmp_path / "recordings/L1/due.wav").exists()

    done = recd("--once", "--config", str(config), "--acknowledge-log", "restored, checked")

    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "recordings/L1/due.wav").exists()
    [ack] = [e for e in audit_entries(tmp_path) if e["action"] == "audit.acknowledged"]
    assert (ack["details"]["kind"], ack["details"]["bad_seq"]) == ("chain", 2)


def _first_seq(segment: Path) -> int:
    return int(segment.name.split(".")[2].split("-")[0])


def test_an_entry_changed_in_a_closed_segment_stops_erasing_until_acknowledged(
    tmp_path: Path, listener: NotifyListener
) -> None:
    """Issue 14 points 2-3: the log rotated into three segments, all checked at a start; one
    entry of the middle segment changed (sealed again, so its own hash verifies): the next
    start finds it without `recctl audit verify`, and erases nothing until acknowledged."""
    config = write_estate(tmp_path, listen="127.0.0.1:0")
    config.write_text(config.read_text() + '\n[audit]\nrotate_size = "64KiB"\n')
    write_recording(tmp_path, "L1/due.wav", age_days=5)
    state = tmp_path / "state"
    for run in range(2):  # the first makes the log; the second checks every segment
        if run:
            log = FileAuditLog.open(state / "audit.log", datetime.now(UTC), AUDIT)
            while log.extent().segments < 3:
                log.append([AuditDraft("test.note", "x", {"pad": "p" * 900})], datetime.now(UTC))
            log.close()
        done = recd("--once", "--config", str(config))
        assert done.returncode == 0, done.stderr
    backdate(tmp_path / "recordings/L1/due.wav", 40)  # due from now on
    middle = sorted(state.glob("audit.log.*-*"), key=_first_seq)[1]
    lines = middle.read_bytes().splitlines(keepends=True)
    entry = json.loads(lines[5])
    entry["details"]["pad"] = "changed"
    draft = AuditDraft(entry["action"], entry["subject"], entry["details"], entry["actor"])
    when = parse_time(entry["time"])
    _, lines[5] = seal_line(draft, seq=entry["seq"], prev=entry["prev"], time=when)
    middle.write_bytes(b"".join(lines))

    proc = start_daemon(config, listener, tmp_path / "recd.log")
    try:
        listener.wait_for("READY=1", timeout=60)
        paused = paused_status(listener)
        assert paused.startswith(f"{middle}: entry {entry['seq'] + 1} does not verify"), paused
        assert (tmp_path / "recordings/L1/due.wav").exists(), "erased with the log in doubt"
        problems = [e for e in audit_entries(tmp_path) if e["action"] == "audit.problem"]
        assert [p["details"]["kind"] for p in problems] == ["segment"]
        sock = str(tmp_path / "recd.sock")
        mark = len(listener.messages)
        done = recctl("--socket", sock, "audit", "acknowledge", "--reason", "checked the backup")
        assert done.returncode == 0, done.stderr
        wait_swept(listener, since=mark)
        wait_until(
            "the due recording erased once acknowledged",
            lambda: not (tmp_path / "recordings/L1/due.wav").exists(),
        )
        stop_daemon(proc, listener)
    finally:
        kill_daemon(proc)
    done = recd("--once", "--config", str(config))
    assert done.returncode == 0, done.stderr
