"""The catalogue's early-deletion request role: requests, their items, matching recordings.

A request and its items are written in one transaction when restored; the codecs are
``queries``.
"""

from __future__ import annotations

from collections.abc import Sequence

from recd.adapters._legalrows import REQUEST_COLUMNS, item_data, request_values
from recd.adapters.sqlite.corrupt import guarded
from recd.adapters.sqlite.queries import (
    select_items,
    select_matching,
    select_request,
    select_requests,
)
from recd.adapters.sqlite.store import Store
from recd.core.model import Recording
from recd.core.requeststate import RequestItem, RequestState
from recd.core.scope import Scope
from recd.ports.records import StoredRequest


@guarded
class Requesting(Store):
    """Early-deletion requests (``ports`` requests role) of ``SqliteCatalogue``."""

    def request(self, request_id: str) -> StoredRequest | None:
        return select_request(self._db, request_id)

    def requests(self, state: RequestState | None = None) -> list[StoredRequest]:
        return select_requests(self._db, state)

    def put_request(self, request: StoredRequest) -> None:
        with self._tx():
            self._put_request(request)

    def _put_request(self, request: StoredRequest) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO requests ({REQUEST_COLUMNS}) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            request_values(request),
        )

    def restore_requests(
        self, requests: Sequence[tuple[StoredRequest, Sequence[RequestItem]]]
    ) -> None:
        with self._tx():
            for request, items in requests:
                self._put_request(request)
                self._put_items(request.id, items)

    def items(self, request_id: str) -> list[RequestItem]:
        return select_items(self._db, request_id)

    def put_items(self, request_id: str, items: Sequence[RequestItem]) -> None:
        with self._tx():
            self._put_items(request_id, items)

    def _put_items(self, request_id: str, items: Sequence[RequestItem]) -> None:
        self._db.executemany(
            "INSERT INTO request_items (request_id, recording_id, outcome, data) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (request_id, recording_id) DO UPDATE SET "
            "outcome = excluded.outcome, data = excluded.data",
            [(request_id, i.recording_id, str(i.outcome), item_data(i)) for i in items],
        )

    def matching(self, scope: Scope, limit: int) -> list[Recording]:
        return select_matching(self._db, scope, limit)
