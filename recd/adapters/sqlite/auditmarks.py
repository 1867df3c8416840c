"""The catalogue's record of the audit log it reflects: mark, checkpoint, segment prints.

Stored as JSON rows of ``meta`` (codecs in ``recd.adapters._marks``). A mark that does not
decode is corruption (``BadRow``); a checkpoint or prints written by another recd read as None
(checked again from the start).
"""

from __future__ import annotations

from typing import Any

from recd.adapters._marks import MetaMarks, meta_text
from recd.adapters.sqlite.corrupt import guarded
from recd.adapters.sqlite.store import Store


@guarded
class AuditMarks(MetaMarks, Store):
    """Where in the audit log ``SqliteCatalogue`` stands."""

    # The role's methods (``MetaMarks``) in this class, for ``guarded`` to wrap.
    audit_mark = MetaMarks.audit_mark
    set_audit_mark = MetaMarks.set_audit_mark
    audit_checkpoint = MetaMarks.audit_checkpoint
    set_audit_checkpoint = MetaMarks.set_audit_checkpoint
    audit_segments = MetaMarks.audit_segments
    set_audit_segments = MetaMarks.set_audit_segments

    def _meta_row(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: dict[str, Any]) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, meta_text(value)),
            )
