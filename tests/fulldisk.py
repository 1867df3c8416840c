"""A filesystem that is full, for the audit-log failure tests (root: tmpfs and bind mounts)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from recd.core.audit import GENESIS, AuditDraft, seal_line
from recd.daemon.loop import Daemon
from tests.adapters.loopfs import Mounts
from tests.estate import Estate


def fill(directory: Path) -> Path:
    """Write a file in ``directory`` until its filesystem is full (ENOSPC)."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError) as exc:
            while True:
                os.write(fd, b"\0" * 65536)
        assert exc.value.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def audit_on(mounts: Mounts, estate: Estate, disk: Path) -> None:
    """Put ``estate``'s audit log on the filesystem mounted at ``disk`` (a file bind mount)."""
    estate.config.daemon.state_dir.mkdir(parents=True, exist_ok=True)
    (disk / "audit.log").touch(mode=0o640)
    estate.audit_path.touch(mode=0o640)
    mounts.bind(disk / "audit.log", estate.audit_path)


PAGE = 4096


def pad_to_page_end(daemon: Daemon, room: int = 64) -> None:
    """Append one padding entry so the audit log ends ``room`` bytes before a page boundary:
    a filesystem that is full still takes writes into the last page a file already has, so
    without this the next entries would fit and nothing would fail."""
    audit = daemon.runtime.audit
    last = audit.last()
    seq, prev = (1, GENESIS) if last is None else (last.seq + 1, last.hash)
    now = daemon.clock.now()
    bare = len(seal_line(AuditDraft("test.padding", "-", {"pad": ""}), seq=seq, prev=prev,
                         time=now)[1])  # fmt: skip
    pad = (PAGE - room - audit.end_offset() - bare) % PAGE
    audit.append([AuditDraft("test.padding", "-", {"pad": "x" * pad})], now)
    assert audit.end_offset() % PAGE == PAGE - room
