"""Legal holds survive a lost catalogue (SPEC section 8, issue 14): the audit log is the record.

Each test places a hold through a real daemon and `recctl`, stops it, loses `catalog.db`
(deleted, or truncated to 0 bytes) and starts recd again (`recd --once` or the daemon): the
holds come back from the audit log, with their ids, before anything is erased. A due recording
the hold does not cover is erased in the same run, which shows the sweep did run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recd.adapters.auditlog.log import FileAuditLog
from recd.core.audit import AuditDraft, canonical_json
from tests.e2e.helpers import (
    age,
    audit_entries,
    ctl,
    held_and_due,
    kill_daemon,
    place,
    rebuilt,
    recctl,
    recd,
    rid,
    running,
    start_daemon,
    wait_swept,
    wait_until,
    write_estate,
    write_estate_with_grace,
    write_recording,
)
from tests.fakes import NotifyListener
from tests.keys import key_text, signed

Completed = subprocess.CompletedProcess[str]


def once(config: Path) -> Completed:
    done = recd("--once", "--config", str(config))
    assert done.returncode == 0, done.stderr
    return done


def utc(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_deleted_catalogue_keeps_the_hold_in_a_once_run(
    tmp_path: Path, listener: NotifyListener
) -> None:
    config, hold = held_and_due(tmp_path, listener)
    (tmp_path / "state" / "catalog.db").unlink()

    done = once(config)

    assert (tmp_path / "recordings/L1/held.wav").exists(), done.stdout
    assert not (tmp_path / "recordings/L1/other.wav").exists(), "the sweep did not run"
    assert "missing; rebuilt 1 legal hold (1 active, 0 released)" in done.stderr
    [details] = rebuilt(tmp_path)
    assert (details["why"], details["holds"], details["active"]) == ("missing", 1, 1)
    with running(config, tmp_path, listener) as sock:
        holds = json.loads(ctl(sock, "hold", "ls", "--json").stdout)
        assert [(h["id"], h["case"], h["state"]) for h in holds] == [(hold, "CASE-1", "active")]
        assert place(sock, "--recording", rid("L1/held.wav")) != hold, "an id given twice"
    assert len(rebuilt(tmp_path)) == 1, "a marked catalogue was rebuilt again"


def test_a_catalogue_truncated_to_nothing_keeps_the_hold_in_the_daemon(
    tmp_path: Path, listener: NotifyListener
) -> None:
    config, hold = held_and_due(tmp_path, listener)
    os.truncate(tmp_path / "state" / "catalog.db", 0)

    with running(config, tmp_path, listener) as sock:
        assert not (tmp_path / "recordings/L1/other.wav").exists(), "the sweep did not run"
        assert (tmp_path / "recordings/L1/held.wav").exists()
        shown = json.loads(ctl(sock, "hold", "show", hold, "--json").stdout)
        assert (shown["state"], shown["held"]) == ("active", 1)
    [details] = rebuilt(tmp_path)
    assert (details["why"], details["holds"]) == ("empty", 1)
    assert "empty (0 bytes); rebuilt 1 legal hold" in (tmp_path / "recd.log").read_text()


def test_a_released_hold_keeps_its_grace_after_a_rebuild(
    tmp_path: Path, listener: NotifyListener
) -> None:
    config = write_estate_with_grace(tmp_path, release_grace="6s")
    write_recording(tmp_path, "L1/held.wav", age_days=5)
    with running(config, tmp_path, listener) as sock:
        hold = place(sock, "--recording", rid("L1/held.wav"))
        released = json.loads(
            ctl(sock, "hold", "release", hold, "--reason", "case closed", "--json").stdout
        )
    due_from = next(
        datetime.fromisoformat(e["details"]["due_from"].replace("Z", "+00:00"))
        for e in audit_entries(tmp_path)
        if e["action"] == "hold.released"
    )
    assert released["state"] == "released"
    age(tmp_path, "L1/held.wav", 40)
    (tmp_path / "state" / "catalog.db").unlink()

    once(config)
    assert datetime.now(UTC) < due_from, "the test was too slow to show the grace"
    assert (tmp_path / "recordings/L1/held.wav").exists(), "erased before due_from"
    [details] = rebuilt(tmp_path)
    assert (details["holds"], details["active"], details["released"]) == (1, 0, 1)

    time.sleep(max(0.0, (due_from - datetime.now(UTC)).total_seconds()) + 0.1)
    once(config)
    assert not (tmp_path / "recordings/L1/held.wav").exists(), "kept after due_from"


def test_a_recording_indexed_after_the_rebuild_is_held_by_the_rule(
    tmp_path: Path, listener: NotifyListener
) -> None:
    config = write_estate_with_grace(tmp_path)
    now = datetime.now(UTC)
    with running(config, tmp_path, listener) as sock:
        place(sock, "--from", utc(now - timedelta(days=50)), "--to", utc(now - timedelta(days=35)))
    (tmp_path / "state" / "catalog.db").unlink()
    # Never indexed before the catalogue was lost: due, one in the hold's range, one older.
    write_recording(tmp_path, "L1/in-range.wav", age_days=40)
    write_recording(tmp_path, "L1/older.wav", age_days=60)

    once(config)

    assert (tmp_path / "recordings/L1/in-range.wav").exists()
    assert not (tmp_path / "recordings/L1/older.wav").exists(), "the sweep did not run"


# --- requests and breakers (issue 14 point 1) ----------------------------------------------------


def signed_request(request_id: str, key: Ed25519PrivateKey, *relpaths: str) -> dict[str, Any]:
    return signed({
        "request_id": request_id,
        "licence": "L3",
        "requested_by": {"name": "Jane Doe", "email": "dpo@three.example", "role": "DPO"},
        "received": "2026-11-20T10:00:00Z",
        "reason": "Erasure requested by the data subject",
        "evidence": "letter THREE/DP/77",
        "scope": {"recordings": [rid(p) for p in relpaths]},
    }, key)  # fmt: skip


def show(sock: Path, request_id: str) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(ctl(sock, "request", "show", request_id, "--json").stdout)
    return shown


def erases(base: Path) -> int:
    return sum(1 for e in audit_entries(base) if e["action"].startswith("erase."))


def test_requests_and_a_released_breaker_survive_a_deleted_catalogue(
    tmp_path: Path, listener: NotifyListener
) -> None:
    """REQ-A registered (signed: verified), REQ-DONE run to its certificate; L1's breaker
    tripped, then released with the daemon stopped; catalog.db deleted. The daemon started
    again shows both requests as they were, erases what the release let through (a new
    catalogue alone would trip again: all 3 of L1's are due), runs REQ-A with the same
    digest and signer, and REQ-DONE again changes nothing."""
    config = write_estate(tmp_path, listen="127.0.0.1:0", min_breaker_count=2)
    jane = Ed25519PrivateKey.generate()
    (tmp_path / "licences.d" / "l3.toml").write_text(
        'id = "L3"\nname = "Three"\nretention = "30d"\nverification = "signature"\n\n'
        f'[[agent]]\nname = "Jane Doe"\nemail = "dpo@three.example"\n'
        f'public_key = "{key_text(jane)}"\n'
    )
    for name in ("a", "b", "keep", "done"):
        write_recording(tmp_path, f"L3/{name}.wav", age_days=1)
    for n in range(3):
        write_recording(tmp_path, f"L1/old{n}.wav", age_days=40)
    files = {}
    for request_id, relpaths in (
        ("REQ-A", ("L3/a.wav", "L3/b.wav")),
        ("REQ-DONE", ("L3/done.wav",)),
    ):
        files[request_id] = tmp_path / f"{request_id}.json"
        files[request_id].write_text(json.dumps(signed_request(request_id, jane, *relpaths)))
    with running(config, tmp_path, listener) as sock:
        assert "L1" in json.loads(ctl(sock, "status", "--json").stdout)["breaker"]
        for path in files.values():
            ctl(sock, "request", "add", "--file", str(path))
        ctl(sock, "delete", "--request-id", "REQ-DONE", "--yes")
        before = {r: show(sock, r) for r in files}
    assert before["REQ-A"]["state"] == "verified" and before["REQ-DONE"]["state"] == "completed"
    certificate = tmp_path / "state" / "certificates" / "REQ-DONE.json"
    sha256 = hashlib.sha256(certificate.read_bytes()).hexdigest()
    assert before["REQ-DONE"]["certificate"]["sha256"] == sha256
    released = recd("release-breaker", "L1", "--config", str(config))
    assert released.returncode == 0, released.stderr
    assert all((tmp_path / f"recordings/L1/old{n}.wav").exists() for n in range(3))
    (tmp_path / "state" / "catalog.db").unlink()

    with running(config, tmp_path, listener) as sock:
        assert not any((tmp_path / f"recordings/L1/old{n}.wav").exists() for n in range(3)), (
            "the release was lost with the catalogue"
        )
        assert {r: show(sock, r) for r in files} == before
        listed = json.loads(ctl(sock, "request", "ls", "--json").stdout)
        assert {r["id"]: r["state"] for r in listed} == {
            "REQ-A": "verified",
            "REQ-DONE": "completed",
        }
        count = erases(tmp_path)
        again = recctl("--socket", str(sock), "delete", "--request-id", "REQ-DONE", "--yes")
        assert again.returncode == 0, again.stderr
        assert erases(tmp_path) == count, "a request run before the loss erased again"
        assert hashlib.sha256(certificate.read_bytes()).hexdigest() == sha256
        ctl(sock, "delete", "--request-id", "REQ-A", "--yes")
        cert = json.loads(ctl(sock, "request", "certificate", "REQ-A").stdout)
    assert (tmp_path / "recordings/L3/keep.wav").exists()
    assert not (tmp_path / "recordings/L3/a.wav").exists()
    assert not (tmp_path / "recordings/L3/b.wav").exists()
    assert (cert["request"]["id"], cert["request"]["digest"]) == ("REQ-A", hashlib.sha256(
        canonical_json(json.loads(files["REQ-A"].read_text()))).hexdigest())  # fmt: skip
    assert cert["verification"]["signed_by"] == before["REQ-A"]["signed_by"]
    assert sorted(e["id"] for e in cert["erased"]) == sorted([rid("L3/a.wav"), rid("L3/b.wav")])
    [details] = rebuilt(tmp_path)
    assert {k: details[k] for k in ("requests", "certificates", "breakers", "problems")} == {
        "requests": 2, "certificates": 1, "breakers": 1, "problems": [],
    }  # fmt: skip
    assert [e["action"] for e in audit_entries(tmp_path) if e["subject"] == "L1"][-1] == (
        "breaker.rearmed"
    )


def test_a_catalogue_restored_from_before_a_hold_gets_only_the_entries_since(
    tmp_path: Path, listener: NotifyListener
) -> None:
    config = write_estate_with_grace(tmp_path)
    write_recording(tmp_path, "L1/held.wav", age_days=5)
    write_recording(tmp_path, "L1/was-held.wav", age_days=5)
    write_recording(tmp_path, "L1/free.wav", age_days=5)
    state = tmp_path / "state"
    with running(config, tmp_path, listener) as sock:
        early = place(sock, "--recording", rid("L1/was-held.wav"))
    backup = tmp_path / "backup"
    backup.mkdir()
    for name in ("catalog.db", "catalog.db-wal"):  # stopped: the WAL was folded in
        if (state / name).exists():
            shutil.copy(state / name, backup / name)
    with running(config, tmp_path, listener) as sock:
        hold = place(sock, "--recording", rid("L1/held.wav"))
        ctl(sock, "hold", "release", early, "--reason", "case closed")
    for name in ("catalog.db-wal", "catalog.db-shm"):
        (state / name).unlink(missing_ok=True)
    shutil.copytree(backup, state, dirs_exist_ok=True)  # yesterday's catalogue, today's log
    for relpath in ("L1/held.wav", "L1/was-held.wav", "L1/free.wav"):
        age(tmp_path, relpath, 40)

    with running(config, tmp_path, listener) as sock:
        # The rebuilt catalogue's first status already names a deadline, so ``running`` may
        # return before the first sweep (seen in CI under coverage): wait for its erase.
        free = tmp_path / "recordings/L1/free.wav"
        wait_until("the sweep erased free.wav", lambda: not free.exists(), timeout=60)
        assert (tmp_path / "recordings/L1/held.wav").exists(), "a hold placed since was lost"
        assert (tmp_path / "recordings/L1/was-held.wav").exists(), "released: in its grace"
        shown = json.loads(ctl(sock, "hold", "show", hold, "--json").stdout)
        assert (shown["state"], shown["held"]) == ("active", 1)
        shown = json.loads(ctl(sock, "hold", "show", early, "--json").stdout)
        assert shown["state"] == "released"
    [details] = rebuilt(tmp_path)
    assert (details["why"], details["entries"], details["holds"]) == ("behind", 2, 2)
    placed_at = next(e["seq"] for e in audit_entries(tmp_path) if e["subject"] == hold)
    assert 0 < details["mark_seq"] < placed_at, "not replayed from the mark"


def test_sigkill_during_a_rebuild_then_a_restart_restores_every_hold(
    tmp_path: Path, listener: NotifyListener
) -> None:
    config = write_estate_with_grace(tmp_path)
    write_recording(tmp_path, "L1/held.wav", age_days=5)
    write_recording(tmp_path, "L1/free.wav", age_days=5)
    once(config)
    many = 10_000  # a rebuild that takes a second or two: the SIGKILL lands inside it
    held_scope = {"recordings": [rid("L1/held.wav")]}
    with FileAuditLog.open(tmp_path / "state" / "audit.log", datetime.now(UTC)) as log:
        log.append(
            [
                AuditDraft("hold.placed", f"H-{n:04d}", {
                    "licence": "L1", "case": f"C-{n}", "reason": "court order",
                    "scope": held_scope if n == many else {"call_ids": [str(n)]},
                }, "alice")
                for n in range(1, many + 1)
            ],
            datetime.now(UTC),
        )  # fmt: skip
    (tmp_path / "state" / "catalog.db").unlink()
    age(tmp_path, "L1/held.wav", 40)
    age(tmp_path, "L1/free.wav", 40)

    proc = start_daemon(config, listener, tmp_path / "recd.log")
    try:
        listener.wait_for("STATUS=rebuilding the catalogue from the audit log (was missing)", 60)
        proc.send_signal(signal.SIGKILL)
    finally:
        kill_daemon(proc)
    assert rebuilt(tmp_path) == [], "the SIGKILL came after the rebuild, not during it"
    assert (tmp_path / "recordings/L1/held.wav").exists()

    with running(config, tmp_path, listener) as sock:
        assert (tmp_path / "recordings/L1/held.wav").exists(), "erased after the restart"
        assert not (tmp_path / "recordings/L1/free.wav").exists(), "the sweep did not run"
        holds = json.loads(ctl(sock, "hold", "ls", "--json").stdout)
        assert len(holds) == many
        assert {h["id"] for h in holds} == {f"H-{n:04d}" for n in range(1, many + 1)}
    [details] = rebuilt(tmp_path)
    assert (details["why"], details["holds"], details["active"]) == ("unmarked", many, many)


def test_a_daemon_killed_after_a_hold_has_its_mark_current_and_replays_nothing(
    tmp_path: Path, listener: NotifyListener
) -> None:
    config = write_estate_with_grace(tmp_path)
    write_recording(tmp_path, "L1/held.wav", age_days=5)
    proc = start_daemon(config, listener, tmp_path / "recd.log")
    try:
        listener.wait_for("READY=1", timeout=60)
        wait_swept(listener)
        place(tmp_path / "recd.sock", "--recording", rid("L1/held.wav"))
        proc.send_signal(signal.SIGKILL)
    finally:
        kill_daemon(proc)
    age(tmp_path, "L1/held.wav", 40)

    with running(config, tmp_path, listener):
        assert (tmp_path / "recordings/L1/held.wav").exists()
    assert rebuilt(tmp_path) == [], "the mark had not moved past the hold"
