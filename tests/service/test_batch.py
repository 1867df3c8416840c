"""recd.service.batch: one audited batch of erasures (intents durable first, then erase, directory
flush, outcome entries): a hold placed during a run wins over its plan, a failed erase or directory
flush is audited as failed."""

from __future__ import annotations

import errno
import json
import os

import pytest

from recd.core.model import State
from recd.core.requeststate import ItemOutcome, RequestState
from recd.core.scope import Scope
from recd.daemon.runtime import Runtime, scan_all
from recd.service.holds import Holds
from recd.service.sweep import Sweeper
from tests.estate import Estate
from tests.service.helpers import ALICE, BOB, appended, approved, erase_entries, meanwhile, states


def test_a_failed_directory_flush_fails_every_erase_of_the_batch(
    estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files were overwritten and unlinked, but their directory entries may come back
    after a power cut: no erase of the batch is claimed done, each is audited as failed with
    the reason. (A kernel does not fail an fsync on demand: the eraser's flush is made to.)"""
    paths = [estate.write(f"L1/{n}.wav", age_days=31) for n in ("a", "b")]
    rt = estate.runtime()
    try:
        scan_all(rt)
        eraser = rt.erasers["pbx"]
        flush = eraser.sync

        def flush_fails() -> None:
            flush()
            raise OSError(errno.EIO, os.strerror(errno.EIO))

        monkeypatch.setattr(eraser, "sync", flush_fails)
        report = Sweeper(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers).run()
    finally:
        rt.close()
    assert (report.erased, report.failed) == (0, 2)
    assert not any(p.exists() for p in paths)
    assert [a for a, _ in estate.actions()] == ["erase.intent"] * 2 + ["erase.failed"] * 2
    for entry in estate.audit()[-2:]:
        assert entry["details"]["error"] == "directory flush failed: Input/output error"
        assert "effective" not in entry["details"]
    assert states(estate) == {"L1/a.wav": State.PRESENT, "L1/b.wav": State.PRESENT}


def test_a_hold_placed_during_the_run_wins_over_the_plan(
    estate: Estate, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = estate.write("L1/a_c1.wav", age_days=1)
    scan_all(rt)
    desk = approved(estate, rt)
    holds = Holds(estate.config, rt.catalogue, rt.audit, estate.clock)
    placed: list[str] = []

    def place() -> None:
        hold, _ = holds.place(Scope("L1"), case="C-7", reason="court", until=None, actor=BOB)
        placed.append(hold.id)

    meanwhile(monkeypatch, rt, "digest", place)
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and path.exists()
    assert (item.outcome, item.holds, item.note) == (
        ItemOutcome.HELD, tuple(placed), "a legal hold was placed during the run",
    )  # fmt: skip
    assert erase_entries(estate) == []  # not even an intent
    (skipped,) = json.loads(desk.certificate("REQ-1").text)["skipped"]
    assert (skipped["reason"], skipped["held_by"]) == ("legal hold", placed)


def test_a_file_changed_after_it_was_hashed_fails_its_erase_and_the_certificate_says_so(
    estate: Estate, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The certificate's SHA-256 must be of what was erased: a write between the hash and the
    overwrite stops the erase before a byte is written; ``erase.failed`` is audited and the
    certificate points at it."""
    path = estate.write("L1/a_c1.wav", age_days=1, data=b"audio")
    scan_all(rt)
    desk = approved(estate, rt)

    meanwhile(monkeypatch, rt, "erase_many", lambda: appended(path))
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and path.read_bytes() == b"audio+more"
    intent, failed = erase_entries(estate)
    assert (intent["action"], failed["action"]) == ("erase.intent", "erase.failed")
    assert failed["details"]["error"] == "changed since it was checked"
    assert (item.outcome, item.note, item.audit_seq, item.sha256) == (
        ItemOutcome.FAILED, "erase failed: changed since it was checked", failed["seq"], None,
    )  # fmt: skip
    data = json.loads(desk.certificate("REQ-1").text)
    assert data["erased"] == [] and data["summary"]["failed"] == 1
    (skipped,) = data["skipped"]
    assert (skipped["reason"], skipped["audit_seq"]) == (item.note, failed["seq"])
