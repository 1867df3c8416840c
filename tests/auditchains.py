"""Audit logs written by hand for tests: a hash chain over rotated segments and the live log.

The chain is sealed with recd's own ``seal_line`` (what is checked is what reads it back:
verification, backups, rotation), each segment after the first beginning with the
``audit.rotated`` entry that names the one before it, as rotation leaves them."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recd.core.audit import GENESIS, AuditDraft, seal_line


def write_chain(state: Path, spans: list[tuple[str, int, int]]) -> str:
    """One audit chain over files in ``state`` (each ``(name, first, last)``, ``.gz`` names
    compressed), as rotation leaves it: each file after the first begins with the
    ``audit.rotated`` entry naming the segment before it; the last hash."""
    prev, when = GENESIS, datetime.now(UTC) - timedelta(hours=1)
    state.mkdir(parents=True, exist_ok=True)
    before: tuple[str, int, int] | None = None
    offset = 0  # where each file begins in the whole chain
    for name, first, last in spans:
        lines = []
        for seq in range(first, last + 1):
            draft = AuditDraft("test.entry", f"e{seq}")
            if seq == first and before is not None:
                details = {"segment": before[0], "first": before[1], "last": before[2],
                           "offset": offset}  # fmt: skip
                draft = AuditDraft("audit.rotated", before[0], details)
            entry, line = seal_line(draft, seq=seq, prev=prev, time=when)
            prev = entry.hash
            lines.append(line)
        data = b"".join(lines)
        offset += len(data)
        before = (name.removesuffix(".gz"), first, last)
        (state / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        (state / name).chmod(0o640)
    return prev
