"""The canned replies recctl's tests answer with have the shape of what the real daemon replies.

The command tests (``tests/cli/commands/``) run recctl against a fake daemon
(``tests/fakedaemon.py``) that answers canned replies, written by hand in
``tests/cli/replies.py``. A canned reply that lacks a field the real ``Admin`` sends, or has one
it no longer sends, tests a recctl that never meets a real daemon. Here a started daemon over a
real catalogue answers every command those replies stand for, and each canned reply must have
the real reply's shape: the same keys at every level and values of the same JSON type (``null``
matches anything, since optional fields are ``null`` in one reply and set in another).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recd.core.model import recording_id
from recd.core.safety import SafetySettings
from tests.cli import replies
from tests.daemon.admin.helpers import Live, legal_estate, signed_request
from tests.fakes import FakeClock

#: Objects whose keys are data (the classified fields a recording has), not its shape.
DATA_KEYS = {"fields"}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    kinds: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return kinds[type(value)]


def shape_problems(canned: Any, real: Any, where: str = "") -> list[str]:
    """Where ``canned`` differs in shape from ``real``; nothing when they agree."""
    if canned is None or real is None:
        return []
    if _kind(canned) != _kind(real):
        return [f"{where or 'reply'}: {_kind(canned)}, the daemon sends {_kind(real)}"]
    if isinstance(canned, list):
        return [p for item in canned if real for p in shape_problems(item, real[0], f"{where}[]")]
    if not isinstance(canned, dict) or where.rpartition(".")[2] in DATA_KEYS:
        return []
    problems = [f"{where}.{k}: missing (the daemon sends it)" for k in sorted(real.keys() - canned)]
    problems += [f"{where}.{k}: the daemon does not send it" for k in sorted(canned.keys() - real)]
    for key in canned.keys() & real.keys():
        problems += shape_problems(canned[key], real[key], f"{where}.{key}")
    return problems


def test_shape_problems_finds_a_missing_an_extra_and_a_retyped_field() -> None:
    real = {"id": "a", "size": 1, "when": None, "items": [{"held": True}], "fields": {"x": 1}}
    assert shape_problems(real | {"when": "2026-11-23T12:00:00Z", "fields": {}}, real) == []
    canned = {"id": 7, "size": 1.5, "extra": 1, "items": [{"held": "no"}], "fields": {}}
    assert sorted(shape_problems(canned, real)) == [
        ".extra: the daemon does not send it",
        ".id: number, the daemon sends string",
        ".items[].held: string, the daemon sends boolean",
        ".when: missing (the daemon sends it)",
    ]


@pytest.fixture
def live(tmp_path: Path, fake_clock: FakeClock) -> Iterator[Live]:
    """A daemon with licences L1-L3, L1's breaker tripped, and an unclassified recording."""
    estate = legal_estate(tmp_path, fake_clock)
    estate.configure(safety=SafetySettings(min_breaker_count=2))
    for n in range(3):
        estate.write(f"L1/old{n}.wav", age_days=40)
    estate.write("unknown/c.wav", age_days=1)
    running = Live(estate)
    yield running
    running.close()


def problems(pairs: dict[str, tuple[Any, Any]]) -> dict[str, list[str]]:
    """Each canned reply (by name) whose shape differs from the real reply beside it."""
    found = {name: shape_problems(canned, real) for name, (canned, real) in pairs.items()}
    return {name: listed for name, listed in found.items() if listed}


def test_the_daemon_commands_canned_replies(live: Live) -> None:
    listed = live.ask("ls", state="all")
    pairs = {
        "STATUS": (replies.STATUS, live.ask("status")),
        "REC": (replies.REC, listed[0]),
        "HOSTILE": (replies.HOSTILE, listed[-1]),
        "SHOW": (replies.SHOW, live.ask("show", id=listed[0]["id"])),
        "POLICY": (replies.POLICY, live.ask("policy")),
        "SCANS": (replies.SCANS, live.ask("scan")),
        "BREAKERS": (replies.BREAKERS, live.ask("breaker ls")),
        "breaker release": (replies.RELEASE, live.ask("breaker release", licence="L1")),
        "clock confirm": (replies.CONFIRMED, live.ask("clock confirm")),
    }
    assert problems(pairs) == {}


def test_the_legal_commands_canned_replies(live: Live) -> None:
    live.ask("breaker release", licence="L1")  # the fixture's breaker is not what this is about
    hold = live.ask("hold place", licence="L3", case="C", reason="r", party="+441234")
    pairs = {
        "HOLD": (replies.HOLD, hold),
        "WHOLE": (replies.WHOLE, hold),
        "hold ls": ([replies.HOLD], live.ask("hold ls")),
        "hold show": (replies.HOLD, live.ask("hold show", hold=hold["id"])),
        "hold release": (
            replies.HOLD_RELEASE,
            live.ask("hold release", hold=hold["id"], reason="r"),
        ),
    }
    pairs["RELEASED"] = (replies.RELEASED, live.ask("hold ls", all=True)[0])
    ids = [recording_id("pbx", f"L3/s{n}.wav") for n in range(3)]
    added = live.ask("request add", document=signed_request(recordings=ids))
    for name in ("REQUEST", "SIGNED", "APPROVED"):
        pairs[name] = (getattr(replies, name), added)
    pairs["PREVIEW"] = (replies.PREVIEW, live.ask("request preview", request="R-1"))
    run = live.ask("request execute", request="R-1")
    pairs["DONE"] = (replies.DONE, run["request"])
    pairs["ITEMS"] = (replies.ITEMS, run["items"])
    pairs["CERT_REPLY"] = (replies.CERT_REPLY, live.ask("request certificate", request="R-1"))
    pairs["request ls"] = ([replies.DONE], live.ask("request ls"))
    assert problems(pairs) == {}
