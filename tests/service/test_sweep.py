"""Use cases end to end in-process: real files, real SQLite, real audit log, a fake clock."""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from recd.adapters.sqlite.catalogue import SqliteCatalogue
from recd.core.audit import verify
from recd.core.erasure import EraseSettings
from recd.core.model import EraseMethod, Recording, State
from recd.core.safety import SafetySettings
from recd.daemon.runtime import reindex, scan_all
from recd.errors import ExitCode
from recd.service.sweep import Sweeper, SweepReport
from tests.estate import Estate
from tests.service.helpers import rid, states


def test_due_recordings_are_erased_and_audited_others_kept(estate: Estate) -> None:
    old = estate.write("L1/old.wav", age_days=31)
    young = estate.write("L1/young.wav", age_days=29)
    kept3mo = estate.write("L2/forty-days.wav", age_days=40)
    stray = estate.write("stray.wav", age_days=400)
    report = estate.sweep()
    assert not old.exists()
    assert young.exists() and kept3mo.exists() and stray.exists()
    assert (report.erased, report.failed) == (1, 0)
    assert (report.licences["L1"].recordings, report.licences["L1"].due) == (2, 1)
    assert report.licences["(unclassified)"].due == 0
    assert estate.actions() == [
        ("erase.intent", rid("L1/old.wav")),
        ("erase.done", rid("L1/old.wav")),
    ]
    done = estate.audit()[-1]["details"]
    assert done["location"] == str(old)
    assert (done["licence"], done["size"], done["reason"]) == ("L1", 4096, "retention")
    assert (done["method"], done["effective"], done["bytes_overwritten"]) == (
        "overwrite",
        True,
        4096,
    )
    assert states(estate) == {
        "L1/old.wav": State.ERASED,
        "L1/young.wav": State.PRESENT,
        "L2/forty-days.wav": State.PRESENT,
        "stray.wav": State.PRESENT,
    }
    assert verify(estate.audit_path.read_bytes().splitlines(keepends=True)).ok


def test_once_prints_one_line_per_licence_and_exits_0(estate: Estate) -> None:
    estate.write("L1/a.wav", age_days=31)
    estate.write("L1/b.wav", age_days=1)
    estate.write("L2/c.wav", age_days=1)
    estate.write("stray.wav", age_days=1)
    code, out = estate.once()
    assert code is ExitCode.OK
    assert out.splitlines() == [
        "(unclassified): 1 recording, 0 due, 0 erased",
        "L1: 2 recordings, 1 due, 1 erased",
        "L2: 1 recording, 0 due, 0 erased",
    ]


def test_once_with_no_recordings_says_so(estate: Estate) -> None:
    assert estate.once() == (ExitCode.OK, "no recordings\n")


def test_once_exits_1_when_a_source_cannot_be_scanned(estate: Estate) -> None:
    estate.root.rmdir()
    code, out = estate.once()
    assert (code, out) == (ExitCode.FAILED, "no recordings\n")


def test_unclassified_default_policy_applies_default_retention(estate: Estate) -> None:
    from recd.config.load import RetentionSettings
    from recd.core.model import UnclassifiedPolicy

    estate.write("stray.wav", age_days=31)
    estate.configure(retention=RetentionSettings(unclassified=UnclassifiedPolicy.DEFAULT))
    report = estate.sweep()
    assert report.licences["(unclassified)"].erased == 1


def test_dry_run_erases_nothing_and_reports_what_it_would(estate: Estate) -> None:
    f = estate.write("L1/old.wav", age_days=31)
    estate.configure(mode="dry-run")
    code, out = estate.once()
    assert f.exists()
    assert code is ExitCode.OK
    assert out == "L1: 1 recording, 1 due, 1 would be erased (dry-run)\n"
    assert estate.actions() == []


def test_settle_keeps_a_file_modified_recently_until_it_settles(estate: Estate) -> None:
    f = estate.write("L1/call.wav", age_days=31, modified_seconds_ago=30)
    report = estate.sweep()
    assert f.exists()
    assert report.licences["L1"].kept == {"modified less than 2m ago": 1}
    assert estate.actions() == []  # a transient skip is not an audit event
    estate.clock.advance(120)
    assert estate.sweep().erased == 1
    assert not f.exists()


def test_hard_linked_file_is_refused_and_audited_once(estate: Estate) -> None:
    f = estate.write("L1/old.wav", age_days=31)
    os.link(f, estate.base / "elsewhere.wav")
    first = estate.sweep()
    second = estate.sweep()
    assert f.exists()
    assert first.licences["L1"].kept == {"has 2 hard links": 1}
    assert second.licences["L1"].kept == {"has 2 hard links": 1}
    assert estate.actions() == [("erase.skipped", rid("L1/old.wav"))]
    assert estate.audit()[-1]["details"]["skipped"] == "has 2 hard links"


def test_symlink_planted_after_indexing_is_not_followed(estate: Estate) -> None:
    victim = estate.base / "victim.wav"
    victim.write_bytes(b"precious" * 100)
    f = estate.write("L1/old.wav", age_days=31)
    estate.configure(mode="dry-run")
    estate.sweep()  # indexes the real file
    f.unlink()
    f.symlink_to(victim)
    estate.configure(mode="enforce")
    rt = estate.runtime()
    try:
        from recd.service.sweep import Sweeper

        report = Sweeper(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers).run()
    finally:
        rt.close()
    assert victim.read_bytes() == b"precious" * 100
    assert report.erased == 0
    assert [a for a, _ in estate.actions()] == ["erase.skipped"]


def test_file_gone_before_the_sweep_is_marked_missing(estate: Estate) -> None:
    f = estate.write("L1/old.wav", age_days=31)
    estate.configure(mode="dry-run")
    estate.sweep()
    f.unlink()
    estate.configure(mode="enforce")
    estate.sweep()
    assert states(estate) == {"L1/old.wav": State.MISSING}
    assert estate.actions() == []


def test_breaker_stops_a_licence_and_stays_tripped(estate: Estate) -> None:
    for i in range(3):
        estate.write(f"L1/old{i}.wav", age_days=31)
    estate.write("L1/new.wav", age_days=1)
    estate.write("L2/old.wav", age_days=100)
    estate.configure(safety=SafetySettings(max_due_fraction=0.5, min_breaker_count=2))
    code, out = estate.once()
    assert code is ExitCode.OK
    assert out.splitlines() == [
        "L1: 4 recordings, 3 due, 0 erased, 3 kept (3 mass-deletion breaker), BREAKER TRIPPED",
        "L2: 1 recording, 1 due, 1 erased",
    ]
    assert [a for a, _ in estate.actions("breaker.")] == ["breaker.tripped"]
    tripped = estate.audit()[[e["action"] for e in estate.audit()].index("breaker.tripped")]
    assert tripped["subject"] == "L1"
    assert tripped["details"] == {
        "due": 3, "recordings": 4, "max_due_fraction": 0.5, "min_breaker_count": 2,
    }  # fmt: skip
    estate.configure(safety=SafetySettings())  # even with a relaxed rule it waits for release
    assert estate.sweep().licences["L1"].breaker is True


def test_unlink_method_records_no_overwrite(estate: Estate) -> None:
    estate.write("L1/old.wav", age_days=31)
    estate.configure(erase=EraseSettings(method=EraseMethod.UNLINK))
    estate.sweep()
    done = estate.audit()[-1]
    assert done["action"] == "erase.done"
    assert (done["details"]["method"], done["details"]["effective"]) == ("unlink", False)


@pytest.mark.root
def test_a_failed_erase_is_audited_as_failed_and_exits_4(
    estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The root turns read-only after the eraser looked at it (ext4's errors=remount-ro in the
    middle of a run): the erase is tried and fails. A root read-only at start is not tried at
    all (tests/daemon/test_writable.py)."""
    import subprocess

    monkeypatch.setattr("recd.adapters.local.erase.unwritable", lambda fd, statvfs: None)
    f = estate.write("L1/old.wav", age_days=31)
    root = str(estate.root)
    subprocess.run(["mount", "--bind", root, root], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", root], check=True)
        code, out = estate.once()
    finally:
        subprocess.run(["umount", root], check=True)
    assert code is ExitCode.PARTIAL
    assert out == "L1: 1 recording, 1 due, 0 erased, 1 failed\n"
    assert f.read_bytes() == b"\x01" * 4096
    assert [a for a, _ in estate.actions()] == ["erase.intent", "erase.failed"]
    error = estate.audit()[-1]["details"]["error"]
    assert error == "cannot open for writing: Read-only file system"
    # A failed erase claims nothing (issue 13, 9a): the plan's effective flag is not copied.
    assert "effective" not in estate.audit()[-1]["details"]
    assert estate.audit()[-1]["details"]["method"] == "overwrite"
    assert states(estate) == {"L1/old.wav": State.PRESENT}
    assert estate.sweep().erased == 1  # writable again: the next sweep erases it


def test_recordings_of_a_source_no_longer_configured_are_kept(estate: Estate) -> None:
    f = estate.write("L1/old.wav", age_days=31)
    estate.configure(mode="dry-run")
    estate.sweep()  # indexed under source "pbx"
    estate.configure(mode="enforce", sources=())
    report = estate.sweep()
    assert f.exists()
    assert report.licences["L1"].kept == {"source pbx is not configured": 1}
    assert estate.actions() == []  # transient: the operator may put the source back


# -- indexing: a subtree reconciliation, files the watcher saw ---------------------------------


# -- S3-like listings: metadata and the oldest version's time ---------------------------------


def changed_then_swept(estate: Estate, change: Callable[[Path], None]) -> SweepReport:
    """Index a due recording, ``change`` it in place (same inode), then sweep without a scan."""
    path = estate.write("L1/old.wav", age_days=31)
    rt = estate.runtime()
    try:
        scan_all(rt)
        change(path)
        return Sweeper(
            estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers,
            reindex=functools.partial(reindex, rt),
        ).run()  # fmt: skip
    finally:
        rt.close()


def test_a_file_rewritten_in_place_since_indexing_is_reindexed_not_erased(
    estate: Estate,
) -> None:
    """Same inode and size, a newer mtime: the file indexed is not there any more; the one
    there gets its own deadline (from its own mtime) and is not erased as the old one."""

    def rewrite(path: Path) -> None:
        ino = path.stat().st_ino
        path.write_bytes(b"\x02" * 4096)
        yesterday = (estate.clock.now() - timedelta(days=1)).timestamp()
        os.utime(path, (yesterday, yesterday))
        assert path.stat().st_ino == ino

    report = changed_then_swept(estate, rewrite)
    assert (report.erased, report.licences["L1"].kept) == (0, Counter({report_reason(estate): 1}))
    skipped = estate.audit()[-1]
    assert (skipped["action"], skipped["subject"]) == ("erase.skipped", rid("L1/old.wav"))
    assert skipped["details"]["skipped"].startswith("changed since it was indexed (mtime ")
    row = catalogued(estate, "L1/old.wav")
    assert row.deadline == estate.clock.now() + timedelta(days=29)
    assert (row.skip_reason, row.state) == (None, State.PRESENT)
    assert (estate.root / "L1" / "old.wav").exists()


def test_a_file_whose_ctime_changed_since_indexing_is_not_erased(estate: Estate) -> None:
    """Same inode, size and mtime (what ``cp -p`` onto a reused inode leaves): the change
    time still tells; the file is re-indexed (due again by its own old mtime, so the next sweep
    erases it under its own deadline)."""
    report = changed_then_swept(estate, lambda path: path.chmod(0o600))
    assert report.erased == 0
    skipped = estate.audit()[-1]["details"]["skipped"]
    assert skipped.startswith("changed since it was indexed (ctime ")
    assert skipped.endswith("): written to, or another file that reused its inode number")
    row = catalogued(estate, "L1/old.wav")
    assert row.ctime_ns == (estate.root / "L1" / "old.wav").stat().st_ctime_ns
    assert estate.sweep().erased == 1  # its own deadline, from its own mtime


def report_reason(estate: Estate) -> str:
    return str(estate.audit()[-1]["details"]["skipped"])


def catalogued(estate: Estate, relpath: str) -> Recording:
    cat = SqliteCatalogue(estate.config.daemon.state_dir / "catalog.db")
    try:
        row = cat.get(rid(relpath))
    finally:
        cat.close()
    assert row is not None
    return row
