"""``recd.core.intents``: a batch's ``erase.intent`` says everything the per-recording intents
said (shared details once), and both shapes read back as the recordings they announce."""

from __future__ import annotations

from typing import Any

from recd.core.audit import AuditDraft, seal
from recd.core.intents import Announced, announced, batch_details, batch_summary
from recd.core.times import parse_time

T = parse_time("2026-11-23T13:44:09.000000Z")


def plan(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "location": f"/rec/L1/{n}.wav",
        "licence": "L1",
        "size": 10 + n,
        "reason": "retention",
        "deadline": "2026-11-20T00:00:00.000000Z",
        "method": "unlink",
        "effective": False,
        "ineffective_reason": "method is unlink (no overwrite)",
    } | extra


def sealed(action: str, subject: str, details: dict[str, Any]) -> Any:
    return seal(AuditDraft(action, subject, details), seq=1, prev="0" * 64, time=T)


def test_a_batch_intent_loses_nothing_of_the_plans_and_says_shared_details_once() -> None:
    plans = [(f"r{n}", f"i{n}", plan(n)) for n in range(3)]
    details = batch_details("b1", plans)
    assert details["reason"] == "retention" and details["method"] == "unlink"
    for item in details["recordings"]:  # SPEC 7: each id with its location and deadline
        assert {"id", "intent", "location", "deadline", "size"} <= item.keys()
        assert "reason" not in item and "method" not in item
    got = announced(sealed("erase.intent", "b1", details))
    assert [(a.intent, a.recording) for a in got] == [("i0", "r0"), ("i1", "r1"), ("i2", "r2")]
    for a, (rec, intent, d) in zip(got, plans, strict=True):
        assert a.details == d | {"id": rec, "intent": intent}


def test_details_that_differ_stay_with_each_recording() -> None:
    plans = [("r0", "i0", plan(0, reason="retention")), ("r1", "i1", plan(1, reason="request:X"))]
    details = batch_details("b2", plans)
    assert "reason" not in details
    assert [i["reason"] for i in details["recordings"]] == ["retention", "request:X"]
    got = announced(sealed("erase.intent", "b2", details))
    assert [a.details["reason"] for a in got] == ["retention", "request:X"]


def test_an_older_per_recording_intent_reads_as_the_one_recording_it_names() -> None:
    d = {"intent": "i9", **plan(9)}
    assert announced(sealed("erase.intent", "r9", d)) == [Announced("i9", "r9", d)]
    assert announced(sealed("erase.done", "r9", d)) == []  # not an intent
    assert announced(sealed("erase.intent", "r9", plan(9))) == []  # no intent id: nothing


def test_a_batch_summary_counts_the_recordings_and_names_their_directory() -> None:
    details = batch_details("b3", [(f"r{n}", f"i{n}", plan(n)) for n in range(256)])
    brief = batch_summary(details)
    assert brief is not None
    assert (brief["recordings"], brief["under"], brief["batch"]) == (256, "/rec/L1/", "b3")
    spread = batch_details("b4", [("r", "i", plan(0)), ("s", "j", plan(1, location="/rec/x"))])
    assert batch_summary(spread)["under"] == "/rec/"  # type: ignore[index]
    assert batch_summary(plan(0)) is None
