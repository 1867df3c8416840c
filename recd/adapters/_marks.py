"""The audit mark, checkpoint and segment prints as the catalogue adapters store them: JSON
objects in a key-value table (``meta``). Shared by both SQL adapters: these functions turn
the rows into records and back.

A mark that does not decode is corruption (``BadRow``); a checkpoint or prints written by
another recd read as None (checked again from the start). ``MetaMarks`` is the role's methods
written once for both SQL adapters.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from recd.adapters._rows import mark_from_json
from recd.adapters._sql import SharedRole
from recd.core.segcheck import Print, Prints
from recd.ports.records import AuditCheckpoint, AuditMark


def mark_from(value: str) -> AuditMark:
    """The ``audit_mark`` row's value as a mark (``BadRow`` when it does not decode)."""
    seq, digest = mark_from_json(value)
    offset = json.loads(value).get("offset")
    return AuditMark(seq, digest, offset if type(offset) is int else None)


def mark_value(mark: AuditMark) -> dict[str, Any]:
    value: dict[str, Any] = {"seq": mark.seq, "hash": mark.hash}
    if mark.offset is not None:
        value["offset"] = mark.offset
    return value


def checkpoint_from(data: dict[str, Any] | None) -> AuditCheckpoint | None:
    try:
        return None if data is None else AuditCheckpoint(**data)
    except TypeError:  # written by another recd: start again from the first entry
        return None


def checkpoint_value(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    return asdict(checkpoint)


def segments_from(data: dict[str, Any] | None) -> Prints | None:
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


def segments_value(prints: Prints) -> dict[str, Any]:
    segments = {n: p.to_json() for n, p in prints.segments.items()}
    return {"segments": segments, "live": prints.live}


def meta_object(value: str | None) -> dict[str, Any] | None:
    """A ``meta`` row's JSON object (None: no row, or not an object)."""
    if value is None:
        return None
    data = json.loads(value)
    return data if isinstance(data, dict) else None


def meta_text(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True)


class MetaMarks(SharedRole):
    """The audit-mark role (``recd.ports.marks.AuditMarkCatalogue``) over ``meta`` rows, for
    both SQL adapters (the same statements on each: ``recd.adapters._sql``)."""

    def _meta_row(self, key: str) -> str | None:
        row = self._db.execute(self._q("SELECT value FROM meta WHERE key = ?"), (key,)).fetchone()
        value: str | None = None if row is None else row[0]  # as stored (SQLite: any type)
        return value

    def _set_meta(self, key: str, value: dict[str, Any]) -> None:
        with self._tx():
            self._db.execute(
                self._q(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                ),
                (key, meta_text(value)),
            )

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
