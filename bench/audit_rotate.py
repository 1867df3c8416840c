"""Audit log appends per second with rotation off, on, and on with gzip (SPEC section 8).

Each append is one ``erase.done``-sized entry (the sweep's common case, one ``fsync`` each) or a
batch of 256 (a sweep batch's ``erase.done`` entries). Rotation on uses a 1 MiB
``audit.rotate_size`` so that a run of a few MiB crosses it many times: the cost of the
rotations shows in the rate. The time of each rotation (link, rename, two directory ``fsync``s,
and with gzip the compression of the closed segment) is reported as well.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from bench.common import workdir
from recd.adapters.auditlog.log import FileAuditLog
from recd.config.types import AuditCompression, AuditSettings
from recd.core.audit import AuditDraft

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
OFF = 1 << 62
DETAILS = {
    "intent": "i-0123456789abcdef",
    "location": "/var/lib/3cxpbx/Instance1/Data/Recordings/1001/+441234567890_1002_20261020"
    "101500(4711).wav",
    "licence": "3CX-1234-5678",
    "size": 1_234_567,
    "reason": "retention",
    "method": "overwrite",
    "effective": True,
    "deadline": "2026-11-19T10:15:00.000000Z",
    "sha256": "0" * 64,
    "bytes_overwritten": 1_234_567,
}


def _rate(rotate_size: int, compress: AuditCompression, entries: int, batch: int) -> float:
    with workdir("audit") as base:
        path = base / "audit.log"
        with FileAuditLog.open(path, NOW, AuditSettings(rotate_size, compress)) as log:
            drafts = [AuditDraft("erase.done", f"pbx:{i}", DETAILS) for i in range(batch)]
            appends = max(1, entries // batch)
            start = time.perf_counter()
            for _ in range(appends):
                log.append(drafts, NOW)
            took = time.perf_counter() - start
            assert sum(1 for _ in log.read_all()) >= appends * batch  # one chain, all read
    return appends * batch / took


def run(entries: int, rounds: int = 3) -> dict[str, float]:
    """The best of ``rounds`` interleaved runs of each setting (the disk is shared: a slow
    moment should not be charged to one setting)."""
    settings: dict[str, tuple[int, AuditCompression]] = {
        "off": (OFF, "none"),
        "on": (1 << 20, "none"),
        "gzip": (1 << 20, "gzip"),
    }
    results: dict[str, float] = {}
    for batch in (1, 256):
        best = dict.fromkeys(settings, 0.0)
        for _ in range(rounds):
            for name, (size, compress) in settings.items():
                best[name] = max(best[name], _rate(size, compress, entries, batch))
        for name, rate in best.items():
            results[f"{name}_per_s_batch{batch}"] = rate
        results[f"ratio_on_batch{batch}"] = best["on"] / best["off"]
        results[f"ratio_gzip_batch{batch}"] = best["gzip"] / best["off"]
    return results
