"""An audit log that cannot be written (``recd.daemon.outage``; root: its own small filesystem,
filled): erasing pauses, the daemon serves and indexes, and it resumes once an entry is
written."""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recd.daemon.loop import Daemon
from recd.daemon.outage import AUDIT_RETRY_BASE, AUDIT_RETRY_CAP
from tests.adapters.loopfs import Mounts
from tests.daemon.helpers import ask, drain, make
from tests.estate import Estate
from tests.fakes import NotifyListener
from tests.fulldisk import audit_on, fill, pad_to_page_end


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    with Mounts(tmp_path / "mounts") as m:
        yield m


def audit_disk(estate: Estate, mounts: Mounts) -> Path:
    """Put the audit log alone on a 64k tmpfs (a file bind mount); returns its mount point."""
    disk = mounts.tmpfs(estate.base / "auditfs", size="64k").mountpoint
    audit_on(mounts, estate, disk)
    return disk


def audit_problem(daemon: Daemon) -> str | None:
    """Why the daemon finds the audit log unwritable, read afresh (no type narrowing)."""
    return daemon.audit_problem


@pytest.mark.root
def test_a_start_with_a_full_audit_disk_serves_and_indexes_but_erases_only_once_it_can_write(
    estate: Estate, listener: NotifyListener, mounts: Mounts, caplog: pytest.LogCaptureFixture
) -> None:
    filler = fill(audit_disk(estate, mounts))
    due = estate.write("L1/due.wav", age_days=31)
    daemon = make(estate, listener)
    daemon.start()  # config.loaded cannot be written: recd starts anyway, erasing paused
    try:
        problem = f"the audit log {estate.audit_path} cannot be written: No space left on device"
        assert due.exists()
        assert daemon.status() == f"erasing paused: {problem}"
        assert ask(daemon, "status")["audit_log"] == {"writable": False, "problem": problem}
        assert [r["location"].rpartition("/")[2] for r in ask(daemon, "ls")] == ["due.wav"]
        assert f"STATUS=erasing paused: {problem}" in drain(listener)
        assert estate.audit_path.read_bytes() == b""
        assert 0 < daemon.timeout() <= AUDIT_RETRY_BASE * 2  # the first retry, not an hour
        filler.unlink()
        estate.clock.advance(AUDIT_RETRY_CAP)
        with caplog.at_level(logging.WARNING, logger="recd"):
            daemon.step(None)
        assert not due.exists()
        assert daemon.audit_problem is None and daemon.status().startswith("next deadline")
    finally:
        daemon.stop()
    entries = estate.audit()
    # config.loaded of this start, written late but first, then the end of the outage
    assert [e["action"] for e in entries] == [
        "config.loaded", "audit.resumed", "erase.intent", "erase.done",
    ]  # fmt: skip
    assert entries[0]["details"]["daemon"] is True
    assert entries[1]["details"]["error"] == problem
    assert any("audit log writable again after" in m for m in caplog.messages)


@pytest.mark.root
def test_an_admin_command_whose_entry_cannot_be_written_pauses_erasing_and_one_later_resumes_it(
    estate: Estate, listener: NotifyListener, mounts: Mounts, caplog: pytest.LogCaptureFixture
) -> None:
    disk = audit_disk(estate, mounts)
    due = estate.write("L1/soon.wav", age_days=30 - 60 / 86400)  # due in a minute
    daemon = make(estate, listener)
    daemon.start()

    def clock_confirm() -> Any:
        """`recctl clock confirm` from an admin connection; the loop takes it."""
        replies: list[Any] = []

        def admin() -> None:
            try:
                replies.append(ask(daemon, "clock confirm", reason="checked"))
            except OSError as exc:
                replies.append(exc)

        thread = threading.Thread(target=admin)
        thread.start()
        daemon.step(daemon.next_event())
        thread.join(timeout=10)
        return replies[0]

    try:
        pad_to_page_end(daemon)
        filler = fill(disk)
        refused = clock_confirm()
        assert isinstance(refused, OSError) and refused.errno == errno.ENOSPC
        problem = f"the audit log {estate.audit_path} cannot be written: No space left on device"
        assert audit_problem(daemon) == problem  # noticed though the command caught its error
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
            f"erasing paused: {problem}; nothing is erased until an audit entry can be written "
            "(retrying with backoff)"
        ]
        assert daemon.metrics is not None
        errors = daemon.metrics.registry.get_sample_value("recd_audit_write_errors_total")
        assert errors is not None and errors >= 1
        estate.clock.advance(60)
        daemon.step(None)
        assert due.exists()  # due now, but its intent could not be written
        filler.unlink()
        confirmed = clock_confirm()  # written: the log is writable again
        assert confirmed["problem"] is None
        assert not due.exists()  # resumed at once, not at the next retry of the backoff
        assert audit_problem(daemon) is None
    finally:
        daemon.stop()
    actions = [e["action"] for e in estate.audit() if e["action"] != "test.padding"]
    assert actions[-4:] == ["clock.confirmed", "audit.resumed", "erase.intent", "erase.done"]
