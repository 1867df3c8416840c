"""Attack 15: an early-deletion request that erases a whole licence without saying so.

A request whose scope only looks narrow (a time range over the licence's whole life, a range
open at one end, a party on every call) used to be taken as "erase everything". Now everything
is an explicit scope, ``"all": true``, confirmed by the licence id at ``recctl delete``, and the
disguised forms are refused at ``request add`` with a line that names ``"all": true``. The
service variants run on real files, the real catalogue and audit log; the confirmation variants
on a real daemon driven by recctl processes and by a client that skips recctl.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recd.cli.client import call
from recd.config.load import SourceConfig
from recd.core.classify import ClassifyRule
from recd.core.model import recording_id
from recd.core.requeststate import RequestState
from recd.core.times import format_time
from recd.daemon.runtime import Runtime, scan_all
from recd.errors import NotAllowedInState, UsageError
from recd.ports.records import Actor
from recd.protocol import ErrorKind, Request
from recd.service.requests import Requests
from tests.e2e.helpers import (
    audit_entries,
    env,
    kill_daemon,
    start_daemon,
    wait_until,
    write_estate,
    write_recording,
)
from tests.estate import Estate
from tests.fakes import FakeClock, NotifyListener
from tests.keys import key_text, signed

ALICE = Actor("alice", 1001, admin=True)
BOB = Actor("bob", 1002, admin=True)
#: ``L1/<caller>_<callee>_<name>.wav``: the PBX's own number is the callee of every call.
PARTY_PATTERN = re.compile(r"^(?P<licence>L\d)/(?P<caller>\+?\d+)_(?P<callee>\+?\d+)_[^/]+\.wav$")
PBX_NUMBER = "+442070000000"
ALL = '"all": true'


# --- registration: the whole licence in disguise is refused ---------------------------------------


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    e = Estate(tmp_path, fake_clock)
    rule = ClassifyRule(timezone=UTC, pattern=PARTY_PATTERN)
    e.configure(sources=(SourceConfig("pbx", "directory", rule, path=e.root),))
    return e


@pytest.fixture
def rt(estate: Estate) -> Iterator[Runtime]:
    runtime = estate.runtime()
    yield runtime
    runtime.close()


def rid(relpath: str) -> str:
    return recording_id("pbx", relpath)


def document(request_id: str, licence: str = "L1", **scope: Any) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "licence": licence,
        "requested_by": {"name": "Jane Doe", "email": "dpo@x.example", "role": "DPO"},
        "received": "2026-11-20T10:00:00Z",
        "reason": "Erasure requested by the data subject",
        "evidence": "letter 77",
        "scope": scope,
    }


def calls(estate: Estate, rt: Runtime) -> datetime:
    """Three calls of L1 to the PBX's number, 1, 5 and 9 days old, and one of L2; returns
    now."""
    for days, caller in ((1, "447700900001"), (5, "447700900002"), (9, "447700900003")):
        estate.write(f"L1/{caller}_{PBX_NUMBER}_{days}.wav", age_days=days)
    estate.write(f"L2/447700900001_{PBX_NUMBER}_x.wav", age_days=1)
    scan_all(rt)
    return estate.clock.now()


def at(now: datetime, days: float, seconds: float = 0) -> str:
    return format_time(now + timedelta(days=days, seconds=seconds))


#: (variant, scope given now, the start of the refusal). Every one is one line naming "all".
DISGUISED: list[tuple[str, Any, str]] = [
    ("whole life, 1970 to 2100",
     lambda now: {"from": "1970-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
     "scope: the time range matches every recording of licence L1 (all 3 indexed now)"),
    ("open-ended from", lambda now: {"from": at(now, -30)}, "scope.to: missing: "),
    ("open-ended from in the future", lambda now: {"from": at(now, 1)}, "scope.to: missing: "),
    ("open-ended to", lambda now: {"to": at(now, 365)}, "scope.from: missing: "),
    ("open-ended to in the past", lambda now: {"to": "2000-01-01T00:00:00Z"},
     "scope.from: missing: "),
    ("from the earliest, ending in the future",
     lambda now: {"from": at(now, -9), "to": at(now, 365)}, "scope: the time range matches"),
    ("all of today's, not those indexed later",
     lambda now: {"from": at(now, -9), "to": at(now, -1, 1)}, "scope: the time range matches"),
    ("a party on every call", lambda now: {"party": PBX_NUMBER},
     "scope: the scope matches every recording of licence L1 (all 3 indexed now)"),
    ("a party on every call, spelt otherwise", lambda now: {"party": "0044 (20) 7000-0000"},
     "scope: the scope matches every recording"),
    ("a party on every call in a range over all",
     lambda now: {"party": PBX_NUMBER, "from": at(now, -10)},
     "scope: the scope matches every recording"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("scope", "refusal"), [d[1:] for d in DISGUISED], ids=[d[0] for d in DISGUISED]
)
def test_a_scope_that_covers_the_whole_licence_is_refused_at_registration(
    estate: Estate, rt: Runtime, scope: Any, refusal: str
) -> None:
    now = calls(estate, rt)
    desk = Requests(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers)
    with pytest.raises(UsageError) as caught:
        desk.register(document("R-1", **scope(now)), ALICE)
    message = str(caught.value)
    assert message.startswith(refusal) and ALL in message and "\n" not in message
    assert rt.catalogue.requests() == []
    (refused,) = [e for e in estate.audit() if e["action"] == "request.refused"]
    assert (refused["subject"], refused["details"]["reason"]) == ("R-1", message)
    assert len(list(estate.root.rglob("*.wav"))) == 4


NARROW: list[tuple[str, Any]] = [
    ("a range that leaves the oldest out", lambda now: {"from": at(now, -8), "to": at(now, 1)}),
    ("a range that leaves the newest out", lambda now: {"from": at(now, -10), "to": at(now, -2)}),
    ("one caller", lambda now: {"party": "+447700900002"}),
    ("one caller, open-ended", lambda now: {"party": "+447700900002", "from": at(now, -30)}),
    ("ids", lambda now: {"recordings": [rid(f"L1/447700900001_{PBX_NUMBER}_1.wav")]}),
]  # fmt: skip


@pytest.mark.parametrize("scope", [n[1] for n in NARROW], ids=[n[0] for n in NARROW])
def test_a_scope_that_leaves_some_out_is_registered(
    estate: Estate, rt: Runtime, scope: Any
) -> None:
    now = calls(estate, rt)
    desk = Requests(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers)
    stored, _ = desk.register(document("R-1", **scope(now)), ALICE)
    assert stored.state is RequestState.RECEIVED


def test_recordings_indexed_later_do_not_turn_a_request_into_the_whole_licence(
    estate: Estate, rt: Runtime
) -> None:
    """Judged at registration against what is indexed then: a range that left the oldest
    call out stays registered, and its run erases what it matches then, no more."""
    now = calls(estate, rt)
    desk = Requests(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers)
    desk.register(document("R-1", **{"from": at(now, -6), "to": at(now, 1)}), ALICE)
    desk.approve("R-1", BOB)
    estate.write(f"L1/447700900009_{PBX_NUMBER}_new.wav", age_days=0.5)
    scan_all(rt)
    stored, items = desk.execute("R-1", BOB)
    assert stored.state is RequestState.COMPLETED and len(items) == 3
    left = sorted(p.name for p in estate.root.rglob("*.wav"))
    assert left == [f"447700900001_{PBX_NUMBER}_x.wav", f"447700900003_{PBX_NUMBER}_9.wav"]


def test_a_licence_with_nothing_indexed_refuses_a_range_over_now(
    estate: Estate, rt: Runtime
) -> None:
    now = estate.clock.now()
    desk = Requests(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers)
    with pytest.raises(UsageError, match=r"^scope: licence L1 has no recordings indexed yet"):
        desk.register(document("R-1", **{"from": at(now, -30), "to": at(now, 1)}), ALICE)
    desk.register(document("R-2", **{"from": at(now, -30), "to": at(now, -1)}), ALICE)


@pytest.mark.parametrize(
    ("scope", "also"),
    [
        ({"all": True, "recordings": ["0" * 20]}, "recordings"),
        ({"all": True, "call_ids": ["1712"]}, "call_ids"),
        ({"all": True, "party": "+447700900001"}, "party"),
        ({"all": True, "from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"}, "from, to"),
    ],
)
def test_all_mixed_with_another_scope_field_is_refused(
    estate: Estate, rt: Runtime, scope: dict[str, Any], also: str
) -> None:
    desk = Requests(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers)
    with pytest.raises(UsageError) as caught:
        desk.register(document("R-1", **scope), ALICE)
    assert str(caught.value) == (
        'scope.all: "all": true erases every recording of the licence and takes no other '
        f"scope field; this scope also gives {also}"
    )


def test_ids_of_another_licence_are_refused_and_never_erased(estate: Estate, rt: Runtime) -> None:
    """Holds today: a request for L1 naming L2's recording is refused; one naming a recording
    not indexed yet registers, and the run does not reach it once it is indexed under L2."""
    calls(estate, rt)
    theirs = rid(f"L2/447700900001_{PBX_NUMBER}_x.wav")
    desk = Requests(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers)
    with pytest.raises(NotAllowedInState, match=f"recording {theirs} belongs to L2, not to L1"):
        desk.register(document("R-1", recordings=[theirs]), ALICE)
    later = rid(f"L2/447700900005_{PBX_NUMBER}_later.wav")
    desk.register(document("R-2", recordings=[later]), ALICE)
    desk.approve("R-2", BOB)
    path = estate.write(f"L2/447700900005_{PBX_NUMBER}_later.wav", age_days=1)
    scan_all(rt)
    stored, (item,) = desk.execute("R-2", BOB)
    assert stored.state is RequestState.PARTIAL and path.exists()
    assert item.note == "not erased: it belongs to L2, not to L1"


# --- the confirmation, on a real daemon -----------------------------------------------------------


@pytest.fixture
def jane() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def daemon(tmp_path: Path, jane: Ed25519PrivateKey) -> Iterator[Path]:
    """recd on an estate with L1 (two-person) and L3 (Jane signs), three recordings of L3
    and one of L1; yields its socket."""
    config = write_estate(tmp_path, listen="127.0.0.1:0")
    (tmp_path / "licences.d" / "l3.toml").write_text(
        'id = "L3"\nname = "Three"\nretention = "30d"\nverification = "signature"\n\n'
        f'[[agent]]\nname = "Jane Doe"\nemail = "dpo@three.example"\n'
        f'public_key = "{key_text(jane)}"\n'
    )
    for name in ("a", "b", "c"):
        write_recording(tmp_path, f"L3/{name}.wav", age_days=1)
    write_recording(tmp_path, "L1/keep.wav", age_days=1)
    listener = NotifyListener(str(tmp_path / "notify"))
    proc = start_daemon(config, listener, tmp_path / "recd.log")
    try:
        listener.wait_for("READY=1", timeout=60)
        sock = tmp_path / "recd.sock"
        wait_until("4 recordings indexed", lambda: len(ls(sock)) == 4)
        yield sock
    finally:
        kill_daemon(proc)
        listener.close()


def ctl(sock: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recd.cli.main", "--socket", str(sock), *args],
        input=stdin, capture_output=True, text=True, env=env(), timeout=120, check=False,
    )  # fmt: skip


def ls(sock: Path) -> list[dict[str, Any]]:
    done = ctl(sock, "ls", "--json")
    return json.loads(done.stdout) if done.returncode == 0 else []


def present(base: Path) -> list[str]:
    return sorted(str(p.relative_to(base / "recordings")) for p in base.rglob("*.wav"))


def test_an_all_request_erases_nothing_without_its_licence_id(
    tmp_path: Path, daemon: Path, jane: Ed25519PrivateKey
) -> None:
    sock = daemon
    doc = signed(document("REQ-ALL", "L3", all=True), jane)
    path = tmp_path / "all.json"
    path.write_text(json.dumps(doc))
    added = ctl(sock, "request", "add", "--file", str(path))
    assert (added.returncode, added.stdout + added.stderr) == (
        0, "request REQ-ALL registered for licence L3: verified: signed by Jane Doe "
        "<dpo@three.example>\n",
    )  # fmt: skip
    everything = ["L1/keep.wav", "L3/a.wav", "L3/b.wav", "L3/c.wav"]
    # Without confirmation, with --yes alone, with the wrong licence: nothing erased.
    for args, status, message in [
        ((), 2, "stdin is not a terminal (add --confirm-all L3)"),
        (("--yes",), 2, "stdin is not a terminal (add --confirm-all L3; --yes is not enough)"),
        (("--confirm-all", "L1"), 2, "argument --confirm-all: 'L1' is not licence L3"),
    ]:
        done = ctl(sock, "delete", "--request-id", "REQ-ALL", *args, stdin="L3\nyes\n")
        assert (done.returncode, message in done.stderr) == (status, True), done.stderr
        warning = "WHOLE LICENCE: request REQ-ALL erases every recording of licence L3"
        assert done.stdout.startswith(warning) or "--confirm-all" in args
        assert present(tmp_path) == everything
    # A client that skips recctl cannot skip the confirmation either.
    confirms: list[dict[str, str]] = [{}, {"confirm_all": "L1"}, {"confirm_all": "l3"}]
    for confirm in confirms:
        reply = call(sock, Request("request execute", {"request": "REQ-ALL", **confirm}))
        assert (reply.ok, reply.error) == (False, ErrorKind.USAGE), reply
        assert (reply.message or "").startswith("confirm_all: ")
    assert present(tmp_path) == everything
    refused = [e for e in audit_entries(tmp_path) if e["action"] == "request.refused"]
    assert [e["details"]["step"] for e in refused] == ["execute"] * 3
    # Confirmed by the licence id: every recording of L3, none of L1.
    done = ctl(sock, "delete", "--request-id", "REQ-ALL", "--confirm-all", "L3")
    assert done.returncode == 0, done.stderr
    assert present(tmp_path) == ["L1/keep.wav"]
    (registered,) = [e for e in audit_entries(tmp_path) if e["action"] == "request.registered"]
    assert registered["details"]["scope"]["all"] is True
    cert = json.loads(ctl(sock, "request", "certificate", "REQ-ALL").stdout)
    assert cert["request"]["scope"] == {"all": True} and cert["summary"]["erased"] == 3
    shown = ctl(sock, "request", "show", "REQ-ALL")
    assert "whole licence: every recording of it, present and future" in shown.stdout


def test_a_signature_does_not_stretch_to_all(
    tmp_path: Path, daemon: Path, jane: Ed25519PrivateKey
) -> None:
    """A signed narrow request rewritten to ``"all": true`` no longer verifies."""
    narrow = signed(document("REQ-1", "L3", recordings=[recording_id("pbx", "L3/a.wav")]), jane)
    path = tmp_path / "widened.json"
    path.write_text(json.dumps(narrow | {"scope": {"all": True}}))
    done = ctl(daemon, "request", "add", "--file", str(path))
    assert done.returncode == 3 and "does not match the request's content" in done.stderr
    disguised = signed(document("REQ-2", "L3", **{"from": "2000-01-01T00:00:00Z"}), jane)
    path.write_text(json.dumps(disguised))
    done = ctl(daemon, "request", "add", "--file", str(path))
    assert done.returncode == 2 and f"{path}: scope.to: missing: " in done.stderr
    assert ALL in done.stderr
    assert len(present(tmp_path)) == 4
