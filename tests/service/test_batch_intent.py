"""One ``erase.intent`` per batch (SPEC 7): written before any file of the batch is touched,
naming each recording with its intent id, location and deadline; each recording still gets its
own outcome entry; and a crash between the batch's intent and its outcomes is settled at the
next start, recording by recording, whether or not its file was already erased."""

from __future__ import annotations

from typing import Any

import pytest

from recd.core.audit import verify
from recd.core.model import State, recording_id
from recd.daemon.runtime import scan_all
from recd.service.recovery import Recovery
from recd.service.sweep import Sweeper
from tests.estate import Estate
from tests.fakes import FakeClock

NAMES = ("a", "b", "c")


class Killed(BaseException):
    """What the process sees of a SIGKILL: nothing after it runs (not even an ``except``)."""


@pytest.fixture
def estate(tmp_path: Any, fake_clock: FakeClock) -> Estate:
    e = Estate(tmp_path, fake_clock)
    for n in NAMES:
        e.write(f"L1/{n}.wav", age_days=31)
    return e


def rid(name: str) -> str:
    return recording_id("pbx", f"L1/{name}.wav")


def test_a_sweep_batch_writes_one_intent_before_the_outcome_of_each_recording(
    estate: Estate,
) -> None:
    rt = estate.runtime()
    try:
        scan_all(rt)
        report = Sweeper(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers).run()
    finally:
        rt.close()
    assert report.erased == 3
    erases = [e for e in estate.audit() if e["action"].startswith("erase.")]
    assert [e["action"] for e in erases] == ["erase.intent"] + ["erase.done"] * 3
    intent, *done = erases
    assert intent["details"]["reason"] == "retention"
    items = {i["id"]: i for i in intent["details"]["recordings"]}
    assert set(items) == {rid(n) for n in NAMES}
    for entry in done:
        item = items[entry["subject"]]
        assert entry["details"]["intent"] == item["intent"]
        assert (item["location"], item["deadline"]) == (
            entry["details"]["location"], entry["details"]["deadline"],
        )  # fmt: skip


def test_a_kill_between_the_batch_intent_and_its_outcomes_is_settled_per_recording(
    estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the first file of the batch was erased, before any ``erase.done``: the
    next start finds the batch's intent for all three, writes ``erase.done`` (recovered) for
    the one already gone and erases the two left; none is dropped as never started."""
    rt = estate.runtime()
    try:
        scan_all(rt)
        eraser = rt.erasers["pbx"]
        real = eraser.erase_many

        def erase_one_then_die(jobs: Any, **kwargs: Any) -> Any:
            real(jobs[:1], **kwargs)
            raise Killed

        monkeypatch.setattr(eraser, "erase_many", erase_one_then_die)
        with pytest.raises(Killed):
            Sweeper(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers).run()
    finally:
        rt.close()
    monkeypatch.undo()
    assert [e["action"] for e in estate.audit() if e["action"].startswith("erase.")] == [
        "erase.intent"
    ]
    on_disk = [n for n in NAMES if (estate.root / f"L1/{n}.wav").exists()]
    assert len(on_disk) == 2

    rt = estate.runtime()
    try:
        report = Recovery(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers).run()
        assert (report.finished, report.dropped, report.failed) == (3, 0, 0)
        assert rt.catalogue.pending_intents() == []
        for n in NAMES:
            rec = rt.catalogue.get(rid(n))
            assert rec is not None and rec.state is State.ERASED
    finally:
        rt.close()
    assert not any((estate.root / f"L1/{n}.wav").exists() for n in NAMES)
    assert [p.name for p in (estate.root / "L1").iterdir()] == []  # no temp file left
    intent, *done = [e for e in estate.audit() if e["action"].startswith("erase.")]
    items = {i["id"]: i["intent"] for i in intent["details"]["recordings"]}
    assert sorted(e["subject"] for e in done) == sorted(items)  # one outcome each
    for entry in done:
        assert entry["action"] == "erase.done" and entry["details"]["recovered"] is True
        assert entry["details"]["intent"] == items[entry["subject"]]
    assert verify(estate.audit_path.read_bytes().splitlines(keepends=True)).ok
