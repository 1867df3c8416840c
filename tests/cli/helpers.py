"""Shared by the recctl tests: ``run`` (``recctl.main`` in-process, its exit status, stdout and
stderr), ``ask`` (the same with ``--socket`` of a fake daemon set to answer one reply), a small
audit log: ``DRAFTS`` sealed into ``ENTRIES`` at ``T0`` onwards, and their ``LINES``, and
``rotated``, a state directory whose log recd itself rotated into segments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recd.adapters.auditlog.log import FileAuditLog
from recd.cli.main import main
from recd.config.types import AuditCompression, AuditSettings
from recd.core.audit import GENESIS, AuditDraft, AuditEntry, seal, to_line
from recd.protocol import Reply
from tests.fakedaemon import Delay, FakeDaemon

T0 = datetime(2026, 11, 23, 13, 43, 9, 500000, tzinfo=UTC)


DRAFTS = [
    AuditDraft("config.loaded", "/etc/recd/recd.toml", {"mode": "enforce", "version": "0.1.0"}),
    AuditDraft(
        "erase.done",
        "pbx1:7/a.wav",
        {
            "location": "/rec/7/a b.wav",
            "licence": "L1",
            "size": 1024,
            "effective": True,
            "method": "overwrite",
            "reason": "retention",
        },
    ),
    AuditDraft("hold.placed", "H-1", {"case": "CASE-9", "licence": "L1"}, actor="alice"),
    AuditDraft("erase.failed", "pbx1:7/b\x1b[31m.wav", {"error": "Permission denied"}),
]


def sealed(drafts: list[AuditDraft]) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev = GENESIS
    for n, draft in enumerate(drafts, start=1):
        entries.append(seal(draft, seq=n, prev=prev, time=T0 + timedelta(minutes=n)))
        prev = entries[-1].hash
    return entries


ENTRIES = sealed(DRAFTS)


LINES = [to_line(e) for e in ENTRIES]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ask(
    capsys: pytest.CaptureFixture[str], daemon: FakeDaemon, answer: Any, *argv: str
) -> tuple[int, str, str]:
    """Run ``recctl --socket <daemon> ARGV`` with the daemon answering ``answer``."""
    canned = isinstance(answer, Reply | bytes | Delay)
    daemon.answer = answer if canned else Reply.success(answer)
    return run(capsys, "--socket", str(daemon.path), *argv)


def usage(command: str, message: str) -> str:
    return f"recctl: {message} (see `recctl {command} --help`)\n"


NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PAD = "p" * 900


def rotated(state: Path, n: int = 200, compress: AuditCompression = "none") -> list[AuditEntry]:
    """A state directory whose log recd rotated (64 KiB segments); every entry, in order.

    With the defaults: ``audit.log.1-56``, ``audit.log.57-113``, ``audit.log.114-170`` (each
    ``.gz`` with ``compress="gzip"``) and ``audit.log`` holding 171-203."""
    state.mkdir(exist_ok=True)
    with FileAuditLog.open(state / "audit.log", NOW, AuditSettings(64 * 1024, compress)) as log:
        for i in range(n):
            log.append([AuditDraft("hold.placed", f"H{i}", {"n": i, "pad": PAD})], NOW)
        return list(log.read_all())
