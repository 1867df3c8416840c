"""Shared by the audit log's rotation, chain and file tests: entries of about 1 KiB
(``drafts``) so that a log at the smallest ``audit.rotate_size`` (``SIZE``, ``settings``)
rotates every ~56 entries, ``write`` to make such a chain, the bytes and entries of the
whole chain as the files hold them (segments in chain order, uncompressed, then the live
log), and ``_damage`` to change one segment on disk.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from recd.adapters.auditlog.log import FileAuditLog
from recd.config.types import AuditCompression, AuditSettings
from recd.core.audit import AuditDraft, AuditEntry, from_line

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SIZE = 64 * 1024  # the smallest audit.rotate_size
PAD = "p" * 900  # about 1 KiB an entry: a segment every ~64 entries


def drafts(n: int, start: int = 0) -> list[AuditDraft]:
    return [
        AuditDraft("hold.placed", f"H{i}", {"n": i, "pad": PAD}) for i in range(start, start + n)
    ]


def settings(compress: AuditCompression = "none") -> AuditSettings:
    return AuditSettings(rotate_size=SIZE, compress=compress)


def names(path: Path) -> list[str]:
    return sorted(os.listdir(path.parent))


def segment_bytes(path: Path, name: str) -> bytes:
    where = path.with_name(name)
    return gzip.decompress(where.read_bytes()) if name.endswith(".gz") else where.read_bytes()


def chain_offsets(path: Path) -> list[tuple[AuditEntry, int]]:
    """Each entry of the chain with its offset in it."""
    found, offset = [], 0
    for line in chain_bytes(path).splitlines(keepends=True):
        found.append((from_line(line), offset))
        offset += len(line)
    return found


def chain_bytes(path: Path) -> bytes:
    """Every segment (in chain order, uncompressed), then the live log."""
    segs = [n for n in names(path) if n.startswith("audit.log.")]
    segs.sort(key=lambda n: int(n.split(".")[2].split("-")[0]))
    return b"".join(segment_bytes(path, n) for n in segs) + path.read_bytes()


def write(path: Path, n: int, compress: AuditCompression = "none") -> list[AuditEntry]:
    written: list[AuditEntry] = []
    with FileAuditLog.open(path, NOW, settings(compress)) as log:
        for i in range(n):
            written += log.append(drafts(1, start=i), NOW)
    return written


def chain_entries(path: Path) -> list[AuditEntry]:
    return [from_line(line) for line in chain_bytes(path).splitlines(keepends=True)]


def _damage(path: Path, name: str, change: Callable[[bytes], bytes]) -> None:
    where = path.with_name(name)
    where.write_bytes(change(where.read_bytes()))


MIDDLE = "audit.log.57-113"
