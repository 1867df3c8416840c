"""Hold and request commands end to end in-process: a started daemon, its loop on a thread, a
real socket (the caller is this test's uid). Two different uids are in tests/e2e."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from recd.client import call
from recd.config import Licence
from recd.configtypes import Agent
from recd.core.model import recording_id
from recd.core.periods import parse_period
from recd.core.requests import signed_bytes
from recd.protocol import ErrorKind, RemoteError, Request
from tests.estate import Estate
from tests.fakes import FakeClock
from tests.test_admin import Live

KEY = Ed25519PrivateKey.generate()
RAW = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    e = Estate(tmp_path, fake_clock)
    licences = dict(e.config.licences)
    licences["L3"] = Licence(
        "L3", "Three", parse_period("30d"), tmp_path / "l3.toml", "signature",
        (Agent("Jane Doe", "dpo@three.example", RAW),),
    )  # fmt: skip
    e.configure(licences=licences)
    for n in range(3):
        e.write(f"L3/s{n}.wav", age_days=1, data=b"x" * (n + 1))
    e.write("L1/a.wav", age_days=40)  # due: erased at start unless held... it is erased
    e.write("L1/b.wav", age_days=10)
    return e


@pytest.fixture
def live(estate: Estate) -> Iterator[Live]:
    running = Live(estate)
    yield running
    running.close()


def signed_request(request_id: str = "R-1", **scope: Any) -> dict[str, Any]:
    doc = {
        "request_id": request_id,
        "licence": "L3",
        "requested_by": {"name": "Jane Doe", "email": "dpo@three.example", "role": "DPO"},
        "received": "2026-11-20T10:00:00Z",
        "reason": "data subject request",
        "evidence": "letter 77",
        "scope": scope or {"from": "2026-11-01T00:00:00Z"},
    }
    signature = KEY.sign(signed_bytes(doc))
    return doc | {
        "signature": {
            "key": "ed25519:" + base64.b64encode(RAW).decode(),
            "value": base64.b64encode(signature).decode(),
        }
    }


def error(live: Live, command: str, **args: Any) -> tuple[ErrorKind, str]:
    with pytest.raises(RemoteError) as caught:
        live.ask(command, **args)
    return caught.value.kind, str(caught.value)


def test_hold_place_show_ls_release(live: Live, estate: Estate) -> None:
    hold = live.ask("hold place", licence="L1", case="CASE-9", reason="court order")
    assert (hold["id"], hold["whole_licence"], hold["held"], hold["state"]) == (
        "H-0001", True, 1, "active",
    )  # fmt: skip
    assert hold["placed_by"] == "root" or hold["placed_by"]
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
    run = live.ask("request execute", request="R-1")
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


def test_a_run_interrupted_by_a_command_finishes_before_the_reply(
    live: Live, estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin command arriving mid-run goes first; the loop resumes the run, and the
    client asking for it waits until the whole run is over."""
    monkeypatch.setattr("recd.service.requests.BATCH", 1)
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
        target=lambda: result.update(live.ask("request execute", request="R-1"))
    )
    runner.start()
    assert barrier.wait(10)
    assert live.ask("scan")  # an urgent command in the middle of the run
    runner.join(30)
    assert result["request"]["state"] == "completed"
    assert result["request"]["counts"]["erased"] == 3
    reply = call(estate.config.daemon.socket, Request("request show", {"request": "R-1"}))
    assert reply.unwrap()["counts"]["erased"] == 3
