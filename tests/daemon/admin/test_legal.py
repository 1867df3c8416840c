"""Hold and request commands end to end in-process: a started daemon, its loop on a thread, a
real socket (the caller is this test's uid). Two different uids are in tests/e2e."""

from __future__ import annotations

import grp
import io
import json
import logging
import os
import pwd
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from recd.cli.client import call
from recd.cli.main import main as recctl
from recd.core.model import recording_id
from recd.log import UTCFormatter
from recd.protocol import ErrorKind, RemoteError, Request
from tests.daemon.admin.helpers import Live, legal_estate, signed_request
from tests.estate import Estate
from tests.fakes import FakeClock

#: Who the tests run as: the actor recd records for their commands.
ME = pwd.getpwuid(os.geteuid()).pw_name


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    return legal_estate(tmp_path, fake_clock)


@pytest.fixture
def live(estate: Estate) -> Iterator[Live]:
    running = Live(estate)
    yield running
    running.close()


def error(live: Live, command: str, **args: Any) -> tuple[ErrorKind, str]:
    with pytest.raises(RemoteError) as caught:
        live.ask(command, **args)
    return caught.value.kind, str(caught.value)


def test_hold_place_show_ls_release(live: Live, estate: Estate) -> None:
    hold = live.ask("hold place", licence="L1", case="CASE-9", reason="court order")
    assert (hold["id"], hold["whole_licence"], hold["held"], hold["state"]) == (
        "H-0001", True, 1, "active",
    )  # fmt: skip
    assert hold["placed_by"] == ME
    assert live.ask("hold show", hold="H-0001")["held"] == 1
    assert [h["id"] for h in live.ask("hold ls")] == ["H-0001"]
    rows = live.ask("ls", licence="L1")
    assert [r["held"] for r in rows] == [True]
    snapshot = live.daemon.snapshot()
    assert (snapshot.held, snapshot.holds_active) == (1, 1)
    released = live.ask("hold release", hold="H-0001", reason="case closed")
    assert released["state"] == "released" and released["released"] == 1
    assert released["due_from"] == "2026-11-30T12:00:00Z"
    assert live.ask("hold ls") == []
    assert [h["state"] for h in live.ask("hold ls", all=True)] == ["released"]
    assert error(live, "hold show", hold="H-9") == (
        ErrorKind.NOT_FOUND, "no legal hold H-9 (see `recctl hold ls --all`)"
    )  # fmt: skip
    kind, message = error(live, "hold place", licence="L1", case="C", reason="r",
                          **{"from": "soon"})  # fmt: skip
    assert kind is ErrorKind.USAGE and message.startswith("from: ")


def test_signed_request_executes_with_a_hold_winning(live: Live, estate: Estate) -> None:
    held_id = recording_id("pbx", "L3/s0.wav")
    live.ask("hold place", licence="L3", case="C", reason="r", recordings=[held_id])
    added = live.ask("request add", document=signed_request())
    assert added["state"] == "verified" and added["signed_by"]["name"] == "Jane Doe"
    again = live.ask("request add", document=signed_request())
    assert again.get("existing") is True
    preview = live.ask("request preview", request="R-1")
    assert (preview["erase"], preview["held"], preview["bytes"]) == (2, 1, 5)
    run = live.ask("request execute", request="R-1", confirm_all="L3")
    assert run["request"]["state"] == "partial"
    assert run["request"]["counts"] == {"erased": 2, "held": 1, "failed": 0, "gone": 0,
                                        "pending": 0}  # fmt: skip
    cert = live.ask("request certificate", request="R-1")
    assert json.loads(cert["text"])["skipped"][0]["held_by"] == ["H-0001"]
    assert [r["state"] for r in live.ask("request ls")] == ["partial"]
    assert live.ask("request ls", state="received") == []
    shown = live.ask("request show", request="R-1")
    assert sorted(i["outcome"] for i in shown["items"]) == ["erased", "erased", "held"]
    assert live.daemon.snapshot().requests == {"partial": 1}


def test_request_refusals_over_the_socket(live: Live) -> None:
    kind, message = error(live, "request add", document=signed_request() | {"reason": "x"})
    assert kind is ErrorKind.NOT_ALLOWED and "does not match" in message
    kind, message = error(live, "request add", document={"request_id": "R-2"})
    assert kind is ErrorKind.USAGE
    assert error(live, "request approve", request="NOPE")[0] is ErrorKind.NOT_FOUND
    assert error(live, "request ls", state="done")[0] is ErrorKind.USAGE
    assert error(live, "request certificate", request="NOPE")[0] is ErrorKind.NOT_FOUND
    live.ask("request add", document=signed_request("R-ALL"))  # "all": true
    for confirm in ({}, {"confirm_all": "L1"}):
        kind, message = error(live, "request execute", request="R-ALL", **confirm)
        assert kind is ErrorKind.USAGE and message.startswith("confirm_all: ")


def test_a_run_interrupted_by_a_command_finishes_before_the_reply(
    live: Live, estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin command arriving mid-run goes first; the loop resumes the run, and the
    client asking for it waits until the whole run is over."""
    monkeypatch.setattr("recd.service.requestruns.BATCH", 1)
    live.ask("request add", document=signed_request())
    eraser = live.daemon.runtime.erasers["pbx"]
    real = eraser.digest
    barrier = threading.Event()

    def slow_digest(prepared: Any) -> str:
        barrier.set()
        return real(prepared)

    monkeypatch.setattr(eraser, "digest", slow_digest)
    result: dict[str, Any] = {}
    runner = threading.Thread(
        target=lambda: result.update(live.ask("request execute", request="R-1", confirm_all="L3"))
    )
    runner.start()
    assert barrier.wait(10)
    assert live.ask("scan")  # an urgent command in the middle of the run
    runner.join(30)
    assert result["request"]["state"] == "completed"
    assert result["request"]["counts"]["erased"] == 3
    reply = call(estate.config.daemon.socket, Request("request show", {"request": "R-1"}))
    assert reply.unwrap()["counts"]["erased"] == 3


# --- what a person reads: every time to the second ---------------------------------------------

#: Now, with microseconds: each time derived from it would show them if printed in full.
NOW = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)
FRACTION = re.compile(r"\.\d{6}")


class Console:
    """recctl run in-process against the live daemon; keeps everything a person would read."""

    def __init__(self, live: Live, capsys: pytest.CaptureFixture[str]) -> None:
        self.sock = str(live.estate.config.daemon.socket)
        self.capsys = capsys
        self.read: list[str] = []

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        code = recctl(["--socket", self.sock, *argv])
        out, err = self.capsys.readouterr()
        if "--json" not in argv and argv[:2] != ("request", "certificate"):  # not evidence
            self.read += [out, err]
        return code, out, err


def test_every_time_a_person_reads_is_to_the_second(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """recctl's tables, lines and the daemon's error replies, the log and STATUS= show times
    to the second; the audit log and --json keep the microseconds."""
    estate = legal_estate(tmp_path, FakeClock(NOW))
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(UTCFormatter("%(asctime)s %(message)s"))
    logger = logging.getLogger("recd")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    running = Live(estate)
    try:
        _drive(Console(running, capsys), estate)
        status = running.daemon.call_soon(running.daemon.status)  # STATUS=, on the loop
    finally:
        running.close()
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert status == "next deadline 2026-11-30T12:00:00Z; mode enforce"
    logged = lines.getvalue()
    assert "none erased before 2026-11-30T12:00:00Z\n" in logged
    assert not FRACTION.search(logged), logged
    assert {e["time"] for e in estate.audit()} == {"2026-11-23T12:00:00.123456Z"}


def _drive(ctl: Console, estate: Estate) -> None:
    _received(ctl, estate)
    l3 = recording_id("pbx", "L3/s0.wav")
    assert ctl("hold", "place", "--licence", "L3", "--case", "C", "--reason", "r",
               "--recording", l3, "--until", "2026-12-01T10:00:00.5Z")[2] == (
        "hold H-0001 placed on licence L3 (case C) until 2026-12-01T10:00:00Z: 1 recording "
        "held now; recordings indexed later that match are held too\n"
    )  # fmt: skip
    hold = json.loads(ctl("hold", "show", "H-0001", "--json")[1])
    assert (hold["placed_at"], hold["until"]) == (
        "2026-11-23T12:00:00.123456Z", "2026-12-01T10:00:00.500000Z",
    )  # fmt: skip
    assert ctl("hold", "place", "--licence", "L1", "--case", "C", "--reason", "r")[0] == 0
    old = estate.write("L1/old.wav", age_days=40)  # restored from a backup, held at once
    assert ctl("scan")[0] == 0
    assert ctl("hold", "ls")[1].splitlines()[1] == (
        f"H-0001  L3       C     active  1     2026-11-23T12:00:00Z  {ME}  2026-12-01T10:00:00Z"
        "  1 recording"
    )
    assert ctl("hold", "release", "H-0002", "--reason", "done")[1] == (
        "hold H-0002 released: 2 recordings no longer held; none is erased before "
        "2026-11-30T12:00:00Z (holds.release_grace)\n"
    )
    assert ctl("hold", "release", "H-0002", "--reason", "again") == (
        3, "", f"recctl: hold H-0002 was already released at 2026-11-23T12:00:00Z by {ME}\n",
    )  # fmt: skip
    assert ctl("hold", "place", "--licence", "L1", "--case", "C", "--reason", "r",
               "--until", "2026-11-01")[2] == (
        "recctl: --until: 2026-11-01T00:00:00Z has already passed\n"
    )  # fmt: skip
    _deferred(ctl, recording_id("pbx", "L1/old.wav"), estate)
    assert old.exists()
    assert ctl("hold", "release", "H-0001", "--reason", "done")[0] == 0
    _requests(ctl, estate)
    for argv in (["status"], ["ls"], ["request", "ls"], ["request", "show", "R-2"], ["hold", "ls",
                 "--all"], ["audit", "ls", "--file", str(estate.audit_path)]):  # fmt: skip
        assert ctl(*argv)[0] == 0
    read = "".join(ctl.read)
    assert not FRACTION.search(read), read


def _deferred(ctl: Console, rid: str, estate: Estate) -> None:
    """Released 10 days past its deadline: the deadline is the release + the grace, and the
    rows and details say so."""
    rows = {r["id"]: r for r in json.loads(ctl("ls", "--licence", "L1", "--json")[1])}
    assert (rows[rid]["deadline"], rows[rid]["not_before"]) == (
        "2026-11-30T12:00:00.123456Z", "2026-11-30T12:00:00.123456Z",
    )  # fmt: skip
    shown = ctl("show", rid)[1].splitlines()
    at = next(n for n, line in enumerate(shown) if line.startswith("deadline:"))
    assert shown[at : at + 2] == [
        "deadline:    2026-11-30T12:00:00Z (deferred by a legal hold's release; started + 30d is "
        f"2026-11-13T12:00:00Z, by retention in {estate.base}/l1.toml)",
        "not before:  2026-11-30T12:00:00Z (released from a legal hold: release + "
        "holds.release_grace)",
    ]


def _received(ctl: Console, estate: Estate) -> None:
    """A two-person request before its approval: its approver previews it, read-only."""
    doc = signed_request("R-2", recordings=[recording_id("pbx", "L1/b.wav")]) | {"licence": "L1"}
    del doc["signature"]
    two = estate.base / "R-2.json"
    two.write_text(json.dumps(doc))
    assert ctl("request", "add", "--file", str(two))[0] == 0
    two.write_text(json.dumps(doc | {"evidence": "another letter"}))
    assert ctl("request", "add", "--file", str(two))[2] == (
        f"recctl: request id R-2 is already registered with different content (by {ME} at "
        "2026-11-23T12:00:00Z); a new request needs a new id\n"
    )
    before = estate.audit()
    b = estate.root / "L1/b.wav"
    assert ctl("delete", "--request-id", "R-2", "--dry-run") == (
        0,
        "request R-2 for licence L1, not verified yet: 1 recording to erase once approved "
        "(4.1 kB), 0 held, 0 already gone\n"
        f"ID                    {'LOCATION'.ljust(len(str(b)))}  SIZE    OUTCOME  HOLDS  NOTE\n"
        f"{recording_id('pbx', 'L1/b.wav')}  {b}  4.1 kB  erase    -      -\n",
        "dry run: nothing erased; request R-2 is not verified yet: nothing can be erased until "
        "a second administrator runs `recctl request approve R-2`\n",
    )
    assert estate.audit() == before and b.exists()
    assert json.loads(ctl("request", "show", "R-2", "--json")[1])["state"] == "received"
    assert ctl("delete", "--request-id", "R-2", "--yes") == (
        3,
        "",
        "recctl: request R-2 is not verified yet: a second administrator must run "
        "`recctl request approve R-2` first; nothing erased\n",
    )
    assert estate.audit() == before


def _requests(ctl: Console, estate: Estate) -> None:
    """A signed request meets a recording in its release grace; run again, it keeps its
    certificate."""
    sign = estate.base / "R-1.json"
    sign.write_text(json.dumps(signed_request()))
    assert ctl("request", "add", "--file", str(sign))[0] == 0
    code, out, _ = ctl("delete", "--request-id", "R-1", "--confirm-all", "L3")
    assert code == 4
    assert "  released from a legal hold: not erased before 2026-11-30T12:00:00Z " \
        "(holds.release_grace)\n" in out  # fmt: skip
    cert = json.loads(ctl("request", "certificate", "R-1")[1])
    assert cert["issued_at"] == "2026-11-23T12:00:00.123456Z"
    certified = [e for e in estate.audit() if e["action"] == "request.certificate"]
    code, out, err = ctl("delete", "--request-id", "R-1", "--confirm-all", "L3")
    assert (code, err) == (
        4,
        "request R-1: nothing more can be erased now; certificate unchanged (sha256 "
        f"{certified[-1]['details']['sha256']})\n",
    )
    assert [e for e in estate.audit() if e["action"] == "request.certificate"] == certified


def test_administrators_are_root_recds_own_user_and_the_admin_groups_members(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As the admin socket lets them in: recd run by an ordinary user (the demo, or the recd
    user under systemd) takes that user's requests as an administrator's."""
    from recd.daemon.admin import legal
    from recd.daemon.control import Caller

    member = os.getegid()
    group = grp.getgrgid(member).gr_name
    monkeypatch.setattr(os, "geteuid", lambda: 4242)  # recd runs as uid 4242
    assert legal.actor_of(Caller(1, 0, 0, ()), "no-such-group-here").admin
    assert legal.actor_of(Caller(1, 4242, 4242, ()), "no-such-group-here").admin
    assert legal.actor_of(Caller(1, 4343, 4343, (member,)), group).admin
    assert not legal.actor_of(Caller(1, 4343, 4343, ()), group).admin
