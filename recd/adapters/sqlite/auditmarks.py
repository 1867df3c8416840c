"""The catalogue's record of the audit log it reflects: mark, checkpoint, segment prints.

Stored as JSON rows of ``meta``. A mark that does not decode is corruption (``BadRow``); a
checkpoint or prints written by another recd read as None (checked again from the start).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from recd.adapters._rows import mark_from_json
from recd.adapters.sqlite.corrupt import guarded
from recd.adapters.sqlite.store import Store
from recd.core.segcheck import Print, Prints
from recd.ports.records import AuditCheckpoint, AuditMark


@guarded
class AuditMarks(Store):
    """Where in the audit log ``SqliteCatalogue`` stands."""

    def audit_mark(self) -> AuditMark | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'audit_mark'").fetchone()
        if row is None:
            return None
        seq, digest = mark_from_json(row[0])
        offset = json.loads(row[0]).get("offset")
        return AuditMark(seq, digest, offset if type(offset) is int else None)

    def set_audit_mark(self, mark: AuditMark) -> None:
        value: dict[str, Any] = {"seq": mark.seq, "hash": mark.hash}
        if mark.offset is not None:
            value["offset"] = mark.offset
        self._set_meta("audit_mark", value)

    def audit_checkpoint(self) -> AuditCheckpoint | None:
        data = self._meta("audit_checkpoint")
        try:
            return None if data is None else AuditCheckpoint(**data)
        except TypeError:  # written by another recd: start again from the first entry
            return None

    def set_audit_checkpoint(self, checkpoint: AuditCheckpoint) -> None:
        self._set_meta("audit_checkpoint", asdict(checkpoint))

    def audit_segments(self) -> Prints | None:
        data = self._meta("audit_segments")
        if data is None:
            return None
        try:
            segments = {n: Print.from_json(n, p) for n, p in data["segments"].items()}
            live = data.get("live")
            if live is not None:
                seq, prev, start = live
                live = (int(seq), str(prev), int(start))
        except (KeyError, TypeError, ValueError, AttributeError):
            return None  # written by another recd: every segment is checked again
        return Prints(segments, live)

    def set_audit_segments(self, prints: Prints) -> None:
        segments = {n: p.to_json() for n, p in prints.segments.items()}
        self._set_meta("audit_segments", {"segments": segments, "live": prints.live})

    def _meta(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        return data if isinstance(data, dict) else None

    def _set_meta(self, key: str, value: dict[str, Any]) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value, sort_keys=True)),
            )
