"""The audit log's disk fails under recd (issue 13, point 8): ENOSPC and EIO on real filesystems.

The audit log is bind-mounted from its own small filesystem (as on a host whose log partition
fills up), so the catalogue keeps working and only the audit log fails. While it cannot be written
nothing is erased, recd says why (log, STATUS, ``recctl status``, metrics) and keeps running; the
first entry it manages to write ends the pause, and the chain stays valid throughout.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from recd.adapters.systemd import Notifier
from recd.core.audit import verify
from recd.daemon.admin.dispatch import Admin
from recd.daemon.control import Caller
from recd.daemon.loop import Daemon
from recd.daemon.outage import AUDIT_RETRY_CAP
from recd.errors import AuditUnwritable, ExitCode
from recd.protocol import Request
from tests import tools
from tests.adapters.loopfs import Mounts, run
from tests.estate import Estate
from tests.fakes import FakeClock, NotifyListener
from tests.fulldisk import audit_on, fill, pad_to_page_end

pytestmark = pytest.mark.root


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    return Estate(tmp_path / "estate", fake_clock)


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    with Mounts(tmp_path / "mounts") as m:
        yield m


def chain_ok(estate: Estate) -> int:
    """How many entries the audit log holds; fails unless the whole chain verifies."""
    lines = estate.audit_path.read_bytes().splitlines(keepends=True)
    assert verify(lines).ok
    return len(lines)


def status_of(daemon: Daemon) -> dict[str, object]:
    reply = Admin(daemon).handle(Request("status", {}), Caller(os.getpid(), 0, 0, ()))
    result: dict[str, object] = reply.result
    return result


def problem_of(daemon: Daemon) -> str | None:
    """Why the daemon finds the audit log unwritable, read afresh (no type narrowing)."""
    return daemon.audit_problem


def sample(daemon: Daemon, name: str) -> float | None:
    assert daemon.metrics is not None
    return daemon.metrics.registry.get_sample_value(name)


def test_a_full_audit_disk_pauses_erasing_until_space_returns(
    estate: Estate, listener: NotifyListener, mounts: Mounts, caplog: pytest.LogCaptureFixture
) -> None:
    disk = mounts.tmpfs(estate.base.parent / "auditfs", size="64k").mountpoint
    audit_on(mounts, estate, disk)
    due = estate.write("L1/due.wav", age_days=30 - 10 / 86400)  # due in 10 seconds
    daemon = Daemon(estate.config, estate.clock, Notifier(listener.path))
    daemon.start()
    try:
        pad_to_page_end(daemon)
        before = chain_ok(estate)
        filler = fill(disk)
        estate.clock.advance(10)
        with caplog.at_level(logging.INFO, logger="recd"):
            daemon.step(None)  # the erase.intent entry cannot be written: nothing is erased
            daemon.step(None)
        path = estate.audit_path
        problem = f"the audit log {path} cannot be written: No space left on device"
        assert due.exists()
        assert problem_of(daemon) == problem
        assert daemon.status() == f"erasing paused: {problem}"
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == [
            f"erasing paused: {problem}; nothing is erased until an audit entry can be written "
            "(retrying with backoff)"
        ]  # one line per outage, however many steps
        assert status_of(daemon)["audit_log"] == {"writable": False, "problem": problem}
        assert sample(daemon, "recd_audit_write_failed") == 1.0
        assert sample(daemon, "recd_audit_write_errors_total") == 1.0  # not retried yet
        assert chain_ok(estate) == before  # the failed batch left no partial line
        # The backoff retries, and keeps failing while the disk is full.
        estate.clock.advance(AUDIT_RETRY_CAP)
        daemon.step(None)
        assert due.exists()
        assert sample(daemon, "recd_audit_write_errors_total") == 2.0
        assert 0 < daemon.timeout() <= 2 * 1.0 + 1e-6  # second retry: within 2 s
        filler.unlink()
        estate.clock.advance(AUDIT_RETRY_CAP)
        with caplog.at_level(logging.INFO, logger="recd"):
            daemon.step(None)
        assert not due.exists()
        assert problem_of(daemon) is None
        assert sample(daemon, "recd_audit_write_failed") == 0.0
        assert "next deadline" in daemon.status()
    finally:
        daemon.stop()
    actions = [e["action"] for e in estate.audit()]
    assert actions[before:] == ["audit.resumed", "erase.intent", "erase.done"]
    resumed = estate.audit()[before]["details"]
    assert resumed["failed_appends"] == 2
    assert resumed["error"] == problem
    assert chain_ok(estate) == before + 3
    assert "audit log writable again after 2 failed appends since" in caplog.text


def test_once_with_a_full_audit_disk_erases_nothing_and_exits_74(
    estate: Estate, mounts: Mounts
) -> None:
    disk = mounts.tmpfs(estate.base.parent / "auditfs", size="64k").mountpoint
    audit_on(mounts, estate, disk)
    due = estate.write("L1/due.wav", age_days=31)
    fill(disk)
    with pytest.raises(AuditUnwritable) as exc:
        estate.once()
    assert exc.value.exit_code is ExitCode.IOERR
    assert int(ExitCode.IOERR) == 74
    assert str(exc.value) == (
        f"{estate.audit_path}: cannot write the audit log: No space left on device; "
        "stopped erasing (an erase whose entry could not be written is settled by the next run)"
    )
    assert due.exists()
    assert estate.audit_path.read_bytes() == b""


def test_an_audit_disk_failing_with_eio_pauses_erasing_and_recd_keeps_running(
    estate: Estate, listener: NotifyListener, mounts: Mounts, tmp_path: Path
) -> None:
    """EIO for real: ext4 on a loop device whose image lives on a tmpfs that is then filled,
    so the device fails writes to blocks not yet stored (this machine has no device-mapper
    ``error`` target). ext4 then aborts its journal and turns read-only (EROFS)."""
    tools.need("mkfs.ext4", "losetup", "mount", "umount")
    backing = mounts.tmpfs(tmp_path / "backing", size="8m").mountpoint
    image = backing / "image"
    with image.open("wb") as f:
        f.truncate(32 * 1024 * 1024)
    run("mkfs.ext4", "-F", "-q", "-m", "0", str(image))
    device = run("losetup", "--find", "--show", str(image)).strip()
    disk = tmp_path / "auditfs"
    disk.mkdir()
    try:
        run("mount", "-t", "ext4", device, str(disk))
        try:
            _eio_run(estate, listener, mounts, disk, backing)
        finally:
            mounts.close()  # the bind mount of the audit log first
            run("umount", str(disk))
    finally:
        run("losetup", "--detach", device)


def _eio_run(
    estate: Estate, listener: NotifyListener, mounts: Mounts, disk: Path, backing: Path
) -> None:
    audit_on(mounts, estate, disk)
    due = estate.write("L1/due.wav", age_days=30 - 10 / 86400)
    daemon = Daemon(estate.config, estate.clock, Notifier(listener.path))
    daemon.start()
    try:
        pad_to_page_end(daemon)
        before = chain_ok(estate)
        fill(backing)
        estate.clock.advance(10)
        daemon.step(None)
        assert due.exists()
        problem = problem_of(daemon) or ""
        assert problem.startswith(f"the audit log {estate.audit_path} cannot be written: ")
        assert problem.endswith(("Input/output error", "Read-only file system"))
        estate.clock.advance(AUDIT_RETRY_CAP)
        daemon.step(None)  # the retry fails too (the filesystem is read-only now)
        assert due.exists()
        assert status_of(daemon)["audit_log"] == {
            "writable": False,
            "problem": problem_of(daemon),
        }
    finally:
        daemon.stop()
    # The chain is intact; the one batch whose flush failed may show (its cut-back failed on
    # the read-only filesystem): an intent, complete and valid, for an erase never started.
    assert chain_ok(estate) in (before, before + 1)
    assert [e["action"] for e in estate.audit()][before:] in ([], ["erase.intent"])
