"""The PostgreSQL catalogue's early-deletion requests and S3 legal-hold mirror roles.

As ``recd.adapters.sqlite.requesting`` and ``mirroring``: a request and its items are written
as in SQLite (``recd.adapters._requests``), in one transaction when restored; ``mirror_work``
lists held recordings not mirrored (or mirrored for another version set) and mirrored ones no
longer held.
"""

from __future__ import annotations

import json

from recd.adapters._requests import RequestWrites
from recd.adapters._rows import COLUMNS
from recd.adapters.postgres.errors import guarded
from recd.adapters.postgres.queries import (
    select_items,
    select_matching,
    select_request,
    select_requests,
)
from recd.adapters.postgres.store import Store, mirrored, recording
from recd.core.model import Recording
from recd.core.requeststate import RequestItem, RequestState
from recd.core.scope import Scope
from recd.ports.records import Mirrored, StoredRequest

_MIRRORED = (
    "SELECT m.recording_id, r.location, m.ino, m.versions FROM s3_legal_holds m "
    "JOIN recordings r ON r.id = m.recording_id"
)


@guarded
class Requesting(Store, RequestWrites):
    """Early-deletion requests and the S3 mirror (``ports`` legal roles)."""

    def request(self, request_id: str) -> StoredRequest | None:
        return select_request(self._db, request_id)

    def requests(self, state: RequestState | None = None) -> list[StoredRequest]:
        return select_requests(self._db, state)

    def items(self, request_id: str) -> list[RequestItem]:
        return select_items(self._db, request_id)

    def matching(self, scope: Scope, limit: int) -> list[Recording]:
        return select_matching(self._db, scope, limit)

    # -- S3 legal holds mirrored --------------------------------------------------------------

    def mirror_work(self, source: str, limit: int) -> tuple[list[Recording], list[Mirrored]]:
        cols = ", ".join(f"r.{c.strip()}" for c in COLUMNS.split(","))
        hold = self._db.execute(
            f"SELECT {cols} FROM recordings r "  # noqa: S608
            "LEFT JOIN s3_legal_holds m ON m.recording_id = r.id "
            "WHERE r.source = %s AND r.held = 1 AND r.state = 'present' "
            "AND (m.recording_id IS NULL OR m.ino != r.ino) ORDER BY r.location LIMIT %s",
            (source, limit),
        ).fetchall()
        free = self._db.execute(
            f"{_MIRRORED} WHERE r.source = %s "
            "AND NOT (r.held = 1 AND r.state = 'present') ORDER BY r.location LIMIT %s",
            (source, limit),
        ).fetchall()
        return [recording(r) for r in hold], [mirrored(r) for r in free]

    def mirrored(self, recording_id: str) -> Mirrored | None:
        row = self._db.execute(
            f"{_MIRRORED} WHERE m.recording_id = %s",
            (recording_id,),
        ).fetchone()
        return None if row is None else mirrored(row)

    def set_mirrored(self, m: Mirrored | str) -> None:
        with self._tx():
            if isinstance(m, str):
                self._db.execute("DELETE FROM s3_legal_holds WHERE recording_id = %s", (m,))
                return
            self._db.execute(
                "INSERT INTO s3_legal_holds (recording_id, ino, versions) VALUES (%s, %s, %s) "
                "ON CONFLICT (recording_id) DO UPDATE SET ino = excluded.ino, "
                "versions = excluded.versions",
                (m.recording_id, m.ino, json.dumps([[v, int(o)] for v, o in m.versions])),
            )
