"""The PostgreSQL catalogue's record of the audit log it reflects: mark, checkpoint, prints.

JSON rows of ``meta``, as in SQLite (codecs in ``recd.adapters._marks``).
"""

from __future__ import annotations

from typing import Any

from recd.adapters._marks import (
    checkpoint_from,
    checkpoint_value,
    mark_from,
    mark_value,
    meta_object,
    meta_text,
    segments_from,
    segments_value,
)
from recd.adapters.postgres.errors import guarded
from recd.adapters.postgres.store import Store
from recd.core.segcheck import Prints
from recd.ports.records import AuditCheckpoint, AuditMark


@guarded
class AuditMarks(Store):
    """Where in the audit log ``PostgresCatalogue`` stands."""

    def audit_mark(self) -> AuditMark | None:
        value = self._meta_row("audit_mark")
        return None if value is None else mark_from(value)

    def set_audit_mark(self, mark: AuditMark) -> None:
        self._set_meta("audit_mark", mark_value(mark))

    def audit_checkpoint(self) -> AuditCheckpoint | None:
        return checkpoint_from(meta_object(self._meta_row("audit_checkpoint")))

    def set_audit_checkpoint(self, checkpoint: AuditCheckpoint) -> None:
        self._set_meta("audit_checkpoint", checkpoint_value(checkpoint))

    def audit_segments(self) -> Prints | None:
        return segments_from(meta_object(self._meta_row("audit_segments")))

    def set_audit_segments(self, prints: Prints) -> None:
        self._set_meta("audit_segments", segments_value(prints))

    def _meta_row(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: dict[str, Any]) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, meta_text(value)),
            )
