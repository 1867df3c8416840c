"""Shared by the admin command tests (daemon/admin, cli): a started in-process daemon whose
loop runs on a thread behind a real admin socket, the small estates they ask about, and
requests signed by the L3 agent's key.

``Live.close`` stops the daemon and fails the test if a recording was left past its deadline:
nothing these tests do may keep a due recording from being erased."""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from recd.adapters.systemd import Notifier
from recd.cli.client import call
from recd.config.load import Licence
from recd.config.types import Agent
from recd.core.periods import parse_period
from recd.core.signatures import signed_bytes
from recd.daemon.loop import Daemon
from recd.protocol import Request
from tests.estate import Estate
from tests.fakes import FakeClock


class Live:
    """A started daemon on ``estate``, its loop stepping on a thread until a SIGTERM."""

    def __init__(self, estate: Estate) -> None:
        self.estate = estate
        self.daemon = Daemon(estate.config, estate.clock, Notifier(None))
        self.daemon.start()
        self.thread = threading.Thread(target=self._loop)
        self.thread.start()

    def _loop(self) -> None:
        while not self.daemon.stopping:
            self.daemon.step(self.daemon.next_event())

    def ask(self, command: str, **args: Any) -> Any:
        return call(self.estate.config.daemon.socket, Request(command, args)).unwrap()

    def close(self) -> None:
        self.daemon.handle_signal(15, None)
        self.thread.join()
        try:
            # Nothing may be left past its deadline unless a test blocks erasure on purpose.
            assert self.daemon.snapshot().overdue == 0
        finally:
            self.daemon.stop()


def three_recordings(tmp_path: Path, clock: FakeClock) -> Estate:
    """An ``Estate`` with one recording under L1 (its name says when it started), one under
    L2 and one unknown to every licence: what the admin tests list, show and hold."""
    e = Estate(tmp_path, clock)
    e.write("L1/20261110120000_a.wav", age_days=10)  # the name says when it started
    e.write("L2/b.wav", age_days=5)
    e.write("unknown/c.wav", age_days=1)
    return e


KEY = Ed25519PrivateKey.generate()
RAW = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def legal_estate(tmp_path: Path, clock: FakeClock) -> Estate:
    """L1 (two-person) and L2 of ``Estate``, and L3, whose requests its agent Jane signs."""
    e = Estate(tmp_path, clock)
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


def signed_request(request_id: str = "R-1", **scope: Any) -> dict[str, Any]:
    doc = {
        "request_id": request_id,
        "licence": "L3",
        "requested_by": {"name": "Jane Doe", "email": "dpo@three.example", "role": "DPO"},
        "received": "2026-11-20T10:00:00Z",
        "reason": "data subject request",
        "evidence": "letter 77",
        "scope": scope or {"all": True},
    }
    signature = KEY.sign(signed_bytes(doc))
    return doc | {
        "signature": {
            "key": "ed25519:" + base64.b64encode(RAW).decode(),
            "value": base64.b64encode(signature).decode(),
        }
    }
