"""Recovery of interrupted erasures, one test per point at which a crash can leave them.

Each test builds the state a crash leaves (catalogue intent, audit entries, the file as far as
the erase got), "restarts" by opening a fresh runtime, runs recovery, and checks that the
catalogue and the audit log agree and the chain verifies.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recd.core.audit import AuditDraft, verify
from recd.core.model import EraseMethod, State, recording_id
from recd.daemon.runtime import Runtime, scan_all
from recd.ports.records import Intent
from recd.service.recovery import CHUNK, S3_CHUNK, Recovery, RecoveryReport, chunks
from tests.estate import Estate
from tests.fakes import FakeClock

TEMP = ".recd-erase-0123456789abcdef01234567"
RID = recording_id("pbx", "L1/old.wav")


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    e = Estate(tmp_path, fake_clock)
    e.write("L1/old.wav", age_days=31)
    rt = e.runtime()
    try:
        scan_all(rt)
    finally:
        rt.close()
    return e


def crash(estate: Estate, *, audited: tuple[str, ...] = ("erase.intent",)) -> Intent:
    """Leave an intent in the catalogue and the given audit entries, as a crash would."""
    rt = estate.runtime()
    try:
        rec = rt.catalogue.get(RID)
        assert rec is not None
        plan = {
            "location": str(estate.root / rec.relpath),
            "licence": "L1",
            "size": rec.size,
            "reason": "retention",
            "method": "overwrite",
            "effective": True,
        }
        intent = Intent("i-1", RID, rt.audit.end_offset(), TEMP, plan, estate.clock.now())
        rt.catalogue.add_intents([intent])
        drafts = [AuditDraft(a, RID, {"intent": intent.id, **plan}) for a in audited]
        if drafts:
            rt.audit.append(drafts, estate.clock.now())
        return intent
    finally:
        rt.close()


def recover(estate: Estate) -> tuple[RecoveryReport, Runtime]:
    rt = estate.runtime()
    try:
        report = Recovery(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers).run()
        assert rt.catalogue.pending_intents() == []
        return report, rt
    finally:
        rt.close()


def state_of(estate: Estate) -> State:
    rt = estate.runtime()
    try:
        rec = rt.catalogue.get(RID)
        assert rec is not None
        return rec.state
    finally:
        rt.close()


def assert_chain(estate: Estate) -> None:
    assert verify(estate.audit_path.read_bytes().splitlines(keepends=True)).ok


def counts(report: RecoveryReport) -> tuple[int, int, int, int]:
    return report.confirmed, report.finished, report.failed, report.dropped


def test_nothing_pending_is_a_no_op(estate: Estate) -> None:
    report, _ = recover(estate)
    assert report.total == 0


def test_intent_never_audited_is_dropped_and_file_untouched(estate: Estate) -> None:
    crash(estate, audited=())
    before = (estate.root / "L1/old.wav").read_bytes()
    report, _ = recover(estate)
    assert counts(report) == (0, 0, 0, 1)
    assert (estate.root / "L1/old.wav").read_bytes() == before
    assert state_of(estate) is State.PRESENT
    assert estate.actions() == []


def test_audited_done_is_confirmed_without_touching_anything(estate: Estate) -> None:
    crash(estate, audited=("erase.intent", "erase.done"))
    (estate.root / "L1/old.wav").unlink()
    report, _ = recover(estate)
    assert counts(report) == (1, 0, 0, 0)
    assert state_of(estate) is State.ERASED
    assert [a for a, _ in estate.actions()] == ["erase.intent", "erase.done"]


def test_audited_failure_is_dropped(estate: Estate) -> None:
    crash(estate, audited=("erase.intent", "erase.failed"))
    report, _ = recover(estate)
    assert counts(report) == (0, 0, 0, 1)
    assert state_of(estate) is State.PRESENT


def untouched(path: Path) -> None:
    pass


def half_overwritten(path: Path) -> None:
    with path.open("r+b") as f:
        f.write(b"\0" * 1000)


def truncated(path: Path) -> None:
    os.truncate(path, 0)


@pytest.mark.parametrize("damage", [untouched, half_overwritten, truncated])
def test_interrupted_at_original_name_is_finished(
    estate: Estate, damage: Callable[[Path], None]
) -> None:
    crash(estate)
    damage(estate.root / "L1/old.wav")
    report, _ = recover(estate)
    assert counts(report) == (0, 1, 0, 0)
    assert not (estate.root / "L1/old.wav").exists()
    assert os.listdir(estate.root / "L1") == []
    assert state_of(estate) is State.ERASED
    done = estate.audit()[-1]
    assert (done["action"], done["details"]["recovered"]) == ("erase.done", True)
    assert_chain(estate)


def test_interrupted_after_rename_is_finished_at_the_temp_name(estate: Estate) -> None:
    crash(estate)
    truncated(estate.root / "L1/old.wav")
    os.rename(estate.root / "L1/old.wav", estate.root / "L1" / TEMP)
    report, _ = recover(estate)
    assert counts(report) == (0, 1, 0, 0)
    assert os.listdir(estate.root / "L1") == []
    assert estate.audit()[-1]["action"] == "erase.done"


def test_interrupted_after_unlink_is_recorded_done(estate: Estate) -> None:
    crash(estate)
    (estate.root / "L1/old.wav").unlink()
    report, _ = recover(estate)
    assert counts(report) == (0, 1, 0, 0)
    done = estate.audit()[-1]
    assert done["action"] == "erase.done"
    assert "bytes_overwritten" not in done["details"]
    assert state_of(estate) is State.ERASED
    assert_chain(estate)


def test_a_different_file_at_the_name_is_not_erased(estate: Estate) -> None:
    crash(estate)
    with (estate.root / "L1/old.wav").open("ab") as f:  # same inode, new size
        f.write(b"new recording data")
    report, _ = recover(estate)
    assert counts(report) == (0, 0, 1, 0)
    assert (estate.root / "L1/old.wav").exists()
    failed = estate.audit()[-1]
    assert failed["action"] == "erase.failed"
    assert failed["details"]["error"] == (
        "L1/old.wav has size 4114, neither the indexed 4096 nor 0 (truncated by the erase); "
        "not the file being erased"
    )
    assert "effective" not in failed["details"]  # a failed erase claims nothing
    assert state_of(estate) is State.PRESENT


def test_a_symlink_planted_on_the_path_fails_the_recovery_safely(estate: Estate) -> None:
    crash(estate)
    outside = estate.base / "outside"
    outside.mkdir()
    (estate.root / "L1").rename(estate.base / "moved")
    (estate.root / "L1").symlink_to(outside)
    report, _ = recover(estate)
    assert counts(report) == (0, 0, 1, 0)
    assert estate.audit()[-1]["details"]["error"] == "L1 is a symbolic link"
    assert (estate.base / "moved" / "old.wav").exists()


def test_unconfigured_source_fails_the_recovery_and_says_why(estate: Estate) -> None:
    crash(estate)
    estate.configure(sources=())
    report, _ = recover(estate)
    assert counts(report) == (0, 0, 1, 0)
    assert estate.audit()[-1]["details"]["error"] == (
        "source is no longer configured; erase left unfinished"
    )
    assert (estate.root / "L1/old.wav").exists()


def test_a_source_this_node_does_not_serve_keeps_its_intent_for_later(
    estate: Estate, caplog: pytest.LogCaptureFixture
) -> None:
    """Not "no longer configured": configured for another node, which may finish it (or
    this one again, once its ``nodes`` lists it)."""
    crash(estate)
    (pbx,) = estate.config.sources
    served = estate.config
    estate.configure(sources=(replace(pbx, nodes=("elsewhere",)),))
    before = (estate.root / "L1/old.wav").read_bytes()
    rt = estate.runtime()
    try:
        with caplog.at_level(logging.INFO, logger="recd.service.recovery"):
            report = Recovery(estate.config, rt.catalogue, rt.audit, estate.clock, {}).run()
        assert report.total == 0
        assert [i.id for i in rt.catalogue.pending_intents()] == ["i-1"]
    finally:
        rt.close()
    assert caplog.messages == [
        "source pbx is not served by this node: its interrupted erasures are left"
    ]
    assert (estate.root / "L1/old.wav").read_bytes() == before
    assert [a for a, _ in estate.actions()] == ["erase.intent"]
    estate.config = served
    report, _ = recover(estate)
    assert counts(report) == (0, 1, 0, 0)
    assert state_of(estate) is State.ERASED


def test_recovery_runs_before_the_sweep_in_once(estate: Estate) -> None:
    crash(estate)
    code, out = estate.once()
    assert (code, out) == (0, "no recordings\n")  # the only recording was erased by recovery
    assert state_of(estate) is State.ERASED
    assert_chain(estate)


def test_told_to_stop_it_settles_whole_chunks_and_leaves_the_rest_for_next_time(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    """A dead node's many erases, taken over while an admin command waits: recovery stops
    between chunks, each chunk settled whole (entries and catalogue together); the rest stays
    this node's for its next run, which settles it."""
    estate = Estate(tmp_path, fake_clock)
    n = CHUNK + 5
    for i in range(n):
        estate.write(f"L1/r{i:03}.wav", age_days=31)
    rt = estate.runtime()
    try:
        scan_all(rt)
        offset, now = rt.audit.end_offset(), estate.clock.now()
        rids = [recording_id("pbx", f"L1/r{i:03}.wav") for i in range(n)]
        intents = [Intent(f"i-{i:03}", rid, offset, TEMP, {}, now) for i, rid in enumerate(rids)]
        rt.catalogue.add_intents(intents)
        actions = ("erase.intent", "erase.done")
        drafts = [AuditDraft(a, i.recording_id, {"intent": i.id}) for i in intents for a in actions]
        rt.audit.append(drafts, estate.clock.now())
        asked: list[int] = []

        def stop() -> bool:
            asked.append(1)
            return True

        ports = (estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers)
        first = Recovery(*ports).run(should_stop=stop)
        assert (first.confirmed, first.left, len(asked)) == (CHUNK, 5, 1)
        assert len(rt.catalogue.pending_intents()) == 5
        second = Recovery(*ports).run(should_stop=stop)
        assert (second.confirmed, second.left) == (5, 0)
        assert rt.catalogue.pending_intents() == []
    finally:
        rt.close()


def test_files_are_settled_a_few_at_a_time_and_s3_keys_a_sweeps_batch_at_a_time() -> None:
    """A file's erase may be an overwrite run again, so a chunk is ``CHUNK`` files; an S3
    key's costs a share of one listing walk, so a chunk is ``S3_CHUNK`` keys (as many as a
    sweep's batch), the files' chunks first."""
    now = datetime(2026, 12, 1, tzinfo=UTC)
    s3 = {"method": EraseMethod.S3_DELETE.value}
    files = [Intent(f"f-{i}", f"r-{i}", 0, TEMP, {"method": "overwrite"}, now) for i in range(40)]
    keys = [Intent(f"k-{i}", f"o-{i}", 0, TEMP, s3, now) for i in range(S3_CHUNK + 1)]
    mixed = [x for pair in zip(files, keys, strict=False) for x in pair] + keys[len(files) :]
    got = list(chunks(mixed))
    assert [len(c) for c in got] == [CHUNK, 40 - CHUNK, S3_CHUNK, 1]
    assert got[0] + got[1] == files and got[2] + got[3] == keys
