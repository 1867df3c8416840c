"""Legal holds and early-deletion requests end to end (SPEC sections 5, 6 and 8).

Each test runs `recd --config` as a subprocess with a NotifyListener and drives it with
`python -m recd.cli.main --socket ...` as real processes: two-person verification by two
different Unix users (root only: it creates a group and users, and removes them after),
signature verification with every refusal audited, a whole-licence hold on a running daemon,
and a request run SIGKILLed midway that the restarted daemon finishes with a complete
deletion certificate.
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.helpers import (
    audit_entries,
    check_consistent,
    env,
    kill_daemon,
    rid,
    scrape,
    stop_daemon,
    wait_swept,
    wait_until,
    write_recording,
)
from tests.fakes import NotifyListener
from tests.keys import key_text, signed
from tests.legal import Account, Admins, configure, ctl, running
from tests.tools import free_port

RECEIVED = "2026-11-20T10:00:00Z"

Completed = subprocess.CompletedProcess[str]


# --- keys, licences and request files -------------------------------------------------------------


def document(request_id: str, licence: str = "L3", **scope: Any) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "licence": licence,
        "requested_by": {"name": "Jane Doe", "email": "dpo@three.example", "role": "DPO"},
        "received": RECEIVED,
        "reason": "Erasure requested by the data subject",
        "evidence": "letter THREE/DP/77",
        "scope": scope or {"from": "2000-01-01T00:00:00Z"},
    }


def write_json(path: Path, doc: dict[str, Any], mode: int = 0o600) -> Path:
    path.write_text(json.dumps(doc, indent=2) + "\n")
    path.chmod(mode)
    return path


# --- recctl and the daemon as processes -----------------------------------------------------------


def code(done: Completed) -> tuple[int, str]:
    """Exit status and stderr, for assertions that show both on failure."""
    return done.returncode, done.stderr


def refused(base: Path, subject: str) -> list[dict[str, Any]]:
    return [
        e
        for e in audit_entries(base)
        if e["action"] == "request.refused" and e["subject"] == subject
    ]


def verify_audit(base: Path) -> None:
    log = base / "state" / "audit.log"
    done = ctl(None, "audit", "verify", "--file", str(log))
    assert code(done) == (0, ""), done.stdout
    assert "chain intact" in done.stdout


# --- 1. two-person verification by two different uids (root) -------------------------------------


@pytest.mark.root
def test_two_person_verification_needs_two_different_uids(
    tmp_path: Path,
    listener: NotifyListener,
    keys: dict[str, Ed25519PrivateKey],
    admins: Admins,
    shared: Path,
) -> None:
    """alice registers, cannot approve her own request; bob approves and executes it; the
    certificate names both with their uids; eve, outside the admin group, cannot connect."""
    sock = shared / "recd.sock"
    config = configure(tmp_path, keys, socket=sock, admin_group=admins.group)
    relpaths = ["L1/a.wav", "L1/b.wav", "L1/keep.wav"]
    for relpath in relpaths:
        write_recording(tmp_path, relpath, age_days=1)
    doc = document("REQ-2P-1", "L1", recordings=[rid("L1/a.wav"), rid("L1/b.wav")])
    req = write_json(shared / "REQ.json", doc, mode=0o644)
    out = shared / "bob"
    out.mkdir(mode=0o700)
    os.chown(out, admins.bob.uid, admins.bob.gid)
    alice, bob, eve = admins.alice, admins.bob, admins.eve

    def as_(user: Account, *args: str) -> Completed:
        return ctl(sock, *args, user=user, foreign=admins.foreign)

    with running(config, tmp_path, listener) as proc:
        st = os.stat(sock)
        assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o660, grp.getgrnam(admins.group).gr_gid)

        added = as_(alice, "request", "add", "--file", str(req), "--json")
        assert code(added) == (0, "")
        request = json.loads(added.stdout)
        assert (request["state"], request["registered_by"]) == ("received", alice.name)

        own = as_(alice, "request", "approve", "REQ-2P-1")
        assert own.returncode == 3, own.stderr
        assert "cannot also approve" in own.stderr and alice.name in own.stderr
        early = as_(bob, "delete", "--request-id", "REQ-2P-1", "--yes")
        assert early.returncode == 3, early.stderr
        assert "not verified" in early.stderr

        outsider = as_(eve, "request", "approve", "REQ-2P-1")
        assert outsider.returncode == 77, outsider.stderr
        assert as_(eve, "status").returncode == 77

        approved = as_(bob, "request", "approve", "REQ-2P-1", "--json")
        assert code(approved) == (0, "")
        assert json.loads(approved.stdout)["state"] == "verified"

        deleted = as_(bob, "delete", "--request-id", "REQ-2P-1", "--yes")
        assert deleted.returncode == 0, deleted.stderr
        assert not (tmp_path / "recordings/L1/a.wav").exists()
        assert not (tmp_path / "recordings/L1/b.wav").exists()
        assert (tmp_path / "recordings/L1/keep.wav").exists()

        cert_file = out / "REQ-2P-1.json"
        written = as_(bob, "request", "certificate", "REQ-2P-1", "--output", str(cert_file))
        assert written.returncode == 0, written.stderr
        assert (cert_file.stat().st_uid, stat.S_IMODE(cert_file.stat().st_mode)) == (
            bob.uid, 0o644,
        )  # fmt: skip
        stop_daemon(proc, listener)

    data = cert_file.read_bytes()
    cert = json.loads(data)
    assert cert["state"] == "completed"
    assert {k: cert["verification"][k] for k in (
        "method", "registered_by", "registered_uid", "approved_by", "approved_uid"
    )} == {
        "method": "two-person",
        "registered_by": alice.name, "registered_uid": alice.uid,
        "approved_by": bob.name, "approved_uid": bob.uid,
    }  # fmt: skip
    assert sorted(e["id"] for e in cert["erased"]) == sorted(doc["scope"]["recordings"])
    verify_audit(tmp_path)
    entries = audit_entries(tmp_path)
    digest = hashlib.sha256(data).hexdigest()
    assert [e["details"]["sha256"] for e in entries if e["action"] == "request.certificate"] == [
        digest
    ]
    by_action = {e["action"]: e for e in entries if e["subject"] == "REQ-2P-1"}
    registered, approval = by_action["request.registered"], by_action["request.approved"]
    assert (registered["actor"], registered["details"]["uid"]) == (alice.name, alice.uid)
    assert (approval["actor"], approval["details"]["uid"]) == (bob.name, bob.uid)
    (own_refusal,) = [e for e in refused(tmp_path, "REQ-2P-1") if e["details"]["step"] == "approve"]
    assert (own_refusal["actor"], own_refusal["details"]["uid"]) == (alice.name, alice.uid)
    check_consistent(tmp_path, relpaths)


# --- 2. signature verification and every refusal ------------------------------------------------


def test_signed_requests_and_every_refusal_are_audited(
    tmp_path: Path, listener: NotifyListener, keys: dict[str, Ed25519PrivateKey]
) -> None:
    config = configure(tmp_path, keys)
    sock = tmp_path / "recd.sock"
    for relpath in ("L1/other.wav", "L3/mine.wav"):
        write_recording(tmp_path, relpath, age_days=1)
    jane, mallory, oscar = keys["jane"], keys["mallory"], keys["oscar"]
    uid = os.geteuid()
    good = signed(document("REQ-OK", recordings=[rid("L3/mine.wav")]), jane)
    altered = good | {"reason": "changed after signing"}
    # (request id, document, exit status, what stderr says)
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("REQ-EMPTY", signed(document("REQ-EMPTY") | {"scope": {}}, jane), 2, "scope: empty"),
        ("REQ-OUTSIDE", signed(document("REQ-OUTSIDE", recordings=[rid("L1/other.wav")]), jane),
         3, "belongs to L1, not to L3"),
        ("REQ-NOLIC", signed(document("REQ-NOLIC", "L9"), jane), 3, "licence L9 has no file"),
        ("REQ-MAL", signed(document("REQ-MAL"), mallory), 3, "an agent of licence L2, not of L3"),
        ("REQ-ODD", signed(document("REQ-ODD"), oscar), 3, "a key that no licence lists"),
        ("REQ-OK", altered, 3, "already registered with different content"),
        ("REQ-BAD", signed(document("REQ-BAD"), jane) | {"evidence": "swapped"}, 3,
         "does not match the request's content"),
        ("REQ-NOSIG", document("REQ-NOSIG"), 3, "is not signed"),
        ("REQ-TIME", signed(document("REQ-TIME") | {"received": "yesterday"}, jane), 2,
         "received: not an ISO 8601 time"),
        ("REQ-RANGE", signed(document("REQ-RANGE", **{"from": "2026-13-01T00:00:00Z"}), jane),
         2, "scope.from: "),
        ("../x", signed(document("../x"), jane), 2, "request_id: "),
    ]  # fmt: skip
    with running(config, tmp_path, listener) as proc:
        added = ctl(sock, "request", "add", "--file",
                    str(write_json(tmp_path / "ok.json", good)), "--json")  # fmt: skip
        assert code(added) == (0, "")
        request = json.loads(added.stdout)
        assert (request["state"], request["verification"]) == ("verified", "signature")
        assert request["signed_by"] == {
            "name": "Jane Doe", "email": "dpo@three.example", "key": key_text(jane)
        }  # fmt: skip
        again = ctl(sock, "request", "add", "--file", str(tmp_path / "ok.json"), "--json")
        assert code(again) == (0, "") and json.loads(again.stdout)["existing"] is True

        for n, (request_id, doc, status, message) in enumerate(cases):
            before = len(refused(tmp_path, request_id))
            path = write_json(tmp_path / f"case{n}.json", doc)
            done = ctl(sock, "request", "add", "--file", str(path))
            assert done.returncode == status, (request_id, done.stderr)
            assert message in done.stderr, (request_id, done.stderr)
            assert done.stderr.startswith(f"recctl: {path}: ") or status != 2, done.stderr
            new = refused(tmp_path, request_id)[before:]
            assert len(new) == 1, (request_id, new)
            assert new[0]["details"]["uid"] == uid and new[0]["details"]["step"] == "register"
            assert message.split(": ")[0] in new[0]["details"]["reason"]

        # The same administrator cannot register and approve (L1 verifies by two people).
        two = write_json(tmp_path / "two.json", document("REQ-2P", "L1", party="+441234567890"))
        assert code(ctl(sock, "request", "add", "--file", str(two))) == (0, "")
        own = ctl(sock, "request", "approve", "REQ-2P")
        assert own.returncode == 3 and "cannot also approve" in own.stderr, own.stderr
        assert [e["details"]["step"] for e in refused(tmp_path, "REQ-2P")] == ["approve"]
        # An unsigned request for a signature licence given as flags is refused too.
        flags = ctl(sock, "request", "add", "--request-id", "REQ-FLAGS", "--licence", "L3",
                    "--requester-name", "J", "--requester-email", "j@x.example",
                    "--requester-role", "DPO", "--reason", "r", "--evidence", "e",
                    "--party", "+44123")  # fmt: skip
        assert flags.returncode == 3 and "is not signed" in flags.stderr, flags.stderr

        listed = ctl(sock, "request", "ls", "--json")
        assert code(listed) == (0, "")
        states = {r["id"]: r["state"] for r in json.loads(listed.stdout)}
        assert states == {"REQ-OK": "verified", "REQ-2P": "received"}
        # Nothing refused erased anything; the verified one runs.
        assert (tmp_path / "recordings/L1/other.wav").exists()
        deleted = ctl(sock, "delete", "--request-id", "REQ-OK", "--yes")
        assert deleted.returncode == 0, deleted.stderr
        assert not (tmp_path / "recordings/L3/mine.wav").exists()
        # A recording id not indexed yet passes registration; once indexed under another
        # licence, the run still does not reach it.
        late = signed(document("REQ-LATE", recordings=[rid("L1/late.wav")]), jane)
        path = write_json(tmp_path / "late.json", late)
        assert code(ctl(sock, "request", "add", "--file", str(path))) == (0, "")
        write_recording(tmp_path, "L1/late.wav", age_days=1)
        wait_until("L1/late.wav indexed", lambda: len(ls_json(sock, "--licence", "L1")) == 2)
        run = ctl(sock, "delete", "--request-id", "REQ-LATE", "--yes")
        assert run.returncode == 4, run.stderr  # done in part: the one recording is not its
        assert (tmp_path / "recordings/L1/late.wav").exists()
        late_cert = json.loads(ctl(sock, "request", "certificate", "REQ-LATE").stdout)
        assert (late_cert["erased"], late_cert["summary"]["bytes_erased"]) == ([], 0)
        (skipped,) = late_cert["skipped"]
        assert skipped["reason"] == "not erased: it belongs to L1, not to L3"
        stop_daemon(proc, listener)
    verify_audit(tmp_path)
    check_consistent(tmp_path, ["L1/other.wav", "L3/mine.wav", "L1/late.wav"])


# --- 3. a whole-licence hold on a running daemon ------------------------------------------------


def samples(text: str) -> dict[str, float]:
    """Unlabelled samples of a scrape by name."""
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.labels
    }


def scrape_metrics(port: int) -> dict[str, float]:
    status, body = scrape(port)
    assert status == 200
    return samples(body)


def ls_json(sock: Path, *args: str) -> list[dict[str, Any]]:
    done = ctl(sock, "ls", "--json", *args)
    assert code(done) == (0, "")
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def test_a_whole_licence_hold_keeps_later_recordings_until_released(
    tmp_path: Path, listener: NotifyListener, keys: dict[str, Ed25519PrivateKey]
) -> None:
    port = free_port()
    config = configure(tmp_path, keys, listen=f"127.0.0.1:{port}", release_grace="0s")
    sock = tmp_path / "recd.sock"
    write_recording(tmp_path, "L1/recent.wav", age_days=1)  # held, but not due anyway
    old = [f"L1/old-{n}.wav" for n in range(5)]
    with running(config, tmp_path, listener) as proc:
        placed = ctl(sock, "hold", "place", "--licence", "L1", "--case", "CASE-9",
                     "--reason", "court order")  # fmt: skip
        assert placed.returncode == 0, placed.stderr
        hold = placed.stdout.strip()
        assert hold.startswith("H-"), placed.stdout
        # Written after the hold: past their deadline, indexed later, held all the same; L2's
        # recording of the same age shows that the sweeps ran meanwhile.
        for relpath in old:
            write_recording(tmp_path, relpath, age_days=40)
        write_recording(tmp_path, "L2/old.wav", age_days=40)
        wait_until(
            "L2's recording erased", lambda: not (tmp_path / "recordings/L2/old.wav").exists()
        )
        wait_until("every L1 recording indexed", lambda: len(ls_json(sock, "--licence", "L1")) == 6)
        mark = len(listener.messages)
        assert ctl(sock, "scan").returncode == 0
        wait_swept(listener, since=mark)  # a sweep after the scan, all of them indexed
        rows = ls_json(sock, "--licence", "L1")
        now = datetime.now(UTC)
        assert {r["location"].split("/")[-1]: r["held"] for r in rows} == {
            Path(p).name: True for p in [*old, "L1/recent.wav"]
        }
        overdue = [r for r in rows if datetime.fromisoformat(r["deadline"]) < now]
        assert len(overdue) == len(old)
        assert all((tmp_path / "recordings" / p).exists() for p in old)
        shown = json.loads(ctl(sock, "hold", "show", hold, "--json").stdout)
        assert (shown["whole_licence"], shown["held"], shown["state"]) == (True, 6, "active")
        metrics = scrape_metrics(port)
        assert (metrics["recd_held_recordings"], metrics["recd_holds_active"]) == (6, 1)
        assert metrics["recd_overdue_recordings"] == 0

        released = ctl(sock, "hold", "release", hold, "--reason", "case closed", "--json")
        assert code(released) == (0, "")
        result = json.loads(released.stdout)
        assert (result["state"], result["released"]) == ("released", 6)
        wait_until(
            "the released recordings erased",
            lambda: not any((tmp_path / "recordings" / p).exists() for p in old),
        )
        assert (tmp_path / "recordings/L1/recent.wav").exists()
        metrics = scrape_metrics(port)
        assert (metrics["recd_held_recordings"], metrics["recd_holds_active"]) == (0, 0)
        assert json.loads(ctl(sock, "hold", "ls", "--json").stdout) == []
        stop_daemon(proc, listener)
    verify_audit(tmp_path)
    check_consistent(tmp_path, [*old, "L1/recent.wav", "L2/old.wav"])
    entries = audit_entries(tmp_path)
    uid = os.geteuid()
    holds = [(e["action"], e["details"]["uid"]) for e in entries if e["subject"] == hold]
    assert holds == [("hold.placed", uid), ("hold.released", uid)]
    released_at = next(e["seq"] for e in entries if e["action"] == "hold.released")
    erased = {e["subject"]: e["seq"] for e in entries if e["action"] == "erase.done"}
    assert {rid(p) for p in old} <= set(erased)
    assert all(erased[rid(p)] > released_at for p in old), "erased before the release"


# --- 4. a request run SIGKILLed midway resumes -------------------------------------------------

FILES = 600
SIZE = 256 * 1024


@pytest.mark.parametrize(
    "erased_first",
    [1, 300],
    ids=["killed-in-the-first-batch", "killed-after-the-first-batch"],
)
def test_a_request_run_killed_midway_resumes_and_certifies_every_recording(
    tmp_path: Path,
    listener: NotifyListener,
    keys: dict[str, Ed25519PrivateKey],
    erased_first: int,
) -> None:
    """SIGKILL the daemon once ``erased_first`` files are gone: inside the first batch of
    erasures (recovery settles the intents in flight), or in the second one, after the first
    batch's outcomes were stored. The restarted daemon finishes the run by itself."""
    config = configure(tmp_path, keys, verify=True)
    sock = tmp_path / "recd.sock"
    relpaths = [f"L3/r{n:03}.wav" for n in range(FILES)]
    digests = {}
    for relpath in relpaths:
        path = write_recording(tmp_path, relpath, age_days=1, size=SIZE)
        digests[rid(relpath)] = hashlib.sha256(path.read_bytes()).hexdigest()
    doc = signed(document("REQ-BIG", recordings=sorted(digests)), keys["jane"])
    req = write_json(tmp_path / "big.json", doc)

    def left() -> int:
        return sum((tmp_path / "recordings" / p).exists() for p in relpaths)

    with running(config, tmp_path, listener) as proc:
        assert code(ctl(sock, "request", "add", "--file", str(req))) == (0, "")
        with (tmp_path / "delete.out").open("w") as out, (tmp_path / "delete.err").open("w") as err:
            client = subprocess.Popen(
                [sys.executable, "-m", "recd.cli.main", "--socket", str(sock),
                 "delete", "--request-id", "REQ-BIG", "--yes"],
                stdout=out, stderr=err, env=env(),
            )  # fmt: skip
        try:
            wait_until(
                f"{erased_first} files erased",
                lambda: left() <= FILES - erased_first,
                timeout=180,  # a bound, not a timing: seen over 60 s on a loaded machine
                every=0.005,
            )
            kill_daemon(proc)
            assert client.wait(timeout=30) != 0
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
    remaining = left()
    assert 0 < remaining < FILES, f"the kill landed after the run: {remaining} left"
    show: dict[str, Any] = {}

    def completed() -> bool:
        done = ctl(sock, "request", "show", "REQ-BIG", "--json")
        if done.returncode == 0:
            show.update(json.loads(done.stdout))
        return show.get("state") == "completed"

    with running(config, tmp_path, listener) as proc:
        wait_until("the run resumed and completed", completed, timeout=60, every=0.2)
        assert left() == 0
        assert show["counts"] == {"erased": FILES, "held": 0, "failed": 0, "gone": 0,
                                  "pending": 0}  # fmt: skip
        got = ctl(sock, "request", "certificate", "REQ-BIG")
        assert code(got) == (0, "")
        # Running it again is safe: nothing left to erase, the same certificate.
        digest = hashlib.sha256(got.stdout.encode()).hexdigest()
        again = ctl(sock, "delete", "--request-id", "REQ-BIG", "--yes")
        assert code(again) == (
            0,
            f"request REQ-BIG: nothing left to erase; certificate unchanged (sha256 {digest})\n",
        )
        kept = ctl(sock, "request", "certificate", "REQ-BIG")
        assert code(kept) == (0, "")
        stop_daemon(proc, listener)
    assert kept.stdout == got.stdout
    cert = json.loads(got.stdout)
    assert cert["state"] == "completed"
    assert cert["summary"]["erased"] == FILES
    assert cert["summary"]["bytes_erased"] == FILES * SIZE
    assert (cert["skipped"], cert["already_gone"]) == ([], [])
    assert {e["id"]: e["sha256"] for e in cert["erased"]} == digests
    seqs = [e["audit_seq"] for e in cert["erased"]]
    assert len(set(seqs)) == FILES
    entries = audit_entries(tmp_path)
    by_seq = {e["seq"]: e for e in entries}
    for item in cert["erased"]:
        entry = by_seq[item["audit_seq"]]
        assert (entry["action"], entry["subject"]) == ("erase.done", item["id"])
        assert entry["details"]["sha256"] == item["sha256"]
        assert entry["details"]["reason"] == "request:REQ-BIG"
    starts = [e for e in entries if e["action"] == "request.started"]
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert [(e["details"]["run"], e["actor"]) for e in starts] == [(1, me), (2, "recd")]
    assert [e["details"]["sha256"] for e in entries if e["action"] == "request.certificate"] == [
        digest
    ]
    verify_audit(tmp_path)
    check_consistent(tmp_path, relpaths)


# --- 5. the approver's preview; a second run with nothing left --------------------------------


@pytest.mark.root
def test_the_approver_previews_and_running_again_keeps_the_certificate(
    tmp_path: Path,
    listener: NotifyListener,
    keys: dict[str, Ed25519PrivateKey],
    admins: Admins,
    shared: Path,
) -> None:
    """bob sees what alice's request erases before he approves it, and nothing changes; once
    it has run, running it again keeps the certificate the customer has, and `audit ls` shows
    its digest first."""
    sock = shared / "recd.sock"
    config = configure(tmp_path, keys, socket=sock, admin_group=admins.group)
    relpaths = ["L1/a.wav", "L1/keep.wav"]
    path = write_recording(tmp_path, relpaths[0], age_days=1)
    write_recording(tmp_path, relpaths[1], age_days=1)
    req = write_json(shared / "REQ.json", document("REQ-2P-2", "L1", recordings=[rid("L1/a.wav")]),
                     mode=0o644)  # fmt: skip
    alice, bob = admins.alice, admins.bob

    def as_(user: Account, *args: str) -> Completed:
        return ctl(sock, *args, user=user, foreign=admins.foreign)

    with running(config, tmp_path, listener) as proc:
        assert code(as_(alice, "request", "add", "--file", str(req))) == (0, "")
        before = audit_entries(tmp_path)
        preview = as_(bob, "delete", "--request-id", "REQ-2P-2", "--dry-run")
        assert code(preview) == (
            0,
            "dry run: nothing erased; request REQ-2P-2 is not verified yet: nothing can be "
            "erased until a second administrator runs `recctl request approve REQ-2P-2`\n",
        )
        head, columns, row = preview.stdout.splitlines()
        assert head == (
            "request REQ-2P-2 for licence L1, not verified yet: 1 recording to erase once "
            "approved (4.1 kB), 0 held, 0 already gone"
        )
        assert (columns.split(), row.split()) == (
            ["ID", "LOCATION", "SIZE", "OUTCOME", "HOLDS", "NOTE"],
            [rid("L1/a.wav"), str(path), "4.1", "kB", "erase", "-", "-"],
        )
        assert audit_entries(tmp_path) == before and path.exists()
        assert code(as_(bob, "request", "approve", "REQ-2P-2")) == (0, "")
        assert code(as_(bob, "delete", "--request-id", "REQ-2P-2", "--yes")) == (0, "")
        first = as_(bob, "request", "certificate", "REQ-2P-2")
        assert code(first) == (0, "") and not path.exists()
        digest = hashlib.sha256(first.stdout.encode()).hexdigest()
        audited = audit_entries(tmp_path)
        again = as_(alice, "delete", "--request-id", "REQ-2P-2", "--yes")
        assert code(again) == (
            0,
            f"request REQ-2P-2: nothing left to erase; certificate unchanged (sha256 {digest})\n",
        )
        assert as_(bob, "request", "certificate", "REQ-2P-2").stdout == first.stdout
        assert audit_entries(tmp_path) == audited
        stop_daemon(proc, listener)
    log = tmp_path / "state" / "audit.log"
    listed = ctl(None, "audit", "ls", "--file", str(log), "--action", "request.certificate")
    assert code(listed) == (0, "")
    (row,) = listed.stdout.splitlines()[1:]
    assert row.endswith(f"  request.certificate  REQ-2P-2  sha256={digest} erased=…")
    verify_audit(tmp_path)
    check_consistent(tmp_path, relpaths)
