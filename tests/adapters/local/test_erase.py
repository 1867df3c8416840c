"""LocalEraser (recd.adapters.local.erase) on real files in a temporary directory: the normal
erase, the facts ``prepare`` gathers, caller errors, sync and close, ``locate`` and crash
recovery, and one file's unexpected failure not stopping the batch.

The safe opening and identity checks are in test_checks.py, the effectiveness probes in
test_probes.py, the overwrite itself in test_overwrite.py; filesystem-specific behaviour
(ext4 raw blocks, btrfs, XFS reflink, data=journal, mounts, ENOSPC) is in
test_erase_root.py on loop-mounted filesystems. Every test here also checks that no file
descriptor leaked.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from recd.adapters.local import checks, erase, probes, safefs
from recd.adapters.local.erase import EraseResult, LocalEraser
from recd.adapters.local.probes import filesystem_name
from recd.core.erasure import Action, Decision, ineffective_reason
from recd.core.model import EraseMethod, ErasePattern
from recd.ports.eraser import (
    EraseError,
    EraseJob,
    EraseOutcome,
    Eraser,
    EraseTarget,
    PreparedErase,
    Refused,
)
from tests.adapters.local.helpers import (
    ONLY_CAP_LEASE,
    OVERWRITE,
    TEMP,
    UNLINK,
    erase_one,
    ident,
    proc_status,
    touch,
)

pytestmark = pytest.mark.usefixtures("no_fd_leaks")  # every test: no descriptor leaked


# -- the normal erase -----------------------------------------------------------------------


def test_overwrite_leaves_no_file_and_no_temp_name(root: Path, eraser: LocalEraser) -> None:
    data = os.urandom(300_000)  # several chunks and a partial one
    st = touch(root / "1001" / "a.wav", data)
    touch(root / "1001" / "keep.wav")
    result = erase_one(eraser, "1001/a.wav", st)
    assert result == EraseResult(EraseMethod.OVERWRITE, True, None, 300_000)
    assert os.listdir(root / "1001") == ["keep.wav"]


@pytest.mark.parametrize("pattern", list(ErasePattern))
@pytest.mark.parametrize("verify", [True, False])
def test_both_patterns_with_and_without_verify(
    root: Path, eraser: LocalEraser, pattern: ErasePattern, verify: bool
) -> None:
    st = touch(root / "a.wav", os.urandom(200_001))
    result = erase_one(eraser, "a.wav", st, pattern=pattern, verify=verify)
    assert result.bytes_overwritten == 200_001
    assert os.listdir(root) == []


def test_empty_file_is_erased(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav", b"")
    with eraser.prepare("a.wav", *ident(st)) as p:
        assert p.facts.shared_extents in (False, None)
        result = eraser.erase(p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=True, temp_name=TEMP)
    assert result.bytes_overwritten == 0
    assert os.listdir(root) == []


def test_ineffective_overwrite_is_recorded_with_its_reason(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav")
    decision = Decision(Action.ERASE, EraseMethod.OVERWRITE, False, "xfs extent sharing unknown")
    result = erase_one(eraser, "a.wav", st, decision)
    assert result == EraseResult(EraseMethod.OVERWRITE, False, "xfs extent sharing unknown", 9)


def test_unlink_removes_the_file_and_carries_the_reason(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "d" / "a.wav")
    assert erase_one(eraser, "d/a.wav", st, UNLINK) == EraseResult(
        EraseMethod.UNLINK, False, "btrfs copy-on-write", 0
    )
    assert os.listdir(root / "d") == []


def test_facts_describe_the_file(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav", b"x" * 5000)
    with eraser.prepare("a.wav", *ident(st)) as p:
        f = p.facts
        assert (f.nlink, f.mtime_ns, f.open_for_write) == (1, st.st_mtime_ns, False)
        assert f.fs_type == filesystem_name(probes.fstatfs_magic(p.path_fd)) or f.fs_type in (
            "ext2", "ext3",
        )  # fmt: skip
        prepared: PreparedErase = p  # mypy: Prepared satisfies the port
        assert prepared.facts is f
        assert p.relpath == "a.wav"
    assert p.closed
    p.close()  # idempotent


def test_without_effectiveness_probes_only_the_writer_check_runs(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``erase.method = "unlink"``: statfs, the ext options, the inode flags and FIEMAP cannot
    change the outcome and are not asked; the writer check still is, and the facts claim
    nothing an overwrite could rely on."""

    def never(*_: object) -> None:
        raise AssertionError("effectiveness probe called")

    for name in ("fstatfs_magic", "shared_extents", "inode_journals_data"):
        monkeypatch.setattr(erase, name, never)
    monkeypatch.setattr(probes.ExtFilesystems, "facts", never)
    asked: list[int] = []

    def openers(fd: int) -> tuple[bool, bool]:
        asked.append(fd)
        return True, True

    monkeypatch.setattr(erase, "openers", openers)
    st = touch(root / "a.wav", b"x" * 5000)
    with LocalEraser(root, effectiveness=False) as e, e.prepare("a.wav", *ident(st)) as p:
        f = p.facts
        assert (f.fs_type, f.data_journal, f.shared_extents) == (erase.NOT_PROBED, None, None)
        assert (f.open_for_write, f.open_by_other, f.nlink, f.size) == (True, True, 1, 5000)
    assert len(asked) == 1
    # Should an overwrite ever be decided on such facts, it is not claimed effective.
    assert ineffective_reason(f.fs_type, f.data_journal, f.shared_extents) is not None


def test_local_eraser_is_an_eraser(root: Path) -> None:
    # Checked by mypy: LocalEraser and EraseResult satisfy the ports.
    e: Eraser = LocalEraser(root)
    r: EraseOutcome = EraseResult(EraseMethod.UNLINK, False, None, 0)
    assert e is not None
    assert r.method is EraseMethod.UNLINK


def test_missing_root_is_an_os_error_not_gone(tmp_path: Path) -> None:
    with LocalEraser(tmp_path / "unmounted") as e:
        with pytest.raises(FileNotFoundError):
            e.prepare("a.wav", 1, 2, 3)
        with pytest.raises(FileNotFoundError):
            e.locate("a.wav", TEMP, 1, 2)


def test_file_that_cannot_be_opened_for_writing_fails(root: Path, eraser: LocalEraser) -> None:
    shutil.copy("/bin/sleep", root / "a.wav")
    (root / "a.wav").chmod(0o755)
    st = (root / "a.wav").stat()
    try:
        running = subprocess.Popen([str(root / "a.wav"), "30"])
    except PermissionError:  # pragma: no cover (a noexec /tmp)
        pytest.skip("cannot execute files in the temporary directory")
    try:
        time.sleep(0.2)
        with eraser.prepare("a.wav", *ident(st)) as p:
            with pytest.raises(EraseError, match=r"^cannot open for writing: Text file busy$"):
                eraser.erase(p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
    finally:
        running.kill()
        running.wait()
    assert (root / "a.wav").stat().st_size == st.st_size


# -- the right to a lease ------------------------------------------------------------------


def no_cap_lease(root: Path) -> str:
    return (
        f"writer check off below {root}: recd lacks CAP_LEASE, so the kernel refuses the "
        "leases that find a process writing or reading a file recd does not own (erase.settle "
        "alone guards against erasing a call still being recorded); add "
        "AmbientCapabilities=CAP_LEASE to the unit (systemctl edit recd), then restart recd"
    )


def test_without_cap_lease_the_writer_check_is_said_off_once_per_root_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A user unit without AmbientCapabilities=CAP_LEASE: said when the eraser is made, before
    any erase, once per root for the run (a reload makes the erasers again)."""
    caplog.set_level(logging.WARNING, logger="recd.adapters.local.erase")
    proc = proc_status(tmp_path / "proc", 0)
    pins = safefs.RootPins()
    a, b = tmp_path / "a", tmp_path / "b"
    for _ in range(2):  # start, then a reload
        for root in (a, b):
            LocalEraser(root, proc=proc, pins=pins).close()
    assert caplog.messages == [no_cap_lease(a), no_cap_lease(b)]


def test_with_cap_lease_nothing_is_said_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="recd.adapters.local.erase")
    LocalEraser(tmp_path / "a", proc=proc_status(tmp_path / "proc", ONLY_CAP_LEASE)).close()
    assert caplog.messages == []


def test_a_root_recd_owns_needs_no_cap_lease(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """recd's own user owns the root: its recorder writes as recd, and a lease on one's own
    file needs no capability (a developer's or a single-user install)."""
    caplog.set_level(logging.WARNING, logger="recd.adapters.local.erase")
    root = tmp_path / "a"
    root.mkdir()
    LocalEraser(root, proc=proc_status(tmp_path / "proc", 0)).close()
    assert caplog.messages == []


# -- caller errors --------------------------------------------------------------------------


def test_erase_rejects_what_it_cannot_do(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav")
    kw = {"pattern": ErasePattern.ZEROS, "verify": False}
    with eraser.prepare("a.wav", *ident(st)) as p:
        for decision, message in [
            (Decision(Action.SKIP, EraseMethod.OVERWRITE, False, "x"), "decision is skip"),
            (Decision(Action.ERASE, EraseMethod.S3_DELETE, True), "s3-delete does not apply"),
        ]:
            with pytest.raises(ValueError, match=message):
                eraser.erase(p, decision, temp_name=TEMP, **kw)  # type: ignore[arg-type]
        for name in ("", ".", "..", "a/b", "a\0b"):
            with pytest.raises(ValueError, match="unsafe temporary name"):
                eraser.erase(p, OVERWRITE, temp_name=name, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs an open Prepared"):
        eraser.erase(p, OVERWRITE, temp_name=TEMP, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs an open Prepared"):
        eraser.erase(object(), OVERWRITE, temp_name=TEMP, **kw)  # type: ignore[arg-type]
    assert (root / "a.wav").read_bytes() == b"recording"
    with pytest.raises(ValueError, match="chunk_size must be positive"):
        LocalEraser(root, chunk_size=0)


# -- sync, close, locate, recovery ----------------------------------------------------------


def directory_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The (device, inode) of every directory fsynced from now on, in call order (files
    fsynced are left out). Nothing on a live filesystem shows that an fsync happened, so the
    calls themselves are watched; each still reaches the real ``os.fsync``."""
    synced: list[tuple[int, int]] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            synced.append((st.st_dev, st.st_ino))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


def test_sync_flushes_each_touched_directory_once(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sts = {rel: touch(root / rel) for rel in ("a/1.wav", "a/2.wav", "b/3.wav")}
    dirs = {(st.st_dev, st.st_ino) for st in (os.stat(root / "a"), os.stat(root / "b"))}
    synced = directory_fsyncs(monkeypatch)
    with LocalEraser(root) as e:
        for rel, st in sts.items():
            with e.prepare(rel, *ident(st)) as p:
                e.erase(p, UNLINK, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
        assert synced == [], "flushed before sync: once per erase, not once per batch"
        e.sync()
        assert sorted(synced) == sorted(dirs)  # each directory once, the root untouched
        e.sync()  # nothing to do
        assert sorted(synced) == sorted(dirs)


def test_close_releases_unsynced_directories(root: Path) -> None:
    st = touch(root / "a.wav")
    e = LocalEraser(root)
    with e.prepare("a.wav", *ident(st)) as p:
        e.erase(p, UNLINK, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
    e.close()  # the fd-leak check fails if the directory descriptor stayed open
    e.close()


def test_locate_in_each_state(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "d" / "a.wav")
    dev, ino = st.st_dev, st.st_ino
    assert eraser.locate("d/a.wav", TEMP, dev, ino) == "original"
    (root / "d" / "a.wav").rename(root / "d" / TEMP)
    assert eraser.locate("d/a.wav", TEMP, dev, ino) == "temp"
    touch(root / "d" / "a.wav", b"a new file at the old name")
    assert eraser.locate("d/a.wav", TEMP, dev, ino) == "temp"
    (root / "d" / TEMP).unlink()
    assert eraser.locate("d/a.wav", TEMP, dev, ino) == "gone"
    shutil.rmtree(root / "d")
    assert eraser.locate("d/a.wav", TEMP, dev, ino) == "gone"
    with pytest.raises(ValueError, match="unsafe temporary name"):
        eraser.locate("d/a.wav", "../x", dev, ino)


def test_recovery_finishes_an_erase_interrupted_at_the_temp_name(
    root: Path, eraser: LocalEraser
) -> None:
    st = touch(root / "d" / "a.wav", b"secret" * 1000)
    # As a crash would leave it: partly overwritten, renamed, not yet unlinked.
    with (root / "d" / "a.wav").open("r+b") as f:
        f.write(b"\0" * 100)
    (root / "d" / "a.wav").rename(root / "d" / TEMP)
    assert eraser.locate("d/a.wav", TEMP, st.st_dev, st.st_ino) == "temp"
    with eraser.prepare(f"d/{TEMP}", st.st_dev, st.st_ino, None) as p:
        result = eraser.erase(p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=True, temp_name=TEMP)
    eraser.sync()
    assert result.bytes_overwritten == 6000
    assert os.listdir(root / "d") == []
    assert eraser.locate("d/a.wav", TEMP, st.st_dev, st.st_ino) == "gone"


def test_recovery_of_a_truncated_file_at_its_name(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav", b"secret")
    os.truncate(root / "a.wav", 0)
    with pytest.raises(Refused, match="changed since it was indexed"):
        eraser.prepare("a.wav", *ident(st))
    with eraser.prepare("a.wav", st.st_dev, st.st_ino, None) as p:
        result = eraser.erase(
            p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP
        )
    assert result.bytes_overwritten == 0
    assert os.listdir(root) == []
    eraser.sync()


def test_an_unexpected_failure_fails_that_file_alone(
    root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug reached by one file (here: a check that raises what no check should) fails that
    file's erase with a one-line reason; the batch goes on."""
    bad, good = touch(root / "bad.wav"), touch(root / "good.wav")
    real = checks.check_identity

    def check(st: os.stat_result, *args: Any) -> None:
        if st.st_ino == bad.st_ino:
            raise KeyError("boom")
        real(st, *args)

    monkeypatch.setattr(checks, "check_identity", check)
    with LocalEraser(root) as e:
        targets = [
            EraseTarget(name, *ident(st)) for name, st in (("bad.wav", bad), ("good.wav", good))
        ]
        failed, prepared = e.prepare_many(targets)
        assert isinstance(failed, EraseError)
        assert str(failed) == "prepare failed unexpectedly: KeyError: 'boom'"
        assert "Traceback" in caplog.text
        assert isinstance(prepared, erase.Prepared)
        with prepared:
            job = EraseJob(prepared, UNLINK, TEMP)
            monkeypatch.setattr(LocalEraser, "_recheck", lambda self, p: 1 / 0)
            [outcome] = e.erase_many([job], pattern=ErasePattern.ZEROS, verify=False)
    assert str(outcome) == "erase failed unexpectedly: ZeroDivisionError: division by zero"
    assert (root / "bad.wav").exists() and (root / "good.wav").exists()
