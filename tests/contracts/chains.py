"""The audit logs the AuditLog contract (``test_audit``) runs on, and how a test damages one.

``Chain`` is one open log with what only its kind can do: change the bytes of a stored entry
behind the log's back (``tamper``), and open a second writer on the same chain (``another``;
None for the file log, which ``flock`` keeps to one writer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recd.adapters.auditlog.log import FileAuditLog
from recd.core.audit import AuditDraft
from recd.ports.audit import AuditLog
from tests.pg import PgDatabase

AUDIT_LOGS = ["file", "postgres"]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def drafts(n: int, start: int = 0) -> list[AuditDraft]:
    """``n`` hold entries, subjects ``H<start>``, ``H<start+1>``, ..."""
    return [
        AuditDraft("hold.placed", f"H{i}", {"n": i, "why": "ünïcode"})
        for i in range(start, start + n)
    ]


@dataclass
class Chain:
    """An open audit log of one kind, and the means to damage it (see the module)."""

    log: AuditLog
    lines: Callable[[], bytes]  # every stored line in chain order, as the store holds them
    tamper: Callable[[int, bytes, bytes], None]  # in entry SEQ, replace OLD by NEW (same length)
    another: Callable[[], AuditLog] | None = None
    opened: list[AuditLog] = field(default_factory=list)

    def close(self) -> None:
        for log in (self.log, *self.opened):
            log.close()


def _file_chain(path: Path) -> Chain:
    def lines() -> bytes:
        return path.read_bytes()

    def tamper(seq: int, old: bytes, new: bytes) -> None:
        stored = path.read_bytes().split(b"\n")
        line = stored[seq - 1]
        assert old in line, (seq, old)
        stored[seq - 1] = line.replace(old, new, 1)
        path.write_bytes(b"\n".join(stored))

    return Chain(FileAuditLog.open(path, NOW), lines, tamper)


def _postgres_chain(url: str) -> Chain:
    import psycopg

    from recd.adapters.postgres.audit import PostgresAuditLog

    def lines() -> bytes:
        with psycopg.connect(url) as db:
            rows = db.execute("SELECT line FROM audit ORDER BY seq").fetchall()
        return b"".join(bytes(row[0]) for row in rows)

    def tamper(seq: int, old: bytes, new: bytes) -> None:
        with psycopg.connect(url) as db:
            found = db.execute("SELECT line FROM audit WHERE seq = %s", (seq,)).fetchone()
            assert found is not None and old in bytes(found[0]), (seq, old)
            line = bytes(found[0]).replace(old, new, 1)
            db.execute("UPDATE audit SET line = %s WHERE seq = %s", (line, seq))

    chain = Chain(PostgresAuditLog(url), lines, tamper)

    def another() -> AuditLog:
        log = PostgresAuditLog(url)
        chain.opened.append(log)
        return log

    chain.another = another
    return chain


def open_chain(kind: str, request: pytest.FixtureRequest) -> Iterator[Chain]:
    """A new, empty audit log of ``kind``; closed (with any other writer) afterwards."""
    if kind == "postgres":
        database: PgDatabase = request.getfixturevalue("pg_database")
        chain = _postgres_chain(database.url)
    else:
        assert kind == "file", kind
        tmp_path: Path = request.getfixturevalue("tmp_path")
        chain = _file_chain(tmp_path / "audit.log")
    try:
        yield chain
    finally:
        chain.close()
