"""The catalogue's S3 legal-hold mirror role: which keys' Object Lock holds to set or clear.

``mirror_work`` lists, through the held index, held recordings not mirrored (or mirrored for
another version set) and mirrored ones no longer held; ``set_mirrored`` records either.
"""

from __future__ import annotations

import json

from recd.adapters._rows import COLUMNS, row_to_mirrored, row_to_recording
from recd.adapters.sqlite.corrupt import guarded
from recd.adapters.sqlite.queries import hinted
from recd.adapters.sqlite.store import Store
from recd.core.model import Recording
from recd.ports.records import Mirrored


@guarded
class Mirroring(Store):
    """The S3 legal-hold mirror (``ports`` mirror role) of ``SqliteCatalogue``."""

    def mirror_work(self, source: str, limit: int) -> tuple[list[Recording], list[Mirrored]]:
        cols = ", ".join(f"r.{c.strip()}" for c in COLUMNS.split(","))
        hold = hinted(
            self._db,
            f"SELECT {cols} FROM recordings r {{hint}} "  # noqa: S608
            "LEFT JOIN s3_legal_holds m ON m.recording_id = r.id "
            "WHERE r.source = ? AND r.held = 1 AND r.state = 'present' "
            "AND (m.recording_id IS NULL OR m.ino != r.ino) ORDER BY r.location LIMIT ?",
            (source, limit),
            "recordings_held",
        ).fetchall()
        free = self._db.execute(
            "SELECT m.recording_id, r.location, m.ino, m.versions FROM s3_legal_holds m "
            "JOIN recordings r ON r.id = m.recording_id "
            "WHERE r.source = ? AND NOT (r.held = 1 AND r.state = 'present') "
            "ORDER BY r.location LIMIT ?",
            (source, limit),
        ).fetchall()
        return [row_to_recording(r) for r in hold], [row_to_mirrored(r) for r in free]

    def mirrored(self, recording_id: str) -> Mirrored | None:
        row = self._db.execute(
            "SELECT m.recording_id, r.location, m.ino, m.versions FROM s3_legal_holds m "
            "JOIN recordings r ON r.id = m.recording_id WHERE m.recording_id = ?",
            (recording_id,),
        ).fetchone()
        return None if row is None else row_to_mirrored(row)

    def set_mirrored(self, m: Mirrored | str) -> None:
        with self._tx():
            if isinstance(m, str):
                self._db.execute("DELETE FROM s3_legal_holds WHERE recording_id = ?", (m,))
                return
            self._db.execute(
                "INSERT OR REPLACE INTO s3_legal_holds (recording_id, ino, versions) "
                "VALUES (?, ?, ?)",
                (m.recording_id, m.ino, json.dumps([[v, int(o)] for v, o in m.versions])),
            )
