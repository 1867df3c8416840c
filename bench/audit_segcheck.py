"""The start's check of the closed audit segments (issue 14): 50 segments of 64 KiB, each read
entry by entry (no prints: the first start after an upgrade) against all trusted from their
prints (a start after one that found nothing), plain and gzip. Milliseconds, the median of a
few runs of ``check_segments`` alone (the live log's check is the same in both)."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import workdir
from recd.adapters.auditlog.log import FileAuditLog
from recd.config.types import AuditCompression, AuditSettings
from recd.core.audit import AuditDraft
from recd.core.segcheck import Prints
from recd.service.segcheck import check_segments

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SEGMENTS = 50


def _times(compress: AuditCompression, rounds: int) -> tuple[float, float]:
    settings = AuditSettings(64 << 10, compress)
    with workdir("segcheck") as base:
        path = base / "audit.log"
        with FileAuditLog.open(path, NOW, settings) as log:
            drafts = [AuditDraft("hold.placed", "H", {"pad": "p" * 300})] * 16
            while log.extent().segments < SEGMENTS:
                log.append(drafts, NOW)
        full: list[float] = []
        trusted: list[float] = []
        for _ in range(rounds):
            took, prints = _check(path, settings, None)
            full.append(took)
            took, _ = _check(path, settings, prints)
            trusted.append(took)
    return statistics.median(full) * 1e3, statistics.median(trusted) * 1e3


def _check(path: Path, settings: AuditSettings, known: Prints | None) -> tuple[float, Prints]:
    with FileAuditLog.open(path, NOW, settings) as log:
        start = time.perf_counter()
        state = check_segments(str(path), log, known)
        took = time.perf_counter() - start
    assert state.problem is None and state.verified == (SEGMENTS if known is None else 0)
    return took, state.prints


def run(rounds: int = 5) -> dict[str, float]:
    results: dict[str, float] = {}
    for compress in ("none", "gzip"):
        full, trusted = _times(compress, rounds)
        results[f"{compress}_all_read_ms"] = full
        results[f"{compress}_trusted_ms"] = trusted
    return results
